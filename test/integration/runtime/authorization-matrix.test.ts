import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allows, requiredRole, type Role } from '../../../functions/core/access.js';
import { resetApiKeyCache } from '../../../functions/core/http.js';
import type { AnyRoute } from '../../../functions/core/route.js';
import { routes } from '../../../functions/routes.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call, ScriptedAgent } from '../../harness/scripted-agent.js';
import { jwks, signJwt, testKey } from '../../harness/jwt.js';

const BOOTSTRAP = 'matrix-bootstrap-key-0123456789';
type Credential = 'none' | Role | 'node' | 'join' | 'user-operator';
/** `user-operator`: a signed-in user (a JWT of the configured issuer) whose group maps to operator. */
const CREDENTIALS: Credential[] = ['none', 'viewer', 'operator', 'admin', 'node', 'join', 'user-operator'];
const ISSUER = 'https://issuer.matrix.test/';

/**
 * Every operation of the route table, called with no key, a viewer, an operator and an admin
 * key, a node credential, a join token and a signed-in user's JWT (operator), answers exactly what its declared role says: 401
 * without a credential it takes, 403 (in the route's error shape) for a role below its own,
 * anything else (it was let in) otherwise. The OpenAPI document names the same role.
 */
describe('authorization matrix (embedded runtime, API_AUTH=true)', () => {
  let rt: Runtime;
  const keys: Partial<Record<Credential, string>> = {};
  let nodeCount = 0;
  let jwksDir: string | undefined;

  beforeAll(async () => {
    // A bare environment: no registry, no Novita key, no model, nothing reached outside.
    const issuerKey = testKey('matrix');
    jwksDir = await mkdtemp(join(tmpdir(), 'matrix-jwks-'));
    await writeFile(join(jwksDir, 'jwks.json'), JSON.stringify(jwks(issuerKey)));
    rt = await startRuntime({
      port: 0,
      env: {
        AWS_ENDPOINT_URL: undefined,
        API_AUTH: 'true',
        LOG_LEVEL: 'SILENT',
        COMMAND_WAIT_MS: '100',
        JWT_ISSUER: ISSUER,
        JWT_JWKS_FILE: join(jwksDir, 'jwks.json'),
        JWT_ROLE_MAP: 'fleet-ops=operator',
      },
    });
    const now = Math.floor(Date.now() / 1000);
    keys['user-operator'] = signJwt(issuerKey, {
      iss: ISSUER,
      sub: 'matrix-user',
      'cognito:groups': ['fleet-ops'],
      iat: now,
      exp: now + 3600,
    });
    await rt.ctx.secrets.put('api-key', BOOTSTRAP);
    resetApiKeyCache();
    keys.admin = BOOTSTRAP;
    for (const role of ['viewer', 'operator'] as const) {
      const res = await call(rt.url, 'POST', '/api/keys', { name: `matrix-${role}`, role }, auth(BOOTSTRAP));
      expect(res.status).toBe(201);
      keys[role] = res.body.key;
    }
    keys.join = (await call(rt.url, 'GET', '/api/swarm/join-token', undefined, auth(BOOTSTRAP))).body.token;
  });
  afterAll(async () => {
    await rt?.stop();
    if (jwksDir) await rm(jwksDir, { recursive: true, force: true });
  });

  function auth(key: string | undefined): Record<string, string> {
    return key ? { authorization: `Bearer ${key}` } : {};
  }

  /** A fresh node each time: some agent routes rotate or replace the credential they are called with. */
  async function nodeToken(): Promise<string> {
    const agent = new ScriptedAgent(rt.url, `matrix-node-${nodeCount++}`);
    return (await agent.register(auth(BOOTSTRAP))).token;
  }

  /** Any answer: JSON bodies parsed, others (Prometheus text, HTML) kept as text. */
  async function probe(method: string, path: string, body: unknown, headers: Record<string, string>) {
    const res = await fetch(`${rt.url}${path}`, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    const json = (res.headers.get('content-type') ?? '').includes('json') && text;
    return { status: res.status, body: (json ? JSON.parse(text) : text) as unknown };
  }

  const concrete = (r: AnyRoute) => r.path.replace(/\{([A-Za-z_]+)\}/g, 'matrix-probe');

  function expected(r: AnyRoute, c: Credential): 'in' | 401 | 403 {
    if (c === 'user-operator') return expected(r, 'operator');
    if (r.scope === 'agent') return c === 'node' ? 'in' : 401;
    if (c === 'none') return 401;
    // Registration is the one route that takes these credentials (/metrics takes its scrape token).
    if (c === 'node' || c === 'join') return r.path === '/agent/register' ? 'in' : 401;
    return allows(c, requiredRole(r)) ? 'in' : 403;
  }

  const protectedRoutes = routes.filter((r) => r.scope !== 'public');

  it('covers the table: every route not public, with its role', () => {
    expect(protectedRoutes.length).toBeGreaterThan(100);
    const byRole = { viewer: 0, operator: 0, admin: 0 };
    for (const r of protectedRoutes.filter((x) => x.scope === 'user')) byRole[requiredRole(r)]++;
    expect(byRole.viewer).toBeGreaterThan(30);
    expect(byRole.operator).toBeGreaterThan(30);
    expect(byRole.admin).toBeGreaterThanOrEqual(14);
  });

  it('answers every operation × credential as the declared role says', async () => {
    const mismatches: string[] = [];
    for (const r of protectedRoutes) {
      for (const c of CREDENTIALS) {
        const key = c === 'node' ? await nodeToken() : keys[c as Exclude<Credential, 'node'>];
        const body = r.method === 'GET' || r.method === 'DELETE' ? undefined : {};
        const res = await probe(r.method, concrete(r), body, auth(key));
        const want = expected(r, c);
        const ok =
          want === 'in' ? res.status !== 401 && res.status !== 403 && res.status > 0 : res.status === want;
        if (!ok) mismatches.push(`${r.method} ${r.path} as ${c}: ${res.status}, expected ${want}`);
        if (ok && want === 403) {
          const b = res.body as Record<string, unknown>;
          const shapeOk =
            r.errorStyle === 'novita'
              ? (b.error as { code?: string })?.code === 'FORBIDDEN'
              : typeof b.detail === 'string' &&
                (b.detail as string).includes(`needs ${requiredRole(r)}`) &&
                (r.errorStyle !== 'training' || b.error_type === 'HTTPError');
          if (!shapeOk) mismatches.push(`${r.method} ${r.path} as ${c}: 403 body ${JSON.stringify(b)}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
  }, 240_000);

  it('/openapi.json names each operation’s role', async () => {
    const doc = (await call(rt.url, 'GET', '/openapi.json')).body as {
      paths: Record<
        string,
        Record<string, { security?: Record<string, string[]>[]; 'x-required-role'?: string }>
      >;
    };
    let checked = 0;
    for (const r of routes.filter((x) => x.scope === 'user')) {
      const op = doc.paths[r.path]?.[r.method.toLowerCase()];
      expect(op, `${r.method} ${r.path}`).toBeDefined();
      expect(op!.security).toEqual([{ bearer: [requiredRole(r)] }]);
      expect(op!['x-required-role']).toBe(requiredRole(r));
      checked++;
    }
    expect(checked).toBeGreaterThan(100);
  });
});
