import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetKeys, nodeAddressKeys } from '../../../functions/core/keys.js';
import { MINUTE_SCHEDULE } from '../../../functions/minute.js';
import { sweepNodes } from '../../../functions/nodes/eligible-index.js';
import { nodeShard } from '../../../functions/nodes/node-records.js';
import {
  problemMarkerKey,
  setProblemMarker,
  type ProblemMarker,
} from '../../../functions/nodes/node-problems.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call, ScriptedAgent } from '../../harness/scripted-agent.js';

const JETSON = { l4t: '35.3.1', jetpack: '5.1.1', cuda: '11.4', cudnn: '8.6', model: 'Jetson AGX Orin' };
const OFFLINE_AFTER_MS = 1_000;

/**
 * The markers the problems listing and GET /api/nodes/jetpack read instead of the fleet
 * (functions/nodes/node-problems.ts, address-index.ts): written where a node's problems or a
 * Jetson's liveness change, repaired by the sweep, dropped by readers when stale. Embedded runtime,
 * scripted agents beating by hand, the minute schedule off (the suite sweeps when it says so).
 */
describe('node problem markers and online-Jetson entries (embedded runtime)', () => {
  let rt: Runtime;
  const agents: ScriptedAgent[] = [];

  beforeAll(async () => {
    rt = await startRuntime({
      port: 0,
      env: {
        ...process.env,
        AWS_ENDPOINT_URL: undefined,
        LOG_LEVEL: 'SILENT',
        NODE_OFFLINE_AFTER_SECONDS: String(OFFLINE_AFTER_MS / 1000),
      },
    });
    await rt.ctx.scheduler.delete(MINUTE_SCHEDULE);
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await rt?.stop();
  });

  const agent = async (name: string, options: ConstructorParameters<typeof ScriptedAgent>[2] = {}) => {
    const a = new ScriptedAgent(rt.url, name, options);
    agents.push(a);
    await a.register();
    await a.heartbeat();
    return a;
  };
  const marker = async (nodeId: string) => {
    const k = problemMarkerKey(nodeId);
    return (await rt.ctx.store.get<ProblemMarker>(k.pk, k.sk))?.kinds;
  };
  const problemsOf = async (nodeId: string) =>
    (
      (await call(rt.url, 'GET', '/api/maintenance/problems')).body.problems as {
        node_id: string;
        type: string;
      }[]
    )
      .filter((p) => p.node_id === nodeId)
      .map((p) => p.type);
  const silence = () => new Promise((r) => setTimeout(r, OFFLINE_AFTER_MS + 300));
  const jetpackNode = async () => {
    const res = await call(rt.url, 'GET', '/api/nodes/jetpack');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ jetpack_version: '5.1.1', l4t_version: '35.3.1' });
    return res.body.node_id as string;
  };

  it('a full disk puts the marker and the problem shows; a cleaned disk deletes both', async () => {
    const a = await agent('disky');
    expect(await marker(a.nodeId)).toBeUndefined();
    a.metrics = { diskUsedGb: 95, diskTotalGb: 100 };
    await a.heartbeat();
    expect(await marker(a.nodeId)).toEqual(['disk_space']);
    expect(await problemsOf(a.nodeId)).toEqual(['disk_space']);

    a.metrics = { diskUsedGb: 30, diskTotalGb: 100 };
    await a.heartbeat();
    expect(await marker(a.nodeId)).toBeUndefined();
    expect(await problemsOf(a.nodeId)).toEqual([]);
  });

  it('a silent node is marked offline by the sweep; its next heartbeat clears it', async () => {
    const a = await agent('quiet');
    await silence();
    await sweepNodes(rt.ctx);
    expect(await marker(a.nodeId)).toEqual(['node_offline']);
    expect(await problemsOf(a.nodeId)).toEqual(['node_offline']);

    await a.heartbeat();
    expect(await marker(a.nodeId)).toBeUndefined();
    expect(await problemsOf(a.nodeId)).toEqual([]);
  });

  it('a stale marker (its node fine, or gone) lists nothing and is dropped by the listing', async () => {
    const fine = await agent('fine');
    const gone = 'no-such-node';
    for (const nodeId of [fine.nodeId, gone])
      await rt.ctx.store.put<ProblemMarker>({
        ...problemMarkerKey(nodeId),
        nodeId,
        kinds: ['disk_space'],
        at: 1,
      });
    expect(await problemsOf(fine.nodeId)).toEqual([]);
    expect(await problemsOf(gone)).toEqual([]);
    expect(await marker(fine.nodeId)).toBeUndefined();
    expect(await marker(gone)).toBeUndefined();
  });

  it('a lost marker (or a node from before the markers) is put back by the next sweep', async () => {
    const a = await agent('hot', { gpus: 1 });
    a.metrics = { diskUsedGb: 99, diskTotalGb: 100 };
    await a.heartbeat();
    const k = problemMarkerKey(a.nodeId);
    await rt.ctx.store.delete(k.pk, k.sk);
    // Until then the listing does not know of it.
    expect(await problemsOf(a.nodeId)).toEqual([]);
    await a.heartbeat();
    // A plain sweep leaves markers to their writers; the one that repairs the indexes syncs them.
    await sweepNodes(rt.ctx);
    expect(await marker(a.nodeId)).toBeUndefined();
    await sweepNodes(rt.ctx, true);
    expect(await marker(a.nodeId)).toEqual(['disk_space']);
    expect(await problemsOf(a.nodeId)).toEqual(['disk_space']);
    // A marker of a node the shard no longer holds goes with the sweep too.
    const orphan = fleetKeys.nodeProblems('zz-orphan', nodeShard(a.nodeId));
    await rt.ctx.store.put({ ...orphan, nodeId: 'zz-orphan', kinds: ['disk_space'], at: 1 });
    await sweepNodes(rt.ctx, true);
    expect(await rt.ctx.store.get(orphan.pk, orphan.sk)).toBeUndefined();
    a.metrics = {};
    await a.heartbeat();
  });

  it('a judgement from older records (the sweep, the listing) does not overwrite a newer marker', async () => {
    const nodeId = 'zz-raced';
    const k = problemMarkerKey(nodeId);
    expect(await setProblemMarker(rt.ctx, nodeId, ['disk_space'], { marker: undefined })).toBe(true);
    const read = (await rt.ctx.store.get<ProblemMarker>(k.pk, k.sk))!;
    // A heartbeat writes it again meanwhile (a later time).
    await rt.ctx.store.put<ProblemMarker>({ ...read, kinds: ['high_memory'], at: read.at + 1 });
    expect(await setProblemMarker(rt.ctx, nodeId, [], { marker: read })).toBe(false);
    expect(await setProblemMarker(rt.ctx, nodeId, ['disk_space'], { marker: read })).toBe(false);
    expect(await setProblemMarker(rt.ctx, nodeId, ['disk_space'], { marker: undefined })).toBe(false);
    expect(await marker(nodeId)).toEqual(['high_memory']);
    await rt.ctx.store.delete(k.pk, k.sk);
  });

  it('jetpack: the first online Jetson by name; when it goes offline, the next one', async () => {
    const first = await agent('agx-1', { jetson: JETSON });
    const second = await agent('agx-2', { jetson: JETSON });
    const upEntries = async () =>
      (await rt.ctx.store.query(nodeAddressKeys.jetsonsUpPk)).items.map((i) => i.sk);
    expect(await upEntries()).toEqual(['agx-1', 'agx-2']);
    expect(await jetpackNode()).toBe(first.nodeId);

    // Silent, not yet swept: its entry is read, found offline and dropped.
    await silence();
    await second.heartbeat();
    expect(await jetpackNode()).toBe(second.nodeId);
    expect(await upEntries()).toEqual(['agx-2']);

    // Back, then swept offline: the sweep drops the entry itself.
    await first.heartbeat();
    expect(await jetpackNode()).toBe(first.nodeId);
    await silence();
    await second.heartbeat();
    await sweepNodes(rt.ctx);
    expect(await upEntries()).toEqual(['agx-2']);
    expect(await jetpackNode()).toBe(second.nodeId);

    // Its agent says it is stopping: offline at once, entry gone.
    const stop = await call(
      rt.url,
      'POST',
      '/agent/stopping',
      {},
      { authorization: `Bearer ${second.token}` },
    );
    expect(stop.status).toBeLessThan(300);
    expect(await upEntries()).toEqual([]);
    // No Jetson online: the first Jetson by name, as before.
    expect(await jetpackNode()).toBe(first.nodeId);
  });
});
