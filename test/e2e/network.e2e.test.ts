/**
 * The Network API end to end: the local runtime (embedded), one REAL agent as a child process
 * (it needs the engine to start: DOCKER_HOST), and TCP listeners on loopback and on the host's own
 * address that the agent's scanner must find.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startRuntime, type Runtime } from '../../local/runtime.js';
import { agentEnv } from '../harness/fleet.js';
import { describeWith, requireEngine, uniqueName } from '../harness/services.js';
import { AgentProcess, call, eventually } from './harness.js';

const status = requireEngine();

describeWith(status, 'Network API end to end: local runtime and a real agent scanning loopback', () => {
  const runId = uniqueName('net-e2e');
  const nodeName = `${runId}-n`;
  const servers: Server[] = [];
  let rt: Runtime;
  let root: string;
  let agent: AgentProcess;
  let p: number;
  let q: number;
  let nodeIp: string | null = null;
  const api = (path: string) => call(rt.url, 'GET', path);

  const listen = (host: string, port: number) =>
    new Promise<number>((resolve, reject) => {
      const s = createServer((socket) => socket.destroy());
      s.once('error', reject);
      s.listen(port, host, () => {
        servers.push(s);
        resolve((s.address() as AddressInfo).port);
      });
    });

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), `${runId}-`));
    p = await listen('127.0.0.2', 0);
    q = await listen('127.0.0.3', 0);
    rt = await startRuntime({
      port: 0,
      env: {
        ...process.env,
        LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'SILENT',
        COMMAND_WAIT_MS: '25000',
        AWS_ENDPOINT_URL: undefined,
      },
    });
    agent = new AgentProcess({
      url: rt.url,
      name: nodeName,
      stateDir: join(root, 'state'),
      heartbeatSeconds: 1,
      env: agentEnv(),
    });
    await agent.start();
    const node = await eventually('the node online', async () => {
      const nodes = (await api('/api/nodes/')).body.nodes as {
        id: string;
        status: string;
        ip: string | null;
      }[];
      const n = nodes.find((x) => x.id === agent.nodeId);
      expect(n?.status).toBe('online');
      return n!;
    });
    nodeIp = node.ip && /^\d+\.\d+\.\d+\.\d+$/.test(node.ip) ? node.ip : null;
  }, 120_000);

  afterAll(async () => {
    await agent?.kill('SIGTERM').catch(() => undefined);
    await rt?.stop();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    if (root) await rm(root, { recursive: true, force: true });
  }, 60_000);

  it('the agent finds the loopback listeners, each with its port; the scan is stored', async () => {
    const res = await api(`/api/network/scan?subnet=127.0.0.0/29&ports=${p},${q}&refresh=true`);
    expect(res.status, `${res.text}\n${agent.logTail(20)}`).toBe(200);
    const devices = res.body.devices as {
      ip: string;
      hostname: string | null;
      ports: number[];
      in_swarm: boolean;
      mac: string | null;
    }[];
    expect(devices.map((d) => [d.ip, d.ports])).toEqual([
      ['127.0.0.2', [p]],
      ['127.0.0.3', [q]],
    ]);
    for (const d of devices) {
      expect(d.in_swarm).toBe(false);
      // Loopback has no ARP entries; the name is whatever reverse DNS answers here, or null.
      expect(d.mac).toBeNull();
      expect(d.hostname === null || typeof d.hostname === 'string').toBe(true);
    }
    const scanStatus = (await api('/api/network/scan-status')).body;
    expect(scanStatus).toMatchObject({
      status: 'completed',
      subnet: '127.0.0.0/29',
      node_id: agent.nodeId,
      devices_found: 2,
      error: null,
    });
    // refresh=false: the stored scan, unchanged.
    expect((await api(`/api/network/scan?subnet=127.0.0.0/29&ports=${p},${q}`)).body).toEqual(res.body);
  });

  it('the node’s own address is in_swarm', async (t) => {
    if (!nodeIp) return t.skip();
    const r = await listen('0.0.0.0', 0);
    const res = await api(`/api/network/scan?subnet=${nodeIp}/32&ports=${r}`);
    expect(res.status, `${res.text}\n${agent.logTail(20)}`).toBe(200);
    expect(res.body.devices).toEqual([expect.objectContaining({ ip: nodeIp, in_swarm: true, ports: [r] })]);
  });
});
