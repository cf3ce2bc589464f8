import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ControlPlaneClient } from '../../../agent/client.js';
import { loadConfig, USAGE } from '../../../agent/config.js';
import { createLogger } from '../../../agent/log.js';

const deps = { hostname: () => 'edge-1', homedir: () => '/home/op' };
const run = (argv: string[], env: NodeJS.ProcessEnv = {}, files: Record<string, string> = {}) => {
  const parsed = loadConfig(argv, env, { ...deps, readFile: (p) => files[p] ?? '' });
  if (parsed.kind !== 'run') throw new Error(parsed.kind);
  return parsed.config;
};

describe('agent join token configuration', () => {
  it('reads --join-token, then FLEET_JOIN_TOKEN, then the config file', () => {
    const files = { '/a.json': JSON.stringify({ joinToken: 'FLEETJT-1-file' }) };
    const env = { FLEET_AGENT_CONFIG: '/a.json' };
    expect(run([], env, files).joinToken).toBe('FLEETJT-1-file');
    expect(run([], { ...env, FLEET_JOIN_TOKEN: 'FLEETJT-1-env' }, files).joinToken).toBe('FLEETJT-1-env');
    expect(
      run(['--join-token', 'FLEETJT-1-flag'], { ...env, FLEET_JOIN_TOKEN: 'FLEETJT-1-env' }, files).joinToken,
    ).toBe('FLEETJT-1-flag');
    expect(run([]).joinToken).toBeUndefined();
    expect(USAGE).toContain('FLEET_JOIN_TOKEN');
  });
});

describe('ControlPlaneClient with a join token', () => {
  let server: Server;
  let base: string;
  const seen: { url: string; auth: string | undefined }[] = [];
  let refuseNodeTokens = false;
  beforeEach(async () => {
    seen.length = 0;
    refuseNodeTokens = false;
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        seen.push({ url: req.url ?? '', auth: req.headers.authorization });
        if (
          refuseNodeTokens &&
          req.url === '/agent/register' &&
          !req.headers.authorization?.includes('FLEETJT')
        ) {
          res.writeHead(401, { 'content-type': 'application/json' }).end('{"detail":"Invalid agent token"}');
          return;
        }
        const body =
          req.url === '/agent/register'
            ? {
                nodeId: 'n-1',
                token: 'n-1.node-secret',
                channel: { type: 'http' },
                heartbeatIntervalSeconds: 10,
              }
            : {};
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const registerBody = {
    nodeName: 'edge-1',
    hostname: 'edge-1',
    addresses: [],
    arch: 'arm64',
    os: 'linux',
    cpuCount: 4,
    memoryMb: 1024,
    diskGb: 10,
    gpus: [],
    labels: {},
    agentVersion: 't',
  };
  const metrics = {
    cpuPercent: 1,
    memoryUsedMb: 1,
    memoryTotalMb: 2,
    diskUsedGb: 1,
    diskTotalGb: 2,
    gpus: [],
  };

  it('sends it on registration only, then the node token; logs neither', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', write: (l) => lines.push(l) });
    const client = new ControlPlaneClient({ baseUrl: base, logger, joinToken: 'FLEETJT-1-secret' });
    await client.register(registerBody);
    await client.heartbeat({ metrics, containers: [], loadedModels: [] });
    expect(seen).toEqual([
      { url: '/agent/register', auth: 'Bearer FLEETJT-1-secret' },
      { url: '/agent/heartbeat', auth: 'Bearer n-1.node-secret' },
    ]);
    expect(lines.join('\n')).not.toContain('FLEETJT-1-secret');
  });

  it('prefers the API key when both are set', async () => {
    const logger = createLogger({ level: 'error', write: () => undefined });
    const client = new ControlPlaneClient({
      baseUrl: base,
      logger,
      apiKey: 'the-key',
      joinToken: 'FLEETJT-1-secret',
    });
    await client.register(registerBody);
    expect(seen[0]).toEqual({ url: '/agent/register', auth: 'Bearer the-key' });
  });

  it("re-registers with the node's own credential first, the bootstrap one only when that is refused", async () => {
    const logger = createLogger({ level: 'error', write: () => undefined });
    const client = new ControlPlaneClient({ baseUrl: base, logger, joinToken: 'FLEETJT-1-secret' });
    client.setToken('n-1.stored');
    await client.register(registerBody);
    expect(seen).toEqual([{ url: '/agent/register', auth: 'Bearer n-1.stored' }]);

    // The stored credential refused (the control plane lost the node): the join token creates it anew.
    seen.length = 0;
    refuseNodeTokens = true;
    client.setToken('n-1.stale');
    const reg = await client.register(registerBody);
    expect(seen).toEqual([
      { url: '/agent/register', auth: 'Bearer n-1.stale' },
      { url: '/agent/register', auth: 'Bearer FLEETJT-1-secret' },
    ]);
    expect(reg.token).toBe('n-1.node-secret');
  });
});
