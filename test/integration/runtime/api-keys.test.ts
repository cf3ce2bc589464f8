import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessKeys } from '../../../functions/core/keys.js';
import { resetApiKeyCache } from '../../../functions/core/http.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { deploymentNames, uniqueName } from '../../harness/services.js';
import { eventually } from '../../harness/scripted-agent.js';

const BOOTSTRAP = 'keys-bootstrap-key-0123456789';

interface Answer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  requestId: string | null;
}

const moto = process.env.AWS_ENDPOINT_URL;
if (!moto && process.env.CI === 'true')
  throw new Error('CI=true but AWS_ENDPOINT_URL is not set: the emulator suite cannot be skipped');

const modes = [
  { name: 'embedded', env: { AWS_ENDPOINT_URL: undefined } },
  {
    name: 'emulator (moto)',
    env: {
      AWS_ENDPOINT_URL: moto,
      AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
      AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'test',
      AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'test',
      ...deploymentNames(uniqueName('keys')),
    },
  },
];

/** API keys with roles, revocation at once, expiry, and the audit log of state-changing calls. */
describe.each(modes)('API keys and the audit log ($name, API_AUTH=true)', (mode) => {
  const skip = mode.name.startsWith('emulator') && !moto;
  let rt: Runtime;
  let clockOffsetMs = 0;

  beforeAll(async () => {
    if (skip) return;
    rt = await startRuntime({
      port: 0,
      now: () => Date.now() + clockOffsetMs,
      env: { ...mode.env, API_AUTH: 'true', LOG_LEVEL: 'SILENT', COMMAND_WAIT_MS: '100' },
    });
    await rt.ctx.secrets.put('api-key', BOOTSTRAP);
    resetApiKeyCache();
  });
  afterAll(async () => rt?.stop());

  async function api(method: string, path: string, key: string | undefined, body?: unknown): Promise<Answer> {
    const res = await fetch(`${rt.url}${path}`, {
      method,
      headers: {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return {
      status: res.status,
      body: text ? JSON.parse(text) : undefined,
      requestId: res.headers.get('x-request-id'),
    };
  }

  const issue = async (name: string, role: string, extra: Record<string, unknown> = {}) => {
    const res = await api('POST', '/api/keys', BOOTSTRAP, { name, role, ...extra });
    expect(res.status).toBe(201);
    return res.body as { id: string; key: string; name: string; role: string };
  };

  it.skipIf(skip)('issues a key once, stores only its hash, lists keys without secrets', async () => {
    const res = await api('POST', '/api/keys', BOOTSTRAP, { name: 'ci-viewer', role: 'viewer' });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{16}$/),
      name: 'ci-viewer',
      role: 'viewer',
      key: expect.stringMatching(/^FLEETAK-1-[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/),
      created_at: expect.any(String),
      expires_at: null,
      created_by: 'bootstrap (bootstrap)',
    });
    const k = accessKeys.apiKey(res.body.id);
    const stored = await rt.ctx.store.get(k.pk, k.sk);
    expect(JSON.stringify(stored)).not.toContain(res.body.key);
    expect(stored?.keyHash).toBe(createHash('sha256').update(res.body.key).digest('hex'));

    const listed = await api('GET', '/api/keys', BOOTSTRAP);
    expect(listed.status).toBe(200);
    expect(listed.body.keys).toContainEqual(
      expect.objectContaining({ id: res.body.id, name: 'ci-viewer', role: 'viewer' }),
    );
    expect(JSON.stringify(listed.body)).not.toContain(res.body.key);
  });

  it.skipIf(skip)('refuses bad input with 400 and writes nothing', async () => {
    const before = (await api('GET', '/api/keys', BOOTSTRAP)).body.keys.length;
    for (const body of [
      { name: 'x', role: 'root' },
      { role: 'viewer' },
      { name: '', role: 'viewer' },
      { name: 'x', role: 'viewer', expires_at: 'tomorrow' },
      { name: 'x', role: 'viewer', expires_at: new Date(Date.now() + clockOffsetMs - 60_000).toISOString() },
    ]) {
      const res = await api('POST', '/api/keys', BOOTSTRAP, body);
      expect(res.status).toBe(400);
      expect(res.body.detail[0].loc[0]).toBe('body');
    }
    expect((await api('GET', '/api/keys', BOOTSTRAP)).body.keys.length).toBe(before);
  });

  it.skipIf(skip)('roles: viewer reads, operator acts, admin manages; a weaker role is a 403', async () => {
    const viewer = (await issue('role-viewer', 'viewer')).key;
    const operator = (await issue('role-operator', 'operator')).key;
    const admin = (await issue('role-admin', 'admin')).key;

    expect((await api('GET', '/api/swarm/nodes', viewer)).status).toBe(200);
    const denied = await api('POST', '/api/swarm/services', viewer, { name: 'web', image: 'nginx:1' });
    expect(denied.status).toBe(403);
    expect(denied.body).toEqual({
      detail: 'The viewer role may not call POST /api/swarm/services: it needs operator',
    });

    // The operator passes the role check (the service is then placed or waits: not a 401/403).
    const made = await api('POST', '/api/swarm/services', operator, {
      name: 'web',
      image: 'nginx:1',
      replicas: 0,
    });
    expect([200, 201, 202]).toContain(made.status);
    expect((await api('GET', '/api/keys', operator)).status).toBe(403);
    expect((await api('GET', '/api/swarm/join-token', operator)).status).toBe(403);

    expect((await api('GET', '/api/keys', admin)).status).toBe(200);
    // Novita routes answer a 403 in their own shape.
    const novita = await api('POST', '/api/instances', viewer, {});
    expect(novita.status).toBe(403);
    expect(novita.body.error).toMatchObject({ code: 'FORBIDDEN' });
  });

  it.skipIf(skip)('revocation holds at once; an expired key is refused', async () => {
    const k = await issue('short-lived', 'viewer');
    expect((await api('GET', '/api/swarm/nodes', k.key)).status).toBe(200);
    const del = await api('DELETE', `/api/keys/${k.id}`, BOOTSTRAP);
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ id: k.id, name: 'short-lived' });
    expect((await api('GET', '/api/swarm/nodes', k.key)).status).toBe(401);
    expect((await api('DELETE', `/api/keys/${k.id}`, BOOTSTRAP)).status).toBe(404);

    const expiring = await issue('expiring', 'viewer', {
      expires_at: new Date(Date.now() + clockOffsetMs + 60_000).toISOString(),
    });
    expect((await api('GET', '/api/swarm/nodes', expiring.key)).status).toBe(200);
    clockOffsetMs += 61_000;
    expect((await api('GET', '/api/swarm/nodes', expiring.key)).status).toBe(401);
    // A key of another length, or a forged one in the right format, is just a 401.
    for (const forged of ['x', 'x'.repeat(300), `FLEETAK-1-${'0'.repeat(16)}.${'A'.repeat(43)}`])
      expect((await api('GET', '/api/swarm/nodes', forged)).status).toBe(401);
  });

  it.skipIf(skip)(
    'records every state-changing call: who, what, targets, outcome, request id; pages newest first',
    async () => {
      const auditor = await issue('auditor', 'operator');
      // From just after the issue's own entry: it may carry the same millisecond as a clock read here.
      const issued = await eventually(async () => {
        const newest = (await api('GET', '/api/audit?limit=1', BOOTSTRAP)).body.entries[0];
        expect(newest).toMatchObject({ method: 'POST', route: '/api/keys', status: 201 });
        return newest as { at: string };
      });
      const start = new Date(Date.parse(issued.at) + 1).toISOString();
      const denied = await api('POST', '/api/keys', auditor.key, { name: 'nope', role: 'admin' });
      const made = await api('POST', '/api/swarm/services', auditor.key, {
        name: 'audited',
        image: 'nginx:1',
        replicas: 0,
      });
      const gone = await api('DELETE', `/api/keys/${auditor.id}`, BOOTSTRAP);
      await api('GET', '/api/swarm/nodes', BOOTSTRAP); // reads are not recorded
      expect(denied.status).toBe(403);

      const log = await api('GET', `/api/audit?since=${encodeURIComponent(start)}`, BOOTSTRAP);
      expect(log.status).toBe(200);
      const entries = log.body.entries as Record<string, unknown>[];
      expect(entries.map((e) => `${e.method} ${e.route} ${e.status}`)).toEqual([
        `DELETE /api/keys/{key_id} 200`,
        `POST /api/swarm/services ${made.status}`,
        'POST /api/keys 403',
      ]);
      expect(entries[0]).toMatchObject({
        request_id: gone.requestId,
        actor: { type: 'key', id: 'bootstrap', name: 'bootstrap', role: 'admin' },
        targets: { key_id: auditor.id },
        outcome: 'ok',
      });
      expect(entries[2]).toMatchObject({
        request_id: denied.requestId,
        actor: { type: 'key', id: auditor.id, name: 'auditor', role: 'operator' },
        path: '/api/keys',
        outcome: 'denied',
      });

      const byActor = await api(
        'GET',
        `/api/audit?since=${encodeURIComponent(start)}&actor=auditor`,
        BOOTSTRAP,
      );
      expect(byActor.body.entries.map((e: { route: string }) => e.route)).toEqual([
        '/api/swarm/services',
        '/api/keys',
      ]);

      // Cursor paging: two pages of two cover the entries of the whole log in order, no overlap.
      const all = (await api('GET', '/api/audit?limit=500', BOOTSTRAP)).body.entries as {
        request_id: string;
      }[];
      const first = await api('GET', '/api/audit?limit=2', BOOTSTRAP);
      expect(first.body.entries).toHaveLength(2);
      expect(first.body.cursor).toEqual(expect.any(String));
      const second = await api(
        'GET',
        `/api/audit?limit=2&cursor=${encodeURIComponent(first.body.cursor)}`,
        BOOTSTRAP,
      );
      expect(
        [...first.body.entries, ...second.body.entries].map((e: { request_id: string }) => e.request_id),
      ).toEqual(all.slice(0, 4).map((e) => e.request_id));
      expect((await api('GET', '/api/audit?cursor=not-a-cursor', BOOTSTRAP)).status).toBe(400);
      expect((await api('GET', '/api/audit', (await issue('v', 'viewer')).key)).status).toBe(403);

      // Kept 90 days, then DynamoDB's TTL removes it.
      const stored = await rt.ctx.store.query(accessKeys.auditPk, { limit: 1, ascending: false });
      const ttl = stored.items[0]!.expiresAt! * 1000 - (Date.now() + clockOffsetMs);
      expect(ttl).toBeGreaterThan(89 * 86_400_000);
      expect(ttl).toBeLessThanOrEqual(90 * 86_400_000);
    },
  );
});
