import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call, eventually, ScriptedAgent } from '../../harness/scripted-agent.js';

const env = {
  ...process.env,
  LOG_LEVEL: 'SILENT',
  AWS_ENDPOINT_URL: undefined,
  NODE_OFFLINE_AFTER_SECONDS: '2',
  // The `slow` agent answers only when the test says: its scans answer 202 after this.
  COMMAND_WAIT_MS: '2500',
};

const ISO_SECONDS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

describe('Network API: scans by a node’s agent (embedded runtime, real scanner on loopback)', () => {
  let rt: Runtime;
  /** scanner: on 127.0.0.1 (inside the subnet); far: 10.0.0.7, first by name; slow: never serves; member: a registered Jetson at 127.0.0.3, offline. */
  let scanner: ScriptedAgent;
  let far: ScriptedAgent;
  let slow: ScriptedAgent;
  let member: ScriptedAgent;
  let beat: NodeJS.Timeout;
  const servers: Server[] = [];
  let p: number;
  let q: number;
  const scanOptions = { arpPath: '/nonexistent/arp', reverse: async () => [] as string[] };

  const listen = (host: string, port: number) =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer((socket) => socket.destroy());
      s.once('error', reject);
      s.listen(port, host, () => resolve(s));
    });
  const api = (path: string) => call(rt.url, 'GET', path);
  const scansSeen = (agent: ScriptedAgent) => agent.seen.filter((e) => e.command.type === 'network.scan');
  const subnetQuery = () => `subnet=127.0.0.0/29&ports=${q},${p}`;

  beforeAll(async () => {
    rt = await startRuntime({ port: 0, env });
    // 127.0.0.2: port p; 127.0.0.3: ports p and q.
    const a = await listen('127.0.0.2', 0);
    p = (a.address() as AddressInfo).port;
    const b = await listen('127.0.0.3', p);
    const c = await listen('127.0.0.3', 0);
    q = (c.address() as AddressInfo).port;
    servers.push(a, b, c);
    scanner = new ScriptedAgent(rt.url, 'lan-scanner', { address: '127.0.0.1', networkScan: scanOptions });
    far = new ScriptedAgent(rt.url, 'aaa-far', { address: '10.0.0.7', networkScan: scanOptions });
    slow = new ScriptedAgent(rt.url, 'zz-slow', { address: '10.0.0.9', networkScan: scanOptions });
    member = new ScriptedAgent(rt.url, 'xavier-member', {
      address: '127.0.0.3',
      jetson: { l4t: '35.3.1', jetpack: '5.1.1', cuda: '11.4', cudnn: '8.6', model: 'Jetson AGX Xavier' },
    });
  }, 60_000);
  afterAll(async () => {
    clearInterval(beat);
    await scanner?.stop();
    await far?.stop();
    await rt?.stop();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  it('before any scan: status idle; with no node online, 409 and nothing stored', async () => {
    expect((await api('/api/network/scan-status')).body).toEqual({
      status: 'idle',
      subnet: null,
      node_id: null,
      started_at: null,
      completed_at: null,
      devices_found: 0,
      error: null,
    });
    await member.register(); // registered, then silent: offline after NODE_OFFLINE_AFTER_SECONDS
    await eventually(async () => {
      const nodes = (await api('/api/nodes/')).body.nodes as { id: string; status: string }[];
      expect(nodes.find((n) => n.id === member.nodeId)?.status).toBe('offline');
    });
    const res = await api(`/api/network/scan?${subnetQuery()}`);
    expect(res.status).toBe(409);
    expect(res.body.detail).toMatch(/No node is online/);
    expect((await api('/api/network/scan-status')).body.status).toBe('idle');
  });

  it('400 for subnets over /22, non-IPv4 subnets, bad refresh and ports; nothing is sent', async () => {
    for (const agent of [scanner, far, slow]) {
      await agent.register();
      await agent.heartbeat();
    }
    scanner.start(200);
    far.start(200);
    beat = setInterval(() => void slow.heartbeat().catch(() => undefined), 300);

    const bad: [string, string, RegExp][] = [
      ['subnet=10.0.0.0/16', 'subnet', /65536 addresses; at most 1024/],
      ['subnet=10.0.0.0/21', 'subnet', /2048 addresses/],
      ['subnet=fe80::/64', 'subnet', /IPv4/],
      ['subnet=10.0.0.1/40', 'subnet', /prefix length/],
      ['subnet=127.0.0.0/29&refresh=maybe', 'refresh', /valid boolean/],
      ['subnet=127.0.0.0/29&ports=22,x', 'ports', /comma-separated/],
      ['subnet=127.0.0.0/29&ports=0', 'ports', /1 to 65535/],
      [
        `subnet=127.0.0.0/29&ports=${Array.from({ length: 33 }, (_, i) => i + 1).join(',')}`,
        'ports',
        /at most 32/,
      ],
    ];
    for (const [query, field, msg] of bad) {
      const res = await api(`/api/network/scan?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.detail[0].loc.slice(0, 2), query).toEqual(['query', field]);
      expect(res.body.detail[0].msg, query).toMatch(msg);
    }
    const unknown = await api(`/api/network/scan?${subnetQuery()}&node_id=no-such-node`);
    expect(unknown.status).toBe(404);
    const offline = await api(`/api/network/scan?${subnetQuery()}&node_id=xavier-member`);
    expect(offline.status).toBe(409);
    expect(offline.body.detail).toMatch(/offline/);
    expect([...scansSeen(scanner), ...scansSeen(far), ...scansSeen(slow)]).toEqual([]);
    expect((await api('/api/network/scan-status')).body.status).toBe('idle');
  });

  it('scans with the node inside the subnet: open ports per host, in_swarm and is_jetson from the registry', async () => {
    const res = await api(`/api/network/scan?${subnetQuery()}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['devices', 'scan_time']);
    expect(res.body.scan_time).toMatch(ISO_SECONDS);
    expect(res.body.devices).toEqual([
      {
        ip: '127.0.0.2',
        hostname: null,
        mac: null,
        vendor: null,
        is_jetson: false,
        in_swarm: false,
        ports: [p],
      },
      {
        ip: '127.0.0.3',
        hostname: null,
        mac: null,
        vendor: null,
        is_jetson: true,
        in_swarm: true,
        ports: [p, q].sort((x, y) => x - y),
      },
    ]);
    // aaa-far is first by name, but lan-scanner has an address in 127.0.0.0/29.
    expect(scansSeen(scanner).map((e) => e.command)).toEqual([
      { type: 'network.scan', subnet: '127.0.0.0/29', ports: [p, q].sort((x, y) => x - y) },
    ]);
    expect(scansSeen(far)).toEqual([]);

    const status = (await api('/api/network/scan-status')).body;
    expect(status).toMatchObject({
      status: 'completed',
      subnet: '127.0.0.0/29',
      node_id: scanner.nodeId,
      devices_found: 2,
      error: null,
    });
    expect(status.started_at).toMatch(ISO_SECONDS);
    expect(status.completed_at).toMatch(ISO_SECONDS);
  });

  it('refresh=false answers the stored scan; refresh=true and other ports scan again', async () => {
    const first = await api(`/api/network/scan?${subnetQuery()}`);
    const cached = await api(`/api/network/scan?${subnetQuery()}&refresh=false`);
    // Host bits are cleared: the same subnet, the same stored scan.
    const sameSubnet = await api(`/api/network/scan?subnet=127.0.0.5/29&ports=${p},${q}`);
    expect(cached.body).toEqual(first.body);
    expect(sameSubnet.body).toEqual(first.body);
    expect(scansSeen(scanner)).toHaveLength(1);

    // A real rescan sees 127.0.0.2 gone.
    await new Promise((r) => servers[0]!.close(r));
    const fresh = await api(`/api/network/scan?${subnetQuery()}&refresh=true`);
    expect(fresh.status).toBe(200);
    expect(scansSeen(scanner)).toHaveLength(2);
    expect(fresh.body.devices.map((d: { ip: string }) => d.ip)).toEqual(['127.0.0.3']);
    expect((await api(`/api/network/scan?${subnetQuery()}`)).body).toEqual(fresh.body);

    const onlyQ = await api(`/api/network/scan?subnet=127.0.0.0/29&ports=${q}`);
    expect(onlyQ.body.devices).toEqual([expect.objectContaining({ ip: '127.0.0.3', ports: [q] })]);
    expect(scansSeen(scanner)).toHaveLength(3);
  });

  it('node_id picks the scanning node by name', async () => {
    const res = await api(`/api/network/scan?subnet=127.0.0.3/32&ports=${q}&node_id=aaa-far`);
    expect(res.status).toBe(200);
    expect(res.body.devices).toEqual([
      {
        ip: '127.0.0.3',
        hostname: null,
        mac: null,
        vendor: null,
        is_jetson: true,
        in_swarm: true,
        ports: [q],
      },
    ]);
    expect(scansSeen(far).map((e) => e.command)).toEqual([
      { type: 'network.scan', subnet: '127.0.0.3/32', ports: [q] },
    ]);
  });

  it('past COMMAND_WAIT_MS: 202 scanning; the result is stored when the agent reports it (failed, then completed)', async () => {
    const pending = await api(`/api/network/scan?subnet=127.0.0.0/30&ports=${q}&node_id=zz-slow`);
    expect(pending.status).toBe(202);
    expect(pending.body).toMatchObject({ status: 'scanning', subnet: '127.0.0.0/30', node_id: slow.nodeId });
    expect((await api('/api/network/scan-status')).body).toMatchObject({
      status: 'scanning',
      subnet: '127.0.0.0/30',
      node_id: slow.nodeId,
      completed_at: null,
      devices_found: 0,
    });

    // The agent reports a failure: the status says so.
    const [delivered] = await slow.poll();
    expect(delivered!.envelope.commandId).toBe(pending.body.command_id);
    await slow.result(delivered!.envelope.commandId, { status: 'failed', error: 'socket limit reached' });
    await slow.ack([delivered!.receiptHandle]);
    expect((await api('/api/network/scan-status')).body).toMatchObject({
      status: 'failed',
      subnet: '127.0.0.0/30',
      error: 'socket limit reached',
    });

    // No stored devices for that subnet: refresh=false scans again; this time the agent serves it.
    const again = await api(`/api/network/scan?subnet=127.0.0.0/30&ports=${q}&node_id=zz-slow`);
    expect(again.status).toBe(202);
    expect(again.body.command_id).not.toBe(pending.body.command_id);
    await slow.serveOnce();
    await eventually(async () =>
      expect((await api('/api/network/scan-status')).body).toMatchObject({
        status: 'completed',
        devices_found: 0,
        error: null,
      }),
    );
    // 127.0.0.0/30 probes .1 and .2 only: nothing listens there on q any more.
    const stored = await api(`/api/network/scan?subnet=127.0.0.0/30&ports=${q}`);
    expect(stored.status).toBe(200);
    expect(stored.body.devices).toEqual([]);
    expect(scansSeen(slow)).toHaveLength(1);
    expect(scansSeen(scanner)).toHaveLength(3);
  });
});
