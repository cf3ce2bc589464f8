import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlaneClient, ControlPlaneError } from '../../../agent/client.js';
import { createLogger } from '../../../agent/log.js';
import { Registrar } from '../../../agent/register.js';
import { statePaths } from '../../../agent/state.js';
import { resetApiKeyCache } from '../../../functions/core/http.js';
import { joinTokenKeys } from '../../../functions/core/keys.js';
import { hashToken } from '../../../functions/core/tokens.js';
import { dispatchCommand } from '../../../functions/nodes/commands.js';
import { JOIN_TOKEN_PREFIX } from '../../../functions/nodes/join-tokens.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call, ScriptedAgent } from '../../harness/scripted-agent.js';

const API_KEY = 'identity-api-key-0123456789';
const TTL_SECONDS = 3600;

const beat = {
  metrics: { cpuPercent: 1, memoryUsedMb: 1, memoryTotalMb: 2, diskUsedGb: 1, diskTotalGb: 2, gpus: [] },
  containers: [],
};

/**
 * A node's identity belongs to whoever holds its credential: a join token only creates nodes,
 * an existing node re-registers with its own credential or the API key. Embedded runtime,
 * API_AUTH=true, the agent's own client and registrar.
 */
describe('node identity (embedded runtime, API_AUTH=true)', () => {
  let rt: Runtime;
  let clockOffsetMs = 0;
  const asAdmin = { authorization: `Bearer ${API_KEY}` };
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  beforeAll(async () => {
    rt = await startRuntime({
      port: 0,
      now: () => Date.now() + clockOffsetMs,
      env: {
        ...process.env,
        AWS_ENDPOINT_URL: undefined,
        API_AUTH: 'true',
        LOG_LEVEL: 'SILENT',
        JOIN_TOKEN_TTL_SECONDS: String(TTL_SECONDS),
      },
    });
    await rt.ctx.secrets.put('api-key', API_KEY);
    resetApiKeyCache();
  });
  afterAll(async () => {
    await rt?.stop();
  });

  const issue = async (query = '') => {
    const res = await call(rt.url, 'GET', `/api/swarm/join-token?role=worker${query}`, undefined, asAdmin);
    expect(res.status).toBe(200);
    return res.body as { token: string; id: string; expires_at: string; max_uses: number | null };
  };
  const nodeCount = async () =>
    (await call(rt.url, 'GET', '/api/swarm/nodes', undefined, asAdmin)).body.length;
  const heartbeat = (token: string) => call(rt.url, 'POST', '/agent/heartbeat', beat, bearer(token));

  it('a join token cannot take over an existing node: 409, and the node keeps its credential and its commands', async () => {
    const victim = new ScriptedAgent(rt.url, 'victim');
    await victim.register(bearer((await issue()).token));
    const before = await nodeCount();

    // The attacker holds a live join token (another one, or the very one the victim used).
    const attacker = new ScriptedAgent(rt.url, 'victim');
    const takeover = await call(
      rt.url,
      'POST',
      '/agent/register',
      attacker.registerBody(),
      bearer((await issue()).token),
    );
    expect(takeover.status).toBe(409);
    expect(takeover.body).toEqual({
      detail:
        'Node name victim is already registered: re-registering a node needs its own credential or the API key',
    });
    expect(JSON.stringify(takeover.body)).not.toMatch(/token/i);
    expect(await nodeCount()).toBe(before);
    expect((await heartbeat(victim.token)).status).toBe(200);

    // The victim, not the attacker, receives the node's commands; the attacker's own node cannot answer them.
    const commandId = await dispatchCommand(rt.ctx, victim.nodeId, { type: 'disk.audit' });
    const own = new ScriptedAgent(rt.url, 'attacker-own');
    await own.register(bearer((await issue()).token));
    expect((await own.poll()).map((m) => m.envelope.commandId)).not.toContain(commandId);
    const forged = await own.result(commandId, { status: 'succeeded', output: { forged: true } });
    expect(forged.status).toBe(404);
    const received = await victim.poll();
    expect(received.map((m) => m.envelope.commandId)).toEqual([commandId]);
    const view = await call(rt.url, 'GET', `/commands/${commandId}`, undefined, asAdmin);
    expect(view.status).toBe(200);
    expect(JSON.stringify(view.body)).not.toContain('forged');
  });

  it("re-registers with the node's own credential: same node, fresh token, the old one refused", async () => {
    const node = new ScriptedAgent(rt.url, 'self-renew');
    const first = await node.register(bearer((await issue()).token));
    const again = await call(rt.url, 'POST', '/agent/register', node.registerBody(), bearer(first.token));
    expect(again.status).toBe(200);
    expect(again.body.nodeId).toBe(first.nodeId);
    expect(again.body.token).not.toBe(first.token);
    expect((await heartbeat(first.token)).status).toBe(401);
    expect((await heartbeat(again.body.token)).status).toBe(200);
    // A spent credential registers nothing either.
    expect(
      (await call(rt.url, 'POST', '/agent/register', node.registerBody(), bearer(first.token))).status,
    ).toBe(401);
  });

  it("one node's credential cannot register another node's name (403) nor create a node", async () => {
    const a = new ScriptedAgent(rt.url, 'cred-a');
    const b = new ScriptedAgent(rt.url, 'cred-b');
    await a.register(bearer((await issue()).token));
    await b.register(bearer((await issue()).token));
    const before = await nodeCount();
    const asOther = await call(rt.url, 'POST', '/agent/register', b.registerBody(), a.auth);
    const asNew = await call(
      rt.url,
      'POST',
      '/agent/register',
      new ScriptedAgent(rt.url, 'cred-new').registerBody(),
      a.auth,
    );
    expect(asOther.status).toBe(403);
    expect(asOther.body).toEqual({
      detail: 'This node credential belongs to another node: it cannot register cred-b',
    });
    expect(asNew.status).toBe(403);
    expect(await nodeCount()).toBe(before);
    expect((await heartbeat(b.token)).status).toBe(200);
    expect((await heartbeat(a.token)).status).toBe(200);
  });

  it('the API key may re-register an existing node (the owner recovering a machine)', async () => {
    const node = new ScriptedAgent(rt.url, 'admin-recovers');
    const first = await node.register(bearer((await issue()).token));
    const recovered = await call(rt.url, 'POST', '/agent/register', node.registerBody(), asAdmin);
    expect(recovered.status).toBe(200);
    expect(recovered.body.nodeId).toBe(first.nodeId);
    expect((await heartbeat(first.token)).status).toBe(401);
  });

  it('join tokens: max_uses, a shorter TTL, listing without secrets, revocation', async () => {
    const once = await issue('&max_uses=1');
    const short = await issue('&ttl_seconds=120');
    const revoked = await issue();
    expect(once.max_uses).toBe(1);
    expect(Date.parse(short.expires_at) - (Date.now() + clockOffsetMs)).toBeLessThanOrEqual(120_000);

    const tooLong = await call(
      rt.url,
      'GET',
      `/api/swarm/join-token?ttl_seconds=${TTL_SECONDS + 1}`,
      undefined,
      asAdmin,
    );
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.detail[0].loc).toEqual(['query', 'ttl_seconds']);

    expect((await new ScriptedAgent(rt.url, 'once-1').register(bearer(once.token))).nodeId).toMatch(
      /^once-1-/,
    );
    const secondUse = await call(
      rt.url,
      'POST',
      '/agent/register',
      new ScriptedAgent(rt.url, 'once-2').registerBody(),
      bearer(once.token),
    );
    expect(secondUse.status).toBe(401);

    const listed = await call(rt.url, 'GET', '/api/swarm/join-tokens', undefined, asAdmin);
    expect(listed.status).toBe(200);
    const byId = new Map((listed.body.tokens as { id: string }[]).map((t) => [t.id, t]));
    expect(byId.get(once.id)).toMatchObject({ id: once.id, role: 'worker', uses: 1, max_uses: 1 });
    expect(byId.get(short.id)).toMatchObject({ uses: 0, max_uses: null, expires_at: short.expires_at });
    for (const t of [once, short, revoked]) expect(JSON.stringify(listed.body)).not.toContain(t.token);

    const del = await call(rt.url, 'DELETE', `/api/swarm/join-tokens/${revoked.id}`, undefined, asAdmin);
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ id: revoked.id });
    const afterRevoke = await call(
      rt.url,
      'POST',
      '/agent/register',
      new ScriptedAgent(rt.url, 'revoked-1').registerBody(),
      bearer(revoked.token),
    );
    expect(afterRevoke.status).toBe(401);
    expect(
      (await call(rt.url, 'DELETE', `/api/swarm/join-tokens/${revoked.id}`, undefined, asAdmin)).status,
    ).toBe(404);
    expect((await call(rt.url, 'DELETE', '/api/swarm/join-tokens/..%2Fx', undefined, asAdmin)).status).toBe(
      400,
    );
    expect(
      (await call(rt.url, 'DELETE', `/api/swarm/join-tokens/${once.id}`, undefined, bearer(short.token)))
        .status,
    ).toBe(401);
    expect(
      (
        (await call(rt.url, 'GET', '/api/swarm/join-tokens', undefined, asAdmin)).body.tokens as {
          id: string;
        }[]
      ).map((t) => t.id),
    ).not.toContain(revoked.id);

    // Past its own TTL (but within JOIN_TOKEN_TTL_SECONDS) the short one is refused; a default one is not.
    const long = await issue();
    clockOffsetMs += 121_000;
    const late = await call(
      rt.url,
      'POST',
      '/agent/register',
      new ScriptedAgent(rt.url, 'late-1').registerBody(),
      bearer(short.token),
    );
    expect(late.status).toBe(401);
    expect((await new ScriptedAgent(rt.url, 'late-2').register(bearer(long.token))).nodeId).toMatch(
      /^late-2-/,
    );
  });

  it('a join token issued before uses were counted still creates nodes', async () => {
    const token = `${JOIN_TOKEN_PREFIX}${'L'.repeat(43)}`;
    await rt.ctx.store.put({
      ...joinTokenKeys.joinToken(hashToken(token)),
      role: 'worker',
      issuedAt: new Date(Date.now() + clockOffsetMs).toISOString(),
      expiresAt: Math.floor((Date.now() + clockOffsetMs) / 1000) + 600,
    });
    expect((await new ScriptedAgent(rt.url, 'legacy-1').register(bearer(token))).nodeId).toMatch(
      /^legacy-1-/,
    );
    expect((await new ScriptedAgent(rt.url, 'legacy-2').register(bearer(token))).nodeId).toMatch(
      /^legacy-2-/,
    );
  });

  it('the real agent: a restart re-registers with its stored credential (the join token alone would be a 409); it rotates its credential', async () => {
    const joinToken = (await issue()).token;
    const logger = createLogger({ level: 'error', write: () => undefined });
    const stateDir = await mkdtemp(join(tmpdir(), 'identity-agent-'));
    const agentFor = (dir: string) => {
      const client = new ControlPlaneClient({
        baseUrl: rt.url,
        logger,
        joinToken,
        backoff: { baseMs: 1, maxMs: 5 },
      });
      const registrar = new Registrar({
        client,
        stateDir: dir,
        url: rt.url,
        nodeName: 'real-identity',
        logger,
        buildRequest: async () => new ScriptedAgent(rt.url, 'real-identity').registerBody(),
      });
      return { client, registrar };
    };
    const otherDir = await mkdtemp(join(tmpdir(), 'identity-other-'));
    try {
      const first = await agentFor(stateDir).registrar.start(new AbortController().signal);
      // A restart: a new process with the same state folder.
      const restarted = agentFor(stateDir);
      const second = await restarted.registrar.start(new AbortController().signal);
      expect(second.nodeId).toBe(first.nodeId);
      expect((await heartbeat(first.token)).status).toBe(401);
      expect((await heartbeat(second.token)).status).toBe(200);

      // Rotation: the stored credential changes, the previous one stops working.
      await restarted.registrar.rotateToken();
      const stored = JSON.parse(await readFile(statePaths(stateDir).registration, 'utf8')) as {
        token: string;
      };
      expect(stored.token).not.toBe(second.token);
      expect(stored.token.startsWith(`${first.nodeId}.`)).toBe(true);
      expect((await heartbeat(second.token)).status).toBe(401);
      expect((await heartbeat(stored.token)).status).toBe(200);
      const audit = await call(rt.url, 'GET', '/api/audit?limit=500', undefined, asAdmin);
      expect(audit.body.entries).toContainEqual(
        expect.objectContaining({
          route: '/agent/token/rotate',
          actor: { type: 'node', id: first.nodeId, name: 'real-identity' },
          targets: { node_id: first.nodeId },
          outcome: 'ok',
        }),
      );

      // Another machine with only the join token cannot claim the name.
      const error = await agentFor(otherDir)
        .registrar.start(new AbortController().signal)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(ControlPlaneError);
      expect((error as ControlPlaneError).status).toBe(409);
      expect((await heartbeat(stored.token)).status).toBe(200);
    } finally {
      await rm(stateDir, { recursive: true, force: true });
      await rm(otherDir, { recursive: true, force: true });
    }
  });
});
