/**
 * Liveness sweep and the eligible-node index: flips silent nodes offline shard by shard in bounded
 * invocations, keeps the eligible-node and free-capacity indexes (node-records.ts) in line with
 * liveness and cordon, and repairs what drifted.
 */
import type { AppContext } from '../core/context.js';
import { emit } from '../core/events.js';
import { fleetKeys, keys, taskQueueKeys } from '../core/keys.js';
import { ConditionFailedError, queryAll, updateIf } from '../ports/store.js';
import {
  SHARDS,
  clearFree,
  clearUp,
  markFree,
  markUp,
  maxConcurrencyOf,
  type FreeRecord,
  type LiveRecord,
  type MetricsRecord,
} from './node-records.js';
import { addToPart, countInPart, emptyPart, type FleetPart } from './fleet-aggregate.js';
import { getNode, getNodeRecord, isOnline, withState, type NodeItem } from './node-model.js';
import {
  dropStaleMarker,
  nodeProblemKinds,
  sameKinds,
  setProblemMarker,
  type ProblemMarker,
} from './node-problems.js';
import { clearJetsonUp } from './address-index.js';

/**
 * Flips nodes whose heartbeats stopped to offline (readers already see them offline; this makes
 * it an event others act on). Reads only the liveness records. Conditional on the heartbeat it
 * judged, so a heartbeat that lands meanwhile wins.
 */
export async function sweepNodes(ctx: AppContext, repair = false): Promise<string[]> {
  const wentOffline: string[] = [];
  for (const shard of SHARDS) {
    let cursor: string | undefined;
    do {
      const part = await sweepShard(ctx, shard, cursor, undefined, repair);
      wentOffline.push(...part.wentOffline);
      cursor = part.cursor;
    } while (cursor);
  }
  return wentOffline;
}

/** Records one sweep invocation reads at most: the events function's timeout holds at any fleet size. */
export const SWEEP_ITEMS_PER_INVOCATION = 10_000;
const SWEEP_PAGE_ITEMS = 1_000;

export interface ShardSweep {
  /** Records read (liveness and metrics: they share the shard's partition). */
  read: number;
  wentOffline: string[];
  /** Nodes silent past NODE_RETIRE_AFTER_SECONDS (their liveness records), for the caller to retire. */
  toRetire: LiveRecord[];
  /** Where the next invocation goes on; absent when the shard is done. */
  cursor?: string;
  /** Online nodes whose last sample lists a training run's container (for the stray-container check). */
  runHolders: string[];
  /** The online nodes it read, for the fleet sample (node-records.ts FleetPart). */
  part: FleetPart;
  /** Index entries it wrote or removed because they drifted from the liveness records. */
  repaired: number;
}

/**
 * Brings the eligible-node and free-capacity indexes of the nodes in one page in line with their
 * liveness records (a lost write, nodes from before the indexes): reads each index over the page's
 * node id range, one query each, and only the META (and held slots) of nodes that drifted.
 */
async function repairIndexes(
  ctx: AppContext,
  shard: number,
  lives: LiveRecord[],
  samples: Map<string, MetricsRecord>,
  now: number,
): Promise<number> {
  if (!lives.length) return 0;
  const range: [string, string] = [lives[0]!.nodeId, lives[lives.length - 1]!.nodeId];
  const [up, free] = await Promise.all([
    queryAll<FreeRecord>(ctx.store, fleetKeys.nodeUpPk(shard), { between: range }),
    queryAll<FreeRecord>(ctx.store, fleetKeys.nodeFreePk(shard), { between: range }),
  ]);
  const upIds = new Set(up.map((r) => r.nodeId));
  const freeBy = new Map(free.map((r) => [r.nodeId, r] as const));
  const online = new Set(lives.filter((l) => isOnline(l, ctx, now)).map((l) => l.nodeId));
  let repaired = 0;
  for (const id of [...upIds, ...freeBy.keys()]) {
    if (online.has(id)) continue;
    if (upIds.delete(id)) {
      await clearUp(ctx, id);
      repaired++;
    }
    if (freeBy.delete(id)) {
      await clearFree(ctx, id);
      repaired++;
    }
  }
  for (const id of online) {
    const resident = [...(samples.get(id)?.loadedModels ?? [])].sort()[0];
    const entry = freeBy.get(id);
    const modelDrift =
      entry !== undefined &&
      entry.model !== resident &&
      now - (samples.get(id)?.storedAtMs ?? now) >= MODEL_SETTLED_MS;
    if (upIds.has(id) && entry && !modelDrift) continue;
    const meta = await getNodeRecord(ctx, id);
    if (!meta || meta.cordoned) continue;
    if (!upIds.has(id)) {
      await markUp(ctx, id);
      repaired++;
    }
    if (entry && !modelDrift) continue;
    const held = await ctx.store.query(taskQueueKeys.nodeSlot(id, 0).pk);
    if (held.items.length >= maxConcurrencyOf(meta)) continue;
    await markFree(ctx, id, resident ? { model: resident } : {});
    repaired++;
  }
  return repaired;
}

/**
 * Brings the problem markers (node-problems.ts) of the nodes in one page in line with their records:
 * one query of the markers over the page's node id range (after `range.after`, up to `range.upTo`),
 * a write only where one drifted (a node offline, a lost write, nodes from before the markers), and
 * a marker in the range whose node has no liveness record is dropped. A node whose sample may sit on
 * the next page (`range.split`: its liveness record ends a page that goes on) is left to its heartbeats.
 */
async function syncProblemMarkers(
  ctx: AppContext,
  shard: number,
  lives: LiveRecord[],
  samples: Map<string, MetricsRecord>,
  now: number,
  range: { after?: string | undefined; upTo: string; split?: string | undefined },
): Promise<void> {
  const from = range.after ?? lives[0]?.nodeId;
  if (from === undefined) return;
  const markers = (
    await queryAll<ProblemMarker>(ctx.store, fleetKeys.nodeProblemsPk(shard), { between: [from, range.upTo] })
  ).filter((m) => range.after === undefined || m.nodeId > range.after);
  const have = new Map(markers.map((m) => [m.nodeId, m] as const));
  for (const live of lives) {
    const marker = have.get(live.nodeId);
    have.delete(live.nodeId);
    const online = isOnline(live, ctx, now);
    const sample = samples.get(live.nodeId);
    if (online && !sample && live.nodeId === range.split) continue;
    const kinds = nodeProblemKinds(
      {
        containerStats: sample?.containerStats ?? {},
        ...(sample?.metrics ? { metrics: sample.metrics } : {}),
        ...(live.diskGb !== undefined ? { diskGb: live.diskGb } : {}),
        ...((live.memoryMb ?? live.unifiedMb) !== undefined
          ? { memoryMb: (live.memoryMb ?? live.unifiedMb)! }
          : {}),
      },
      online,
    );
    // Conditional on the marker read: a heartbeat's write since this page was read wins.
    if (!sameKinds(kinds, marker?.kinds ?? [])) await setProblemMarker(ctx, live.nodeId, kinds, { marker });
  }
  for (const m of have.values()) await dropStaleMarker(ctx, m);
}

/** A model the node loaded or dropped on its own is trusted over the index after this (placement's settle time). */
const MODEL_SETTLED_MS = 60_000;

/**
 * The indexes are written where liveness and cordon change; the repair is the safety net for a
 * lost write, so a shard's is done at most this often per process, not on every sweep.
 */
export const INDEX_REPAIR_EVERY_MS = 5 * 60_000;
let lastRepair = 0;
/** Whether the sweep starting now repairs the indexes (its whole chain does, the flag travels with it). */
export function indexRepairDue(): boolean {
  const now = Date.now();
  if (now - lastRepair < INDEX_REPAIR_EVERY_MS) return false;
  lastRepair = now;
  return true;
}

/**
 * One invocation's share of the sweep: up to `budget` records of one shard from `cursor`, so a
 * fleet of any size is swept by invocations of bounded work (one chain per shard, each link under
 * the function's timeout). Flips silent online nodes offline, conditional on the heartbeat it
 * judged so a heartbeat that lands meanwhile wins, and names those silent past retirement.
 */
export async function sweepShard(
  ctx: AppContext,
  shard: number,
  cursor?: string,
  budget = SWEEP_ITEMS_PER_INVOCATION,
  /** Repair the eligible-node and free-capacity indexes of what it reads. */
  repair = false,
): Promise<ShardSweep> {
  const now = ctx.now();
  const retireAfter = ctx.config.NODE_RETIRE_AFTER_SECONDS;
  const out: ShardSweep = {
    read: 0,
    wentOffline: [],
    toRetire: [],
    part: emptyPart(),
    repaired: 0,
    runHolders: [],
  };
  let next = cursor;
  // The problem markers' range is synced up to here (below every node id when this link starts the shard).
  let markedUpTo: string | undefined = cursor ? undefined : ' ';
  do {
    const page = await ctx.store.query<LiveRecord | MetricsRecord>(fleetKeys.nodeStatePk(shard), {
      limit: Math.min(SWEEP_PAGE_ITEMS, budget - out.read),
      ...(next ? { cursor: next } : {}),
    });
    // Page boundaries for GET /metrics: the first liveness record of each run of METRICS_PAGE_RECORDS.
    const starts = ((out.part.starts ??= {})[String(shard)] ??= []);
    let wantStart = false;
    page.items.forEach((r, i) => {
      if ((out.read + i) % ctx.config.METRICS_PAGE_RECORDS === 0) wantStart = true;
      if (wantStart && r.sk.endsWith(fleetKeys.nodeLiveSuffix)) {
        starts.push(r.sk.slice(0, -fleetKeys.nodeLiveSuffix.length + 1));
        wantStart = false;
      }
    });
    out.read += page.items.length;
    next = page.cursor;
    const lives = page.items.filter((r): r is LiveRecord => r.sk.endsWith(fleetKeys.nodeLiveSuffix));
    const samples = new Map(
      page.items
        .filter((r): r is MetricsRecord => !r.sk.endsWith(fleetKeys.nodeLiveSuffix))
        .map((r) => [r.nodeId, r] as const),
    );
    for (const live of lives) {
      countInPart(out.part, live);
      if (!isOnline(live, ctx, now)) continue;
      const sample = samples.get(live.nodeId);
      addToPart(out.part, live, sample);
      if (Object.values(sample?.containerStats ?? {}).some((c) => c.kind === 'run'))
        out.runHolders.push(live.nodeId);
    }
    if (repair) out.repaired += await repairIndexes(ctx, shard, lives, samples, now);
    for (const r of page.items) {
      if (!r.sk.endsWith(fleetKeys.nodeLiveSuffix)) continue;
      const live = r as LiveRecord;
      if (retireAfter && now - live.lastHeartbeatMs > retireAfter * 1000) out.toRetire.push(live);
      if (live.status !== 'online' || isOnline(live, ctx, now)) continue;
      const swept = await updateIf(
        ctx.store,
        live.pk,
        live.sk,
        { set: { status: 'offline' } },
        { equals: { status: 'online', lastHeartbeatMs: live.lastHeartbeatMs } },
      );
      if (!swept) continue;
      out.wentOffline.push(live.nodeId);
      await Promise.all([
        clearFree(ctx, live.nodeId),
        clearUp(ctx, live.nodeId),
        // Written here, not by the marker sync, which runs with the index repair only.
        setProblemMarker(ctx, live.nodeId, nodeProblemKinds({ containerStats: {} }, false)),
        // A liveness record from before it carried the name leaves the entry to jetpack's reader.
        ...(live.unifiedMb !== undefined && live.name
          ? [clearJetsonUp(ctx, { nodeId: live.nodeId, nodeName: live.name })]
          : []),
      ]);
      await emit(ctx, { type: 'node.offline', nodeId: live.nodeId, lastHeartbeat: live.lastHeartbeat });
    }
    const last = page.items[page.items.length - 1] as (LiveRecord | MetricsRecord) | undefined;
    // The markers are kept where a node's problems change (heartbeat, offline flip, stop): the sync
    // is the safety net for a lost write, at the index repair's pace (one query a page, 8+ a sweep).
    if (repair && (last || !next))
      await syncProblemMarkers(ctx, shard, lives, samples, now, {
        after: markedUpTo,
        upTo: next ? last!.nodeId : '\uffff',
        split: next && last?.sk.endsWith(fleetKeys.nodeLiveSuffix) ? last.nodeId : undefined,
      });
    markedUpTo = last?.nodeId ?? markedUpTo;
  } while (next && out.read < budget);
  if (next) out.cursor = next;
  return out;
}

/** Cordons (optionally for a drain) or uncordons; undefined when the node is gone. */
export async function setCordon(
  ctx: AppContext,
  nodeId: string,
  state: { cordoned: boolean; draining?: boolean },
): Promise<NodeItem | undefined> {
  const k = keys.node(nodeId);
  const set = state.cordoned
    ? { cordoned: true, draining: state.draining === true, cordonedAt: new Date(ctx.now()).toISOString() }
    : { cordoned: false, draining: false };
  try {
    // Cordon state is registry state: it lives on META, and readers get the node with its liveness.
    const node = await withState(
      ctx,
      await ctx.store.update<NodeItem>(k.pk, k.sk, { set }, { exists: true }),
    );
    const model = [...node.loadedModels].sort()[0];
    if (state.cordoned) await Promise.all([clearFree(ctx, nodeId), clearUp(ctx, nodeId)]);
    else {
      await markFree(ctx, nodeId, { keep: true, ...(model ? { model } : {}) });
      if (isOnline(node, ctx)) await markUp(ctx, nodeId);
    }
    return node;
  } catch (error) {
    if (error instanceof ConditionFailedError) return undefined;
    throw error;
  }
}

/** Eligible nodes a group holds before a caller chooses among them (the last group may hold fewer). */
export const ELIGIBLE_GROUP = 16;

/**
 * Online, uncordoned nodes from the eligible-node index, shards in order (the same fleet gives the
 * same groups), in groups of at least ELIGIBLE_GROUP: each entry's node is read and checked, stale
 * entries skipped (the sweep repairs the index). A caller that stops early reads no further.
 */
export async function* eligibleGroups(ctx: AppContext): AsyncGenerator<NodeItem[]> {
  const schedulable = (n: NodeItem | undefined): n is NodeItem =>
    !!n && !n.cordoned && isOnline(n, ctx, ctx.now());
  let group: NodeItem[] = [];
  for (const shard of SHARDS) {
    let cursor: string | undefined;
    do {
      const page = await ctx.store.query<FreeRecord>(fleetKeys.nodeUpPk(shard), {
        limit: ELIGIBLE_GROUP,
        ...(cursor ? { cursor } : {}),
      });
      cursor = page.cursor;
      group.push(...(await Promise.all(page.items.map((r) => getNode(ctx, r.nodeId)))).filter(schedulable));
      if (group.length >= ELIGIBLE_GROUP) {
        yield group;
        group = [];
      }
    } while (cursor);
  }
  if (group.length) yield group;
}
