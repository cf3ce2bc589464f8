import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlaneClient } from '../../../agent/client.js';
import { createLogger } from '../../../agent/log.js';
import { Registrar } from '../../../agent/register.js';
import { resetApiKeyCache } from '../../../functions/core/http.js';
import { JOIN_TOKEN_PREFIX } from '../../../functions/nodes/join-tokens.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call, ScriptedAgent } from '../../harness/scripted-agent.js';

const API_KEY = 'test-api-key-0123456789';
const TTL_SECONDS = 60;

/** Everything the control plane's logger writes while the suite runs (Powertools writes to stdout/stderr). */
const captured: string[] = [];
function captureOutput(): () => void {
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  // Kept, not echoed: DEBUG would flood the test output.
  const grab = (chunk: unknown): boolean => {
    captured.push(String(chunk));
    return true;
  };
  process.stdout.write = grab as typeof process.stdout.write;
  process.stderr.write = grab as typeof process.stderr.write;
  return () => {
    process.stdout.write = out;
    process.stderr.write = err;
  };
}

describe('Swarm join tokens (embedded runtime, API_AUTH=true)', () => {
  let rt: Runtime;
  let restore: () => void;
  let clockOffsetMs = 0;
  const issued: string[] = [];
  const asUser = { authorization: `Bearer ${API_KEY}` };

  beforeAll(async () => {
    restore = captureOutput();
    rt = await startRuntime({
      port: 0,
      now: () => Date.now() + clockOffsetMs,
      env: {
        ...process.env,
        AWS_ENDPOINT_URL: undefined,
        API_AUTH: 'true',
        // DEBUG: the most the control plane ever logs, so "not in the logs" covers every level.
        LOG_LEVEL: 'DEBUG',
        JOIN_TOKEN_TTL_SECONDS: String(TTL_SECONDS),
      },
    });
    await rt.ctx.secrets.put('api-key', API_KEY);
    resetApiKeyCache();
  });
  afterAll(async () => {
    await rt?.stop();
    restore?.();
  });

  const register = (name: string, headers: Record<string, string>) =>
    call(rt.url, 'POST', '/agent/register', new ScriptedAgent(rt.url, name).registerBody(), headers);
  const issue = async (role = 'worker') => {
    const res = await call(rt.url, 'GET', `/api/swarm/join-token?role=${role}`, undefined, asUser);
    if (res.status === 200) issued.push(res.body.token);
    return res;
  };

  it('issues worker tokens behind the API key; every call gives a new one and none is revoked', async () => {
    const withoutKey = await call(rt.url, 'GET', '/api/swarm/join-token?role=worker');
    const first = await issue();
    const second = await issue();
    const defaulted = await call(rt.url, 'GET', '/api/swarm/join-token', undefined, asUser);
    issued.push(defaulted.body.token);

    expect(withoutKey.status).toBe(401);
    expect(withoutKey.body).toEqual({ detail: 'Invalid or missing API key' });
    expect(first.status).toBe(200);
    expect(first.body).toEqual({
      token: expect.stringMatching(/^FLEETJT-1-[A-Za-z0-9_-]{43}$/),
      role: 'worker',
      id: expect.stringMatching(/^jt-[0-9a-f]{16}$/),
      expires_at: expect.any(String),
      max_uses: null,
      install_command: `curl -fsSL ${rt.url}/install.sh | sudo sh -s -- --token '${first.body.token}'`,
    });
    expect(second.body.token).not.toBe(first.body.token);
    expect(defaulted.body.role).toBe('worker');
    // Both stay live: a new token revokes nothing.
    expect((await register('jt-a', { authorization: `Bearer ${first.body.token}` })).status).toBe(200);
    expect((await register('jt-b', { authorization: `Bearer ${second.body.token}` })).status).toBe(200);
  });

  it('refuses role=manager and unknown roles with 400: the control plane is the only manager', async () => {
    const manager = await issue('manager');
    const bogus = await issue('admin');
    expect(manager.status).toBe(400);
    expect(manager.body.detail).toEqual([
      {
        loc: ['query', 'role'],
        msg: 'The control plane is the only manager: nodes join as workers (role=worker)',
        type: 'value_error',
      },
    ]);
    expect(bogus.status).toBe(400);
    expect(bogus.body.detail[0].loc).toEqual(['query', 'role']);
  });

  it('registration: refused without a credential, accepted with the API key or a live join token', async () => {
    const token = (await issue()).body.token as string;
    const none = await register('reg-none', {});
    const wrongKey = await register('reg-wrong', { authorization: 'Bearer not-the-key' });
    const withKey = await register('reg-key', asUser);
    const withToken = await register('reg-token', { authorization: `Bearer ${token}` });
    // The token is reusable by other nodes until it expires.
    const again = await register('reg-token-2', { authorization: `Bearer ${token}` });

    expect(none.status).toBe(401);
    expect(wrongKey.status).toBe(401);
    expect(withKey.status).toBe(200);
    expect(withToken.status).toBe(200);
    expect(withToken.body).toMatchObject({
      nodeId: expect.stringMatching(/^reg-token-/),
      channel: { type: 'http' },
    });
    expect(again.status).toBe(200);
    // The node's own credential works for agent calls; the join token is no agent credential.
    const node = withToken.body as { token: string };
    const beat = {
      metrics: { cpuPercent: 1, memoryUsedMb: 1, memoryTotalMb: 2, diskUsedGb: 1, diskTotalGb: 2, gpus: [] },
      containers: [],
    };
    expect(
      (await call(rt.url, 'POST', '/agent/heartbeat', beat, { authorization: `Bearer ${node.token}` }))
        .status,
    ).toBe(200);
    expect(
      (await call(rt.url, 'POST', '/agent/heartbeat', beat, { authorization: `Bearer ${token}` })).status,
    ).toBe(401);
    // Nor does it open user routes.
    expect(
      (await call(rt.url, 'GET', '/api/swarm/nodes', undefined, { authorization: `Bearer ${token}` })).status,
    ).toBe(401);
    expect(
      (await call(rt.url, 'GET', '/api/swarm/join-token', undefined, { authorization: `Bearer ${token}` }))
        .status,
    ).toBe(401);
  });

  it('refuses forged tokens: right prefix, wrong secret; a tampered live one', async () => {
    const live = (await issue()).body.token as string;
    const forged = `${JOIN_TOKEN_PREFIX}${'A'.repeat(43)}`;
    const tampered = `${live.slice(0, -1)}${live.endsWith('A') ? 'B' : 'A'}`;
    const nodesBefore = (await call(rt.url, 'GET', '/api/swarm/nodes', undefined, asUser)).body.length;

    const a = await register('forged-1', { authorization: `Bearer ${forged}` });
    const b = await register('forged-2', { authorization: `Bearer ${tampered}` });
    const c = await register('forged-3', { authorization: `Bearer ${'x'.repeat(5000)}` });

    for (const r of [a, b, c]) {
      expect(r.status).toBe(401);
      expect(r.body).toEqual({ detail: 'Invalid or missing API key' });
    }
    // Nothing was registered.
    expect((await call(rt.url, 'GET', '/api/swarm/nodes', undefined, asUser)).body.length).toBe(nodesBefore);
  });

  it('the real agent registers with FLEET_JOIN_TOKEN and logs no credential', async () => {
    const token = (await issue()).body.token as string;
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', write: (l) => lines.push(l) });
    const stateDir = await mkdtemp(join(tmpdir(), 'jt-agent-'));
    try {
      const client = new ControlPlaneClient({
        baseUrl: rt.url,
        logger,
        joinToken: token,
        backoff: { baseMs: 1, maxMs: 5 },
      });
      const registrar = new Registrar({
        client,
        stateDir,
        url: rt.url,
        nodeName: 'real-agent',
        logger,
        buildRequest: async () => new ScriptedAgent(rt.url, 'real-agent').registerBody(),
      });
      const reg = await registrar.start(new AbortController().signal);
      expect(reg.nodeId).toMatch(/^real-agent-/);
      expect(lines.some((l) => l.includes('"registered"'))).toBe(true);
      expect(lines.join('\n')).not.toContain(token);
      expect(lines.join('\n')).not.toContain(reg.token);
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  it('refuses a token past its TTL', async () => {
    const token = (await issue()).body.token as string;
    expect((await register('ttl-before', { authorization: `Bearer ${token}` })).status).toBe(200);
    clockOffsetMs += (TTL_SECONDS + 1) * 1000;
    const after = await register('ttl-after', { authorization: `Bearer ${token}` });
    expect(after.status).toBe(401);
    // The API key still works after the jump.
    expect((await register('ttl-key', asUser)).status).toBe(200);
  });

  it('never puts a token in the logs or in any response but its issue', async () => {
    const listings = await Promise.all(
      ['/api/swarm/nodes', '/api/swarm/status', '/api/nodes/', '/api/swarm/containers'].map((p) =>
        call(rt.url, 'GET', p, undefined, asUser),
      ),
    );
    const bodies = listings.map((r) => JSON.stringify(r.body)).join('\n');
    const logs = captured.join('');
    expect(issued.length).toBeGreaterThan(4);
    // The logger did write (requests at INFO and more at DEBUG), so its silence about tokens means something.
    expect(logs).toContain('"request"');
    for (const t of issued) {
      expect(logs).not.toContain(t);
      expect(bodies).not.toContain(t);
      expect(logs).not.toContain(t.slice(JOIN_TOKEN_PREFIX.length));
    }
    expect(logs).not.toContain(API_KEY);
  });
});
