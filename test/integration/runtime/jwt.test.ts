import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { resetJwksCache } from '../../../functions/core/jwt.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { jwks, signJwt, testKey, type TestKey } from '../../harness/jwt.js';
import { call } from '../../harness/scripted-agent.js';

/**
 * Signed-in users through a JWT issuer's keys, on the embedded runtime with API_AUTH=true: tokens
 * signed here with node's crypto (RS256 and ES256), the issuer's JWKS served on loopback (allowed
 * by OUTBOUND_ALLOWLIST) or read from a file; the role claim mapped to the same roles API keys have.
 */
const ISSUER = 'https://issuer.fleet.test/pool-1';
const AUDIENCE = 'fleet-console';
const BOOTSTRAP = 'jwt-suite-bootstrap-key-0123456789';

const rsa = testKey('rsa-1');
const ec = testKey('ec-1', 'ES256');
const rotated = testKey('rsa-2');
const stranger = testKey('rsa-1'); // the same key id, another key

const nowS = () => Math.floor(Date.now() / 1000);
const claims = (over: Record<string, unknown> = {}) => ({
  iss: ISSUER,
  aud: AUDIENCE,
  sub: 'user-0001',
  email: 'ada@example.com',
  groups: ['viewer'],
  iat: nowS(),
  exp: nowS() + 600,
  ...over,
});
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('JWT sign-in (embedded runtime, JWKS on loopback)', () => {
  let rt: Runtime;
  let server: Server;
  let served: TestKey[] = [rsa, ec];
  let fetches = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      fetches++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(jwks(...served)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    resetJwksCache();
    rt = await startRuntime({
      port: 0,
      env: {
        AWS_ENDPOINT_URL: undefined,
        API_AUTH: 'true',
        LOG_LEVEL: 'SILENT',
        JWT_ISSUER: ISSUER,
        JWT_AUDIENCE: AUDIENCE,
        JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks.json`,
        JWT_ROLE_CLAIM: 'groups',
        JWT_ROLE_MAP: 'fleet-ops=operator, fleet-admins=admin',
        OUTBOUND_ALLOWLIST: '127.0.0.1',
      },
    });
    await rt.ctx.secrets.put('api-key', BOOTSTRAP);
  });
  afterAll(async () => {
    await rt?.stop();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('lets a viewer in as a user with the mapped role, and no further', async () => {
    const token = signJwt(rsa, claims());
    const me = await call(rt.url, 'GET', '/api/whoami', undefined, bearer(token));
    expect(me).toEqual({
      status: 200,
      body: { name: 'ada@example.com', key_id: null, role: 'viewer', auth: true },
    });
    expect((await call(rt.url, 'GET', '/api/nodes/', undefined, bearer(token))).status).toBe(200);
    const start = await call(rt.url, 'POST', '/api/nodes/x/cordon', undefined, bearer(token));
    expect(start.status).toBe(403);
    expect(start.body.detail).toMatch(
      /The viewer role may not call POST \/api\/nodes\/\{node_id\}\/cordon: it needs operator/,
    );
  });

  it('maps groups to roles (the highest wins) and takes ES256 tokens', async () => {
    const operator = signJwt(ec, claims({ groups: ['staff', 'fleet-ops'] }));
    expect((await call(rt.url, 'GET', '/api/whoami', undefined, bearer(operator))).body.role).toBe(
      'operator',
    );
    expect((await call(rt.url, 'GET', '/api/keys', undefined, bearer(operator))).status).toBe(403);
    const admin = signJwt(
      rsa,
      claims({ groups: ['fleet-ops', 'fleet-admins'], sub: 'user-0002', email: 'root@example.com' }),
    );
    expect((await call(rt.url, 'GET', '/api/whoami', undefined, bearer(admin))).body.role).toBe('admin');
    // A string claim and a Cognito access token's client_id instead of aud.
    const { aud: _aud, ...noAud } = claims({ groups: 'operator', client_id: AUDIENCE });
    expect((await call(rt.url, 'GET', '/api/whoami', undefined, bearer(signJwt(rsa, noAud)))).body.role).toBe(
      'operator',
    );
  });

  it('an admin user issues a key; the audit log and the key name the user', async () => {
    const admin = signJwt(
      rsa,
      claims({ groups: ['fleet-admins'], sub: 'user-0002', email: 'root@example.com' }),
    );
    const created = await call(
      rt.url,
      'POST',
      '/api/keys',
      { name: 'from-sso', role: 'viewer' },
      bearer(admin),
    );
    expect(created.status).toBe(201);
    expect(created.body.created_by).toBe('root@example.com (user user-0002)');
    const audit = await call(rt.url, 'GET', '/api/audit?limit=50', undefined, bearer(admin));
    expect(audit.status).toBe(200);
    const entry = (
      audit.body.entries as { method: string; route: string; actor: unknown; outcome: string }[]
    ).find((e) => e.method === 'POST' && e.route === '/api/keys');
    expect(entry).toMatchObject({
      actor: { type: 'user', id: 'user-0002', name: 'root@example.com', role: 'admin' },
      outcome: 'ok',
    });
  });

  it.each([
    ['expired', () => signJwt(rsa, claims({ exp: nowS() - 120 }))],
    ['not valid yet', () => signJwt(rsa, claims({ nbf: nowS() + 600 }))],
    ['another issuer', () => signJwt(rsa, claims({ iss: 'https://evil.example/' }))],
    ['another audience', () => signJwt(rsa, claims({ aud: 'other-app' }))],
    ['no subject', () => signJwt(rsa, claims({ sub: undefined }))],
    ['a key the issuer does not publish', () => signJwt(stranger, claims())],
    [
      'a tampered payload',
      () => {
        const [h, , s] = signJwt(rsa, claims()).split('.');
        return `${h}.${Buffer.from(JSON.stringify(claims({ groups: ['admin'] }))).toString('base64url')}.${s}`;
      },
    ],
    [
      'alg none',
      () => {
        const [h, p] = signJwt(rsa, claims({ groups: ['admin'] }), { alg: 'none' }).split('.');
        return `${h}.${p}.`;
      },
    ],
    ['HS256 keyed with the public key', () => signJwt(rsa, claims({ groups: ['admin'] }), { alg: 'HS256' })],
  ])('refuses a token: %s (401, the route error shape)', async (_why, make) => {
    const res = await fetch(`${rt.url}/api/whoami`, { headers: bearer(make()) });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(await res.json()).toEqual({ detail: 'Invalid or missing API key' });
  });

  it('a valid token whose claim maps to no role is a 403 saying so', async () => {
    const res = await call(
      rt.url,
      'GET',
      '/api/whoami',
      undefined,
      bearer(signJwt(rsa, claims({ groups: ['staff'] }))),
    );
    expect(res.status).toBe(403);
    expect(res.body.detail).toBe("Signed in, but the token's groups claim maps to no role");
  });

  it('reads the keys again when a token names a key id it has not seen (rotation)', async () => {
    const before = fetches;
    served = [rsa, ec, rotated];
    const res = await call(rt.url, 'GET', '/api/whoami', undefined, bearer(signJwt(rotated, claims())));
    expect(res.status).toBe(200);
    expect(fetches).toBe(before + 1);
    // Known keys are served from the cache.
    await call(rt.url, 'GET', '/api/whoami', undefined, bearer(signJwt(rotated, claims())));
    expect(fetches).toBe(before + 1);
  });

  it('a signed-in user may open the WebSocket streams (?token=); a refused token is closed 4401', async () => {
    const ws = (token: string) => {
      const socket = new WebSocket(`${rt.url.replace(/^http/, 'ws')}/ws/metrics?token=${token}`);
      socket.on('error', () => undefined);
      const frame = new Promise<{ type: string }>((resolve) =>
        socket.once('message', (data) => resolve(JSON.parse(String(data)) as { type: string })),
      );
      const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
      return { socket, frame, closed };
    };
    const ok = ws(signJwt(rsa, claims()));
    expect((await ok.frame).type).toBe('metrics');
    ok.socket.close();
    await ok.closed;
    expect(await ws(signJwt(stranger, claims())).closed).toBe(4401);
  });

  it('API keys keep working beside tokens', async () => {
    expect((await call(rt.url, 'GET', '/api/whoami', undefined, bearer(BOOTSTRAP))).body).toMatchObject({
      role: 'admin',
      key_id: 'bootstrap',
    });
  });
});

describe('JWT sign-in with the JWKS in a file; an issuer on loopback needs OUTBOUND_ALLOWLIST', () => {
  let dir: string;
  const runtimes: Runtime[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleet-jwks-'));
    await writeFile(join(dir, 'jwks.json'), JSON.stringify(jwks(ec)));
  });
  afterAll(async () => {
    for (const r of runtimes) await r.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const start = async (env: Record<string, string>) => {
    resetJwksCache();
    const rt = await startRuntime({
      port: 0,
      env: {
        AWS_ENDPOINT_URL: undefined,
        API_AUTH: 'true',
        LOG_LEVEL: 'SILENT',
        JWT_ISSUER: ISSUER,
        JWT_ROLE_CLAIM: 'groups',
        ...env,
      },
    });
    runtimes.push(rt);
    return rt;
  };

  it('verifies against the file', async () => {
    const rt = await start({ JWT_JWKS_FILE: join(dir, 'jwks.json') });
    const token = signJwt(ec, claims({ groups: ['operator'] }));
    expect((await call(rt.url, 'GET', '/api/whoami', undefined, bearer(token))).body.role).toBe('operator');
  });

  it('does not start with keys on a loopback issuer the allowlist does not name, and fetches nothing', async () => {
    let asked = 0;
    const server = createServer((_req, res) => {
      asked++;
      res.end(JSON.stringify(jwks(ec)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as { port: number }).port;
      await expect(start({ JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks.json` })).rejects.toThrow(
        `JWT_JWKS_URL: http://127.0.0.1:${port}/jwks.json is refused: 127.0.0.1 is a loopback address (OUTBOUND_ALLOWLIST may name it)`,
      );
      await expect(start({ JWT_ISSUER: `http://127.0.0.1:${port}/pool` })).rejects.toThrow(
        /JWT_ISSUER: .* is refused: .*OUTBOUND_ALLOWLIST/,
      );
      expect(asked).toBe(0);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
