/**
 * A global service's instance counters are recounted from its reconcile's pages of nodes (global.ts,
 * instance-counts.ts `recountGlobalShard`), never a read of every copy: a count a lost write left off
 * is corrected once two passes at least 50 s apart find the same difference with nothing counted
 * moving between; a pass with a move in between only notes it again. Embedded store, a clock moved
 * by hand, nodes registered with no agent (their copies stay pending).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../functions/core/config.js';
import type { AppContext } from '../../../functions/core/context.js';
import { instanceKeys } from '../../../functions/core/keys.js';
import { registerNode } from '../../../functions/nodes/registration.js';
import { changeService, nextService } from '../../../functions/orchestrator/desired-state.js';
import {
  fleetInstanceCounts,
  imageInstanceCounts,
  totalOf,
} from '../../../functions/orchestrator/instance-counts.js';
import {
  getService,
  imageInstances,
  transitionInstance,
  type ServiceItem,
} from '../../../functions/orchestrator/model.js';
import { reconcileGlobalFrom } from '../../../functions/orchestrator/reconciler.js';
import { createEmbeddedContext } from '../../../local/embedded-context.js';
import { ScriptedAgent } from '../../harness/scripted-agent.js';

let ctx: AppContext;
let stop: () => Promise<void>;
let clock = Date.parse('2026-01-01T00:00:00Z');
const NODES = 12;
const IMAGE = 'recount/exporter:1';

beforeAll(async () => {
  // Online through the test's minutes: no copy is orphaned while the clock moves.
  const config = loadConfig({ LOG_LEVEL: 'SILENT', NODE_OFFLINE_AFTER_SECONDS: '86400' });
  const made = await createEmbeddedContext(config, { now: () => clock });
  ctx = made.ctx;
  stop = made.stop;
  for (let i = 0; i < NODES; i++)
    await registerNode(ctx, new ScriptedAgent('http://unused', `recount-${i}`).registerBody());
  await changeService(ctx, IMAGE, async (current) => ({
    next: { ...nextService(ctx, IMAGE, current, 1, {}), global: true },
    wanted: 0,
  }));
});
afterAll(async () => stop());

const nonZero = (c: Record<string, number>) => Object.fromEntries(Object.entries(c).filter(([, v]) => v));
/** One full pass of the service's reconcile, every shard in this invocation (a small fleet). */
const pass = async () =>
  reconcileGlobalFrom(
    ctx,
    (await getService(ctx, IMAGE)) as ServiceItem,
    { shard: 0, link: 0, counted: 0 },
    true,
  );

describe("a global service's counters", () => {
  it('are recounted from its pages of nodes when a write was lost and nothing moved', async () => {
    expect((await pass()).placed).toHaveLength(NODES);
    expect(nonZero(await imageInstanceCounts(ctx, IMAGE))).toEqual({ pending: NODES });
    // Two copies' counter writes lost: the counters say two fewer than there are (no moves counted).
    const k = instanceKeys.imageCount(IMAGE, 3);
    await ctx.store.update(k.pk, k.sk, { add: { pending: -2 } }, {});
    const f = instanceKeys.fleetCount(5);
    await ctx.store.update(f.pk, f.sk, { add: { pending: -2 } }, {});
    expect(nonZero(await imageInstanceCounts(ctx, IMAGE))).toEqual({ pending: NODES - 2 });

    // The first pass after only notes the difference; one too soon after corrects nothing either.
    clock += 60_000;
    await pass();
    clock += 30_000;
    await pass();
    expect(nonZero(await imageInstanceCounts(ctx, IMAGE))).toEqual({ pending: NODES - 2 });

    // A counted move between two passes: the difference may be a write on its way, noted again.
    const [first] = await imageInstances(ctx, IMAGE);
    await transitionInstance(ctx, first!.instanceId, ['pending'], 'running');
    clock += 60_000;
    const moved = await pass();
    expect(moved.placed).toEqual([]);
    expect(nonZero(await imageInstanceCounts(ctx, IMAGE))).toEqual({ pending: NODES - 3, running: 1 });

    // The same difference again, 60 s on, nothing moved: corrected, the fleet's counts too.
    clock += 60_000;
    await pass();
    expect(nonZero(await imageInstanceCounts(ctx, IMAGE))).toEqual({ pending: NODES - 1, running: 1 });
    expect(totalOf(await fleetInstanceCounts(ctx))).toBe(NODES);

    // Right now: later passes correct nothing more.
    clock += 60_000;
    await pass();
    clock += 60_000;
    await pass();
    expect(nonZero(await imageInstanceCounts(ctx, IMAGE))).toEqual({ pending: NODES - 1, running: 1 });
    expect(totalOf(await fleetInstanceCounts(ctx))).toBe(NODES);
  });

  it('a pass chained link by link (pages of nodes) carries its count to the end of each shard', async () => {
    const k = instanceKeys.imageCount(IMAGE, 0);
    await ctx.store.update(k.pk, k.sk, { add: { running: 1 } }, {});
    const f = instanceKeys.fleetCount(0);
    await ctx.store.update(f.pk, f.sk, { add: { running: 1 } }, {});
    const service = (await getService(ctx, IMAGE)) as ServiceItem;
    // Two records a page (one node): every shard's chain takes a link per node.
    const chained = async () => {
      let links = 0;
      for (let shard = 0; shard < 8; shard++) {
        let link: Parameters<typeof reconcileGlobalFrom>[2] | undefined = {
          shard,
          link: 0,
          counted: 0,
          budget: 2,
        };
        while (link) {
          links++;
          link = (await reconcileGlobalFrom(ctx, service, link, false)).next;
        }
      }
      return links;
    };
    clock += 60_000;
    expect(await chained()).toBeGreaterThan(8);
    expect(nonZero(await imageInstanceCounts(ctx, IMAGE))).toEqual({ pending: NODES - 1, running: 2 });
    clock += 60_000;
    await chained();
    expect(nonZero(await imageInstanceCounts(ctx, IMAGE))).toEqual({ pending: NODES - 1, running: 1 });
    expect(totalOf(await fleetInstanceCounts(ctx))).toBe(NODES);
  });
});
