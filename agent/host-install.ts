import { existsSync } from 'node:fs';
import type { Client } from 'ssh2';
import type { CommandOf } from '../protocol/commands.js';
import {
  INSTALL_NAME,
  type HostFacts,
  type HostInstallOutput,
  type InstallCredential,
  type InstallStep,
  type InstallStepReport,
} from '../protocol/install.js';
import type { Logger } from './log.js';
import { connect as openSession, exec, fingerprint, SshConnectError } from './ssh-session.js';
import { checkForCopy, checkHost as runHostCheck, HostCheckError, type Checked } from './host-check.js';
import { awaitRegistration, defaultBundlePath, deliverAgent, REMOTE_DIR } from './host-copy.js';
import { awaitInstalledRegistration, runInstaller, type RootBy } from './host-installer.js';
import { InstallStepError, shQuote } from './host-steps.js';

export { InstallStepError, shQuote } from './host-steps.js';

/**
 * host.install: onboards another machine over SSH. Login and join token are fetched for the
 * command and kept in memory only; the host key is trusted on first use (the control plane stores
 * it per host and sends it back: a different key is refused). A login that can be root (root, or
 * sudo) runs the agent installer there, install.sh from the control plane, as the one-line install
 * does (host-installer.ts); one that cannot gets this agent's own bundle and runtime copied to its
 * home (host-copy.ts).
 */

export interface HostInstallDeps {
  fetchCredential(commandId: string): Promise<InstallCredential>;
  /** Best effort: a lost progress report does not stop the install. */
  reportSteps(commandId: string, steps: InstallStepReport[]): Promise<void>;
  /** The control plane URL this agent uses; the new agent's default. */
  controlPlaneUrl: string;
  /** The bundled agent (dist/agent.mjs) copied where the login cannot be root; default: this process's own bundle. */
  bundlePath?: string;
  /** The Node runtime copied over; default: this process's. */
  nodeBinary?: string;
  connectTimeoutMs?: number;
  logger: Logger;
}

type Command = CommandOf<'host.install'>;

/** Opens the session; a refused connection or login fails the connect step. */
const connect = (command: Command, cred: InstallCredential, timeoutMs: number) =>
  openSession(command, cred, timeoutMs).catch((error: unknown) => {
    throw error instanceof SshConnectError ? new InstallStepError('connect', error.message) : error;
  });

/** Checks the host; a host the agent cannot run on fails the check step. */
function asCheckStep<T>(fn: () => T | Promise<T>): Promise<T> {
  return Promise.resolve()
    .then(fn)
    .catch((error: unknown) => {
      throw error instanceof HostCheckError ? new InstallStepError('check', error.message) : error;
    });
}

const ROOT_BY: Partial<Record<HostFacts['sudo'], RootBy>> = {
  root: 'root',
  passwordless: 'passwordless',
  password: 'password',
};

export async function installHost(
  command: Command,
  commandId: string,
  deps: HostInstallDeps,
): Promise<HostInstallOutput> {
  const log = deps.logger.child({ component: 'host-install', commandId, host: command.host });
  const steps: InstallStepReport[] = [];
  const step = async (name: InstallStep, status: InstallStepReport['status'], detail = '') => {
    const report = { name, status, detail, at: new Date().toISOString() };
    const i = steps.findIndex((s) => s.name === name);
    if (i >= 0) steps[i] = report;
    else steps.push(report);
    log.info('install step', { step: name, status });
    await deps
      .reportSteps(commandId, [...steps])
      .catch((error: unknown) => log.warn('step report failed', { error }));
  };

  // Fetched for this command only; kept in this scope, never logged or reported.
  const cred = await deps.fetchCredential(commandId);
  let conn: Client | undefined;
  let hostKey: string | undefined;
  let facts: HostFacts | undefined;
  let current: InstallStep = 'connect';
  try {
    await step('connect', 'running', `${cred.username}@${command.host}:${command.port}`);
    ({ conn, hostKey } = await connect(command, cred, deps.connectTimeoutMs ?? 20_000));
    await step(
      'connect',
      'ok',
      `${command.hostKey ? 'host key matches the stored one' : 'host key trusted on first use'}: ${fingerprint(hostKey)}`,
    );

    current = 'check';
    await step('check', 'running');
    const checked = await asCheckStep(() => runHostCheck(conn!));
    facts = checked.facts;
    const nodeName = command.nodeName ?? checked.facts.hostname.split('.')[0]!;
    if (!INSTALL_NAME.test(nodeName))
      throw new InstallStepError(
        'check',
        `the host's name "${nodeName}" is not a usable node name: give one`,
      );
    const rootBy = ROOT_BY[checked.facts.sudo];
    if (rootBy && !checked.canDownload)
      throw new InstallStepError(
        'check',
        'neither curl nor wget is installed: the agent installer needs one',
      );
    const dockerHost = rootBy ? undefined : await asCheckStep(() => checkForCopy(checked));
    await step(
      'check',
      'ok',
      `${checked.facts.arch}, ${checked.facts.os}, ${checked.facts.engine ?? 'engine socket for root only'}, sudo: ${checked.facts.sudo}; ${rootBy ? 'runs the agent installer as root' : 'no root: the agent is copied to the login’s home'}`,
    );

    const url = command.controlPlaneUrl ?? deps.controlPlaneUrl;
    const tracked = async (n: InstallStep, s: 'running' | 'ok', d?: string) => {
      current = n;
      await step(n, s, d);
    };
    let nodeId: string;
    if (rootBy) {
      current = 'install';
      const run = {
        conn,
        by: rootBy,
        password: cred.password,
        url,
        joinToken: cred.joinToken,
        nodeName,
        ...(command.cluster ? { cluster: command.cluster } : {}),
      };
      const { startedAt } = await runInstaller(run, tracked);
      current = 'register';
      await step('register', 'running');
      nodeId = await awaitInstalledRegistration(run, startedAt, command.joinTimeoutSeconds * 1000);
    } else {
      nodeId = await copyAndStart(
        conn,
        checked,
        dockerHost!,
        { url, nodeName, cred, command, deps },
        tracked,
      );
    }
    await step('register', 'ok', `registered as node ${nodeName} (${nodeId})`);
    return { outcome: 'joined', steps, facts, hostKey, nodeId, nodeName };
  } catch (error) {
    const failedStep = error instanceof InstallStepError ? error.step : current;
    const reason = (error as Error).message;
    await step(failedStep, 'failed', reason);
    return {
      outcome: 'failed',
      failedStep,
      reason,
      steps,
      ...(facts ? { facts } : {}),
      ...(hostKey ? { hostKey } : {}),
    };
  } finally {
    conn?.end();
  }
}

/** Without root: this agent's bundle and runtime to the login's home, started there; its node id. */
async function copyAndStart(
  conn: Client,
  checked: Checked,
  dockerHost: string,
  o: { url: string; nodeName: string; cred: InstallCredential; command: Command; deps: HostInstallDeps },
  step: (name: InstallStep, status: 'running' | 'ok', detail?: string) => Promise<void>,
): Promise<string> {
  const bundlePath = o.deps.bundlePath ?? defaultBundlePath();
  const nodeBinary = o.deps.nodeBinary ?? process.execPath;
  if (!existsSync(bundlePath))
    throw new Error(
      `no agent bundle at ${bundlePath} to install: build it (npm run build:agent) or set FLEET_AGENT_BUNDLE`,
    );
  const env: Record<string, string> = {
    FLEET_URL: o.url,
    FLEET_JOIN_TOKEN: o.cred.joinToken,
    FLEET_NODE_NAME: o.nodeName,
    FLEET_STATE_DIR: `${checked.home}/${REMOTE_DIR}/${o.nodeName}`,
    DOCKER_HOST: dockerHost,
    ...(o.command.cluster ? { FLEET_CLUSTER: o.command.cluster } : {}),
  };
  const started = await deliverAgent(
    conn,
    { home: checked.home, nodeName: o.nodeName, env, bundlePath, nodeBinary, selfPid: process.pid },
    step,
  );
  await step('register', 'running');
  const nodeId = await awaitRegistration(
    conn,
    checked.home,
    o.nodeName,
    started,
    o.command.joinTimeoutSeconds * 1000,
  );
  // Used up: the agent re-registers with its own credential from now on.
  await exec(conn, `sed -i '/^FLEET_JOIN_TOKEN=/d' ${shQuote(`${checked.home}/${REMOTE_DIR}/agent.env`)}`);
  return nodeId;
}
