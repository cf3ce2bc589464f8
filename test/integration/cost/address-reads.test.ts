/**
 * Issue 16: what the Network API, the install queue, the disk audit and GET /api/nodes/jetpack ask
 * of the registry reads the same at 200 and at 800 nodes: the address index (a few small reads a
 * device), a page of candidates, a page of the fleet. Two registered simulated nodes, the rest
 * loaded as records (each its own address in 100.64.0.0/10, indexed as registration does); every
 * port metered; counts, never timings.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../../harness/scripted-agent.js';
import { loadedFleet, measureRequest, measureRun, withFleet } from '../../harness/read-units.js';
import type { Measured } from '../../harness/read-units.js';
import { networkKeys } from '../../../functions/core/keys.js';
import { parseCidr } from '../../../protocol/network.js';
import { JETSON_CHECKS, ensureIndexed, pickOnlineNode } from '../../../functions/nodes/address-index.js';
import { fleetCounts } from '../../../functions/nodes/fleet-counts.js';

const SMALL = 200;
const LARGE = 800;
const SUBNET = '100.64.0.0/24';
/** Loaded nodes 1 to 8 (in the fleet at both sizes), and two hosts no node has at either size (past the loaded addresses). */
const DEVICES = [
  ...Array.from({ length: 8 }, (_, i) => ({
    ip: `100.64.0.${i + 1}`,
    hostname: null,
    mac: null,
    vendor: null,
    isJetson: false,
    ports: [22],
  })),
  { ip: '100.65.0.254', hostname: 'printer.lan', mac: null, vendor: null, isJetson: false, ports: [80] },
  { ip: '100.65.0.253', hostname: null, mac: null, vendor: 'NVIDIA', isJetson: false, ports: [443] },
];

describe('the Network API, the install queue, the disk audit and jetpack read the same at 200 and 800 nodes', () => {
  const at = new Map<number, Map<string, Measured>>();

  async function measureAt(total: number): Promise<void> {
    const out = new Map<string, Measured>();
    await withFleet(loadedFleet(total, { env: { COMMAND_WAIT_MS: '100' } }), async (f) => {
      const ctx = f.rt.ctx;
      // The upgrade pass over nodes registered before the index, once, before measuring.
      while (!(await ensureIndexed(ctx)));
      const now = ctx.now();
      const iso = new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
      await ctx.store.put({
        ...networkKeys.scan(SUBNET),
        subnet: SUBNET,
        commandId: 'done-scan',
        nodeId: f.nodes[0]!.nodeId,
        ports: [22, 80, 443],
        status: 'completed',
        startedAt: iso,
        startedAtMs: now,
        completedAt: iso,
        devices: DEVICES,
        devicesFound: DEVICES.length,
        devicesPorts: [22, 80, 443],
        scanTime: iso,
        scanTimeMs: now,
      });
      await ctx.store.put({ ...networkKeys.latest(), subnet: SUBNET });
      const cred = await call(f.rt.url, 'POST', '/api/vault/', {
        name: 'lan',
        username: 'op',
        password: 'secret',
      });
      const credId = (cred.body as { id: string }).id;

      const request = (method: 'GET' | 'POST', path: string, body?: unknown) =>
        measureRequest(f.meter, f.rt.url, method, path, body);
      out.set('scan (stored)', await request('GET', `/api/network/scan?subnet=${SUBNET}&ports=22,80,443`));
      const pick = await measureRun(f.meter, 'pick', () =>
        pickOnlineNode(ctx, { subnet: parseCidr(SUBNET) }),
      );
      out.set('scan node pick', { ...pick, status: 0, body: { node: pick.out?.nodeName ?? null } });
      out.set(
        'auto-join-all',
        await request('POST', '/api/network/auto-join-all', { credential_id: credId }),
      );
      out.set(
        'install queue',
        await request('POST', '/api/install-queue/queue', { host: '100.64.0.3', credential_id: credId }),
      );
      out.set('disk audit page', await request('POST', '/api/maintenance/disk/audit', { limit: 20 }));
      out.set('jetpack (no Jetson)', await request('GET', '/api/nodes/jetpack'));
      // No sweep has run: the counts come from the liveness records.
      const counts = await measureRun(f.meter, 'counts', () => fleetCounts(ctx));
      out.set('fleet counts (no sweep)', { ...counts, status: 0, body: counts.out });
    });
    at.set(total, out);
  }

  beforeAll(async () => {
    await measureAt(SMALL);
    await measureAt(LARGE);
  }, 300_000);

  it.each([
    'scan (stored)',
    'scan node pick',
    'auto-join-all',
    'install queue',
    'disk audit page',
    'jetpack (no Jetson)',
  ])('%s reads no more at 800 nodes than at 200', (what) => {
    const small = at.get(SMALL)!.get(what)!;
    const large = at.get(LARGE)!.get(what)!;
    expect(small.calls, what).toBeGreaterThan(0);
    expect(large.read, what).toBe(small.read);
    expect(large.calls, what).toBe(small.calls);
  });

  it('answers as before: in_swarm and is_jetson per device, a node in the subnet, installs queued, a page audited', () => {
    for (const total of [SMALL, LARGE]) {
      const m = at.get(total)!;
      const scan = m.get('scan (stored)')!;
      expect(scan.status).toBe(200);
      const devices = scan.body.devices as { ip: string; in_swarm: boolean; is_jetson: boolean }[];
      expect(devices.map((d) => [d.ip, d.in_swarm, d.is_jetson])).toEqual(
        DEVICES.map((d) => [d.ip, d.ip.startsWith('100.64.'), false]),
      );
      // By address: 100.64.0.0 is the first loaded node.
      expect(m.get('scan node pick')!.body).toEqual({ node: 'zz-loaded-000000' });
      const join = m.get('auto-join-all')!;
      expect(join.status).toBe(200);
      expect(join.body.queued).toEqual([]);
      expect((join.body.skipped as { reason: string }[]).map((s) => s.reason)).toEqual([
        ...Array.from({ length: 8 }, () => 'already in the fleet'),
        'SSH (port 22) is not open',
        'SSH (port 22) is not open',
      ]);
      const queued = m.get('install queue')!;
      expect(queued.status, JSON.stringify(queued.body)).toBe(201);
      expect(m.get('jetpack (no Jetson)')!.status).toBe(404);
      const audit = m.get('disk audit page')!;
      expect([200, 202]).toContain(audit.status);
      expect(audit.body.nodes).toHaveLength(20);
      expect(audit.body.next_cursor).toEqual(expect.any(String));
    }
  });

  it('fleet counts before any sweep: counted from the liveness records', () => {
    for (const total of [SMALL, LARGE])
      expect(at.get(total)!.get('fleet counts (no sweep)')!.body).toEqual({ nodes: total, online: total });
  });
});

describe('jetpack with no Jetson online reads the same at 200 and 800 Jetsons', () => {
  const reads = new Map<number, Measured>();

  async function measureAt(total: number): Promise<void> {
    const options = loadedFleet(total, {
      hardware: { kind: 'jetson' },
      env: { NODE_OFFLINE_AFTER_SECONDS: '1' },
    });
    await withFleet(options, async (f) => {
      while (!(await ensureIndexed(f.rt.ctx)));
      // Nothing beats: every node is offline past the window.
      await new Promise((r) => setTimeout(r, 1_500));
      reads.set(total, await measureRequest(f.meter, f.rt.url, 'GET', '/api/nodes/jetpack'));
    });
  }

  beforeAll(async () => {
    await measureAt(SMALL);
    await measureAt(LARGE);
  }, 300_000);

  afterAll(() => reads.clear());

  it('checks at most JETSON_CHECKS Jetsons and answers the first by name', () => {
    const small = reads.get(SMALL)!;
    const large = reads.get(LARGE)!;
    expect(small.status).toBe(200);
    expect(large.status).toBe(200);
    expect(large.body).toMatchObject({ jetpack_version: expect.any(String), node_id: expect.any(String) });
    expect(large.read).toBe(small.read);
    expect(large.calls).toBe(small.calls);
    expect(small.calls).toBeGreaterThan(JETSON_CHECKS);
  });
});
