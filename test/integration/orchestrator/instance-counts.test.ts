/**
 * The instance counters, dead-copy markers and container-id lookup keys (orchestrator/
 * instance-counts.ts, model.ts) follow every create, status change and removal; a count a lost
 * write left off is recounted by the image's reconcile; resuming reads one node's copies.
 * Embedded store, a clock moved by hand.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instanceItem } from '../../harness/instances.js';
import { loadConfig } from '../../../functions/core/config.js';
import type { AppContext } from '../../../functions/core/context.js';
import { instanceKeys, keys } from '../../../functions/core/keys.js';
import { getCommand } from '../../../functions/nodes/commands.js';
import type { NodeItem } from '../../../functions/nodes/nodes.js';
import { SHARDS } from '../../../functions/nodes/node-records.js';
import { queryAll, type StoreItem } from '../../../functions/ports/store.js';
import {
  fleetInstanceCounts,
  imageInstanceCounts,
  recountImage,
  totalOf,
} from '../../../functions/orchestrator/instance-counts.js';
import {
  getInstance,
  imageInstances,
  instanceByContainerId,
  putInstance,
  setInstance,
  transitionInstance,
} from '../../../functions/orchestrator/model.js';
import { applyContainerStates } from '../../../functions/orchestrator/observation.js';
import type { InstanceStatus } from '../../../functions/orchestrator/plan.js';
import { resumeNodeCopies } from '../../../functions/orchestrator/resume.js';
import { createEmbeddedContext } from '../../../local/embedded-context.js';

let ctx: AppContext;
let stop: () => Promise<void>;
let clock = Date.parse('2026-01-01T00:00:00Z');

beforeAll(async () => {
  const made = await createEmbeddedContext(loadConfig({ LOG_LEVEL: 'SILENT' }), { now: () => clock });
  ctx = made.ctx;
  stop = made.stop;
});
afterAll(async () => stop());

function copy(imageId: string, nodeId: string, instanceId: string, status: InstanceStatus = 'pending') {
  return {
    ...instanceItem({ imageId, nodeId, instanceId, status, ordinal: 0, at: new Date(clock).toISOString() }),
    startCommandId: `start-${instanceId}`,
    lastCommandId: `start-${instanceId}`,
  };
}

/** The non-zero counts. */
const nonZero = (c: Record<string, number>) => Object.fromEntries(Object.entries(c).filter(([, v]) => v));
const dead = async () =>
  (
    await Promise.all(
      SHARDS.map((s) =>
        queryAll<StoreItem & { instanceId: string }>(ctx.store, instanceKeys.deadCopiesPk(s)),
      ),
    )
  )
    .flat()
    .map((m) => m.instanceId)
    .sort();

describe('instance counters and markers', () => {
  it('follow a create, each status change and a removal', async () => {
    await putInstance(ctx, copy('count-a:1', 'n1', 'a1'));
    await putInstance(ctx, copy('count-a:1', 'n2', 'a2'));
    await putInstance(ctx, copy('count-b:1', 'n1', 'b1'));
    // A second put of the same id is refused and counts nothing.
    expect(await putInstance(ctx, copy('count-a:1', 'n1', 'a1'))).toBe(false);
    expect(nonZero(await fleetInstanceCounts(ctx))).toEqual({ pending: 3 });
    expect(nonZero(await imageInstanceCounts(ctx, 'count-a:1'))).toEqual({ pending: 2 });

    await transitionInstance(ctx, 'a1', ['pending'], 'running');
    await transitionInstance(ctx, 'a2', ['pending'], 'running');
    await transitionInstance(ctx, 'a2', ['running'], 'exited', { exitCode: 1 });
    // A lost race moves nothing and counts nothing.
    expect(await transitionInstance(ctx, 'b1', ['running'], 'exited')).toBeUndefined();
    expect(nonZero(await imageInstanceCounts(ctx, 'count-a:1'))).toEqual({ running: 1, exited: 1 });
    expect(nonZero(await fleetInstanceCounts(ctx))).toEqual({ pending: 1, running: 1, exited: 1 });
    expect(await dead()).toEqual(['a2']);

    // From one of several statuses: the one it was in is the one it leaves.
    await transitionInstance(ctx, 'a2', ['running', 'exited', 'failed'], 'stopping');
    expect(nonZero(await imageInstanceCounts(ctx, 'count-a:1'))).toEqual({ running: 1, stopping: 1 });
    expect(await dead()).toEqual([]);
    // A status kept (a command id noted) changes no count.
    await transitionInstance(ctx, 'a2', ['stopping'], 'stopping', { lastCommandId: 'x' });
    await transitionInstance(ctx, 'a2', ['stopping'], 'removing');
    await transitionInstance(ctx, 'a2', ['removing'], 'removed');
    await transitionInstance(ctx, 'b1', ['pending'], 'failed');
    expect(await dead()).toEqual(['b1']);
    expect(nonZero(await imageInstanceCounts(ctx, 'count-a:1'))).toEqual({ running: 1 });
    expect(nonZero(await imageInstanceCounts(ctx, 'count-b:1'))).toEqual({ failed: 1 });
    const fleet = await fleetInstanceCounts(ctx);
    expect(nonZero(fleet)).toEqual({ running: 1, failed: 1 });
    expect(totalOf(fleet)).toBe(2);
  });

  it('are recounted by the reconcile when a write was lost and the image stood still', async () => {
    const image = 'count-drift:1';
    await putInstance(ctx, copy(image, 'n1', 'd1'));
    await transitionInstance(ctx, 'd1', ['pending'], 'running');
    // Two copies whose counter writes were lost (a process died between the writes).
    await ctx.store.put(copy(image, 'n1', 'd2', 'running'));
    await ctx.store.put(copy(image, 'n2', 'd3', 'exited'));
    const before = totalOf(await fleetInstanceCounts(ctx));
    const read = () => imageInstances(ctx, image);

    // The first sight only notes the difference; too soon after, nothing either.
    expect(await recountImage(ctx, image, await read())).toBeUndefined();
    clock += 30_000;
    expect(await recountImage(ctx, image, await read())).toBeUndefined();
    // A move in between: the difference may be a write on its way, so it is noted again.
    await putInstance(ctx, copy(image, 'n2', 'd4'));
    clock += 60_000;
    expect(await recountImage(ctx, image, await read())).toBeUndefined();
    clock += 60_000;
    expect(await dead()).not.toContain('d3');
    expect(await recountImage(ctx, image, await read())).toEqual({ running: 1, exited: 1 });
    // The dead copy stored before the counters gets its marker with the correction.
    expect(await dead()).toContain('d3');
    expect(nonZero(await imageInstanceCounts(ctx, image))).toEqual({ pending: 1, running: 2, exited: 1 });
    expect(totalOf(await fleetInstanceCounts(ctx))).toBe(before + 3);
    // Right now: nothing more is corrected.
    clock += 60_000;
    expect(await recountImage(ctx, image, await read())).toBeUndefined();
    expect(nonZero(await imageInstanceCounts(ctx, image))).toEqual({ pending: 1, running: 2, exited: 1 });
  });
});

describe('the container-id lookup', () => {
  const engineId = 'abc123def4567890aaaa';

  it('finds a copy by its engine id or a prefix of 12 characters or more, and follows a new id', async () => {
    await putInstance(ctx, copy('lookup:1', 'n1', 'l1'));
    await transitionInstance(ctx, 'l1', ['pending'], 'running', { containerId: engineId });
    expect((await instanceByContainerId(ctx, engineId))?.instanceId).toBe('l1');
    expect((await instanceByContainerId(ctx, engineId.slice(0, 12)))?.instanceId).toBe('l1');
    expect(await instanceByContainerId(ctx, engineId.slice(0, 11))).toBeUndefined();
    expect(await instanceByContainerId(ctx, 'abc123def456ffff')).toBeUndefined();
    // Recreated by an update (Podman): the new id finds it, the old one no longer does.
    const recreated = 'abc123def456bbbb0000';
    await setInstance(ctx, 'l1', { containerId: recreated });
    expect((await instanceByContainerId(ctx, recreated))?.instanceId).toBe('l1');
    expect(await instanceByContainerId(ctx, engineId)).toBeUndefined();
    // A removed copy's key expires with it.
    await transitionInstance(ctx, 'l1', ['running'], 'removed');
    const key = instanceKeys.containerId(recreated);
    const stored = await ctx.store.get<StoreItem>(key.pk, key.sk);
    expect(stored?.expiresAt).toBe((await getInstance(ctx, 'l1'))!.expiresAt);
  });

  it('keys a copy from before the lookup on the first heartbeat that reports it running', async () => {
    const legacy = { ...copy('lookup:2', 'n9', 'l2', 'running'), containerId: 'fedcba9876543210' };
    await ctx.store.put(legacy);
    expect(await instanceByContainerId(ctx, 'fedcba987654')).toBeUndefined();
    const node = { nodeId: 'n9', nodeName: 'n9', addresses: [], hostname: 'n9' } as unknown as NodeItem;
    const report = {
      containerId: legacy.containerId,
      name: legacy.name,
      instanceId: 'l2',
      imageId: 'lookup:2',
      kind: 'service' as const,
      state: 'running',
      ports: [],
      labels: {},
    };
    await applyContainerStates(ctx, node, [report], false);
    expect((await instanceByContainerId(ctx, 'fedcba987654'))?.instanceId).toBe('l2');
    expect((await getInstance(ctx, 'l2'))?.containerKeyed).toBe(true);
  });
});

describe("resuming a node's copies", () => {
  it('sends the start a copy waits on, for that node only', async () => {
    const image = 'resume:1';
    await ctx.store.put({
      ...keys.service(image),
      ...keys.servicesIndex(image),
      imageId: image,
      desiredCount: 2,
      resources: {},
      ports: [],
      env: {},
      createdAt: new Date(clock).toISOString(),
      updatedAt: new Date(clock).toISOString(),
    });
    await putInstance(ctx, copy(image, 'resume-a', 'r1'));
    await putInstance(ctx, copy(image, 'resume-b', 'r2'));
    expect(await resumeNodeCopies(ctx, 'resume-a')).toBe(1);
    expect(await getCommand(ctx, 'start-r1')).toMatchObject({ type: 'container.start', nodeId: 'resume-a' });
    expect(await getCommand(ctx, 'start-r2')).toBeUndefined();
    // Sent once: the next pass finds its command pending and leaves it.
    expect(await resumeNodeCopies(ctx, 'resume-a')).toBe(0);
  });
});
