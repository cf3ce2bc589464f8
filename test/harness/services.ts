/**
 * How integration suites find their services: AWS_ENDPOINT_URL (moto or LocalStack) and DOCKER_HOST
 * (Podman's API service). `.ci/services.sh` starts both and prints these variables.
 *
 * Without a variable the suite is skipped with a reason, except under CI=true where a missing service
 * is a failure: CI must never go green by skipping everything.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import Docker from 'dockerode';
import { describe } from 'vitest';
import { loadConfig, type Config } from '../../functions/core/config.js';

export const inCi = process.env.CI === 'true';

export interface ServiceStatus {
  available: boolean;
  /** Why the suite is skipped; empty when available. */
  reason: string;
}

function requireService(variable: string, what: string, howTo: string): ServiceStatus {
  if (process.env[variable]) return { available: true, reason: '' };
  const reason = `${variable} is unset: no ${what} (${howTo})`;
  if (inCi) throw new Error(`CI=true and ${reason}. CI must run these suites, not skip them.`);
  return { available: false, reason };
}

const servicesHint = 'start it with eval "$(.ci/services.sh)"';

/** The AWS API emulator (moto, LocalStack). Throws under CI when AWS_ENDPOINT_URL is unset. */
export function requireMoto(): ServiceStatus {
  const status = requireService('AWS_ENDPOINT_URL', 'AWS API emulator', servicesHint);
  if (status.available) {
    // The SDK needs some credentials; emulators accept any.
    process.env.AWS_ACCESS_KEY_ID ??= 'test';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
  }
  return status;
}

/** The container engine (Podman's Docker-compatible API). Throws under CI when DOCKER_HOST is unset. */
export function requireEngine(): ServiceStatus {
  return requireService('DOCKER_HOST', 'container engine', servicesHint);
}

/** The Docker Registry (HTTP API v2) the build suites push to. Throws under CI when REGISTRY_URL is unset. */
export function requireRegistry(): ServiceStatus {
  return requireService('REGISTRY_URL', 'image registry', servicesHint);
}

/** Both services available; a skip names each one missing. */
export function bothServices(a: ServiceStatus, b: ServiceStatus): ServiceStatus {
  return a.available && b.available
    ? { available: true, reason: '' }
    : { available: false, reason: [a.reason, b.reason].filter(Boolean).join('; ') };
}

/** Engine and registry both: builds need the first, pushes the second. */
export function requireEngineAndRegistry(): ServiceStatus {
  const engine = requireEngine();
  const registry = requireRegistry();
  return engine.available ? registry : engine;
}

/**
 * The aarch64 leg (`.ci/arm64.sh`): qemu-user and the arm64 Node.js archive and libraries. Throws
 * under CI when they are missing.
 */
export function requireArm64(dir: string): ServiceStatus {
  const missing = [
    '/usr/bin/qemu-aarch64-static',
    `${dir}/node-aarch64.tar.gz`,
    `${dir}/root/lib/ld-linux-aarch64.so.1`,
  ].filter((path) => !existsSync(path));
  if (!missing.length) return { available: true, reason: '' };
  const reason = `no ${missing.join(', ')} (apt-get install qemu-user-static; .ci/arm64.sh)`;
  if (inCi) throw new Error(`CI=true and ${reason}. CI must run these suites, not skip them.`);
  return { available: false, reason };
}

type SuiteBody = () => void;

/** `describe` that runs only when the service is there; a skipped suite's name carries the reason. */
export function describeWith(status: ServiceStatus, name: string, body: SuiteBody): void {
  describe.skipIf(!status.available)(status.available ? name : `${name} [skipped: ${status.reason}]`, body);
}

export const describeWithMoto = (name: string, body: SuiteBody) => describeWith(requireMoto(), name, body);
export const describeWithEngine = (name: string, body: SuiteBody) =>
  describeWith(requireEngine(), name, body);

export function awsEndpoint(): string {
  const url = process.env.AWS_ENDPOINT_URL;
  if (!url) throw new Error('AWS_ENDPOINT_URL is unset');
  return url.replace(/\/+$/, '');
}

/** Clears all of moto's state. LocalStack has no such route: there, unique names keep suites apart. */
export async function resetMoto(): Promise<void> {
  const url = `${awsEndpoint()}/moto-api/reset`;
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new Error(`moto did not answer at ${url}: ${String(err)}`, { cause: err });
  }
  if (res.status === 404) return; // not moto (LocalStack)
  if (!res.ok) throw new Error(`POST ${url} answered ${res.status}: ${await res.text()}`);
}

/** A name unique to this run, valid as an SQS queue, S3 bucket, schedule or SSM path segment. */
export function uniqueName(prefix = 't'): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`.toLowerCase();
}

/** Config for a suite: the emulator's endpoint and names unique to the suite, so runs never collide. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  const id = uniqueName('it');
  const base = loadConfig({
    AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL,
    AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
    QUEUE_PREFIX: `${id}-`,
    SCHEDULE_GROUP: id,
    ARTIFACTS_BUCKET: id,
    SECRETS_PREFIX: `/${id}/`,
  });
  return { ...base, ...overrides };
}

/** dockerode options for DOCKER_HOST: unix:///path, tcp://host:port or http(s)://host:port. */
export function dockerOptions(dockerHost = process.env.DOCKER_HOST): Docker.DockerOptions {
  if (!dockerHost) throw new Error('DOCKER_HOST is unset');
  if (dockerHost.startsWith('unix://')) return { socketPath: dockerHost.slice('unix://'.length) };
  if (dockerHost.startsWith('/')) return { socketPath: dockerHost };
  const url = new URL(dockerHost.replace(/^tcp:/, 'http:'));
  return {
    protocol: url.protocol === 'https:' ? 'https' : 'http',
    host: url.hostname,
    port: Number(url.port || (url.protocol === 'https:' ? 2376 : 2375)),
  };
}

/** A dockerode client for the engine at DOCKER_HOST. */
export function engine(): Docker {
  return new Docker(dockerOptions());
}

/** Table, queues, schedule group, bucket and secrets path of one suite's own deployment. */
export function deploymentNames(id: string) {
  return {
    TABLE_NAME: id,
    QUEUE_PREFIX: `${id}-`,
    SCHEDULE_GROUP: id,
    ARTIFACTS_BUCKET: id,
    SECRETS_PREFIX: `/${id}/`,
  };
}

/** The runtime settings for the emulator at AWS_ENDPOINT_URL, with names of the suite's own. */
export function emulatorDeployment(id: string) {
  return {
    AWS_ENDPOINT_URL: awsEndpoint(),
    AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
    ...deploymentNames(id),
  };
}
