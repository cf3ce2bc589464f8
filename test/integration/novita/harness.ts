/** Shared pieces of the Novita suites: a runtime pointed at the fake Novita, HTTP calls that keep every answer. */
import { randomBytes } from 'node:crypto';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { deploymentNames, uniqueName } from '../../harness/services.js';
import { NOVITA_KEY_SECRET } from '../../../functions/ports/novita-cloud.js';
import { FakeNovita } from './fake-novita.js';

export { eventually } from '../../harness/scripted-agent.js';
export { webhookReceiver } from '../training/harness.js';

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface NovitaRig {
  rt: Runtime;
  fake: FakeNovita;
  apiKey: string;
  /** Every answer's raw text, to check the key never leaves. */
  answers: string[];
  api: (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<Answer>;
  stop: () => Promise<void>;
}

/** The embedded runtime with names of its own, its Novita key in the secrets file, the fake as Novita. */
export async function startNovitaRig(
  env: Record<string, string | undefined> = {},
  options: { now?: () => number; port?: number } = {},
): Promise<NovitaRig> {
  const apiKey = `nv-test-${randomBytes(16).toString('hex')}`;
  const fake = await new FakeNovita(apiKey).start();
  const id = uniqueName('nv');
  const rt = await startRuntime({
    port: options.port ?? 0,
    scheduleRefreshMs: 60_000,
    ...(options.now ? { now: options.now } : {}),
    env: {
      LOG_LEVEL: 'SILENT',
      AWS_ENDPOINT_URL: undefined,
      ...deploymentNames(id),
      NOVITA_BASE_URL: fake.url,
      NOVITA_POLL_SECONDS: '1',
      NOVITA_WEBHOOK_RETRY_BASE_SECONDS: '1',
      NOVITA_RATE_LIMIT_CREATE_PER_MINUTE: '1000',
      NOVITA_RATE_LIMIT_STATUS_PER_MINUTE: '10000',
      NOVITA_RATE_LIMIT_GENERAL_PER_HOUR: '10000',
      // The suites' webhook receivers listen on loopback.
      OUTBOUND_ALLOWLIST: '127.0.0.1',
      ...env,
    },
  });
  await rt.ctx.secrets.put(NOVITA_KEY_SECRET, apiKey);
  const answers: string[] = [];
  const api = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${rt.url}${path}`, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    answers.push(text, JSON.stringify([...res.headers]));
    return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : undefined };
  };
  return {
    rt,
    fake,
    apiKey,
    answers,
    api,
    stop: async () => {
      await rt.stop();
      await fake.stop();
    },
  };
}

export const createBody = (overrides: Record<string, unknown> = {}) => ({
  name: uniqueName('gpu'),
  productName: 'RTX 4090 24GB',
  templateId: 'template-123',
  ...overrides,
});
