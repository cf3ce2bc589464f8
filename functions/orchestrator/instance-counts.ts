/**
 * Container instances in each status, kept as counters so that a fleet count (`/health/detailed`,
 * `/test/integration`, a listing's `total`) and an image's counts (`GET /images`) read a few small
 * records instead of the instances; and the dead copies (exited or failed), kept as markers in
 * their node's shard (`DEADCOPIES#<0-7>`), so the problems listing reads those instead of every
 * instance.
 *
 * Each status change that wins its conditional write (model.ts `transitionInstance`, and the two
 * puts that create an instance) adds -1 to the status it left and +1 to the one it entered, on
 * one record of a random shard: the fleet's (`INSTCOUNT#<0-7>` / `LIVE`) and the image's
 * (`INSTCOUNT#I#<imageId>` / `<0-7>`, which also counts its `moves`). `removed` is not counted:
 * removed instances are gone from every view and deleted by TTL a day later. The counter write
 * follows the instance's; a process that dies in between leaves a count one off (clamped at zero
 * when read) until `recountImage`, run by the image's reconcile with the instances it read anyway
 * (a global service's: `recountGlobalShard`, from its pages of nodes), puts the image's counts and
 * the fleet's right.
 */
import type { AppContext } from '../core/context.js';
import { instanceKeys } from '../core/keys.js';
import { deleteIf, queryAll, type StoreItem } from '../ports/store.js';
import { NODE_SHARDS, nodeShard } from '../nodes/node-records.js';
import type { InstanceStatus } from './plan-model.js';

export const INSTANCE_COUNT_SHARDS = 8;
const SHARDS = Array.from({ length: INSTANCE_COUNT_SHARDS }, (_, i) => i);
/** Counted statuses: every one but `removed`. */
export const COUNTED: readonly InstanceStatus[] = [
  'pending',
  'running',
  'stopping',
  'stopped',
  'exited',
  'failed',
  'orphaned',
  'removing',
];
/** Dead copies: a problem on their node (commander/maintenance/problems.ts) while in one of these. */
export const DEAD: ReadonlySet<InstanceStatus> = new Set(['exited', 'failed']);
/** Image record field summing its counted moves (no count: `toCounts` leaves it out). */
const MOVES = 'moves';

export type InstanceCounts = Record<InstanceStatus, number>;

/** What a count needs of an instance. */
type Counted = { instanceId: string; imageId: string; nodeId: string };

/**
 * Counts one status change (`from` undefined: a new instance; equal statuses change nothing) and
 * keeps the dead-copy marker. Failures are logged, never thrown: the instance's own write happened.
 */
export async function countInstance(
  ctx: AppContext,
  inst: Counted,
  from: InstanceStatus | undefined,
  to: InstanceStatus,
): Promise<void> {
  if (from === to) return;
  const delta: Record<string, number> = {};
  if (from && from !== 'removed') delta[from] = -1;
  if (to !== 'removed') delta[to] = (delta[to] ?? 0) + 1;
  const shard = Math.floor(Math.random() * INSTANCE_COUNT_SHARDS);
  const fleet = instanceKeys.fleetCount(shard);
  const image = instanceKeys.imageCount(inst.imageId, shard);
  const dead = instanceKeys.deadCopy(nodeShard(inst.nodeId), inst.nodeId, inst.instanceId);
  try {
    await Promise.all([
      Object.keys(delta).length ? ctx.store.update(fleet.pk, fleet.sk, { add: delta }, {}) : undefined,
      ctx.store.update(image.pk, image.sk, { add: { ...delta, [MOVES]: 1 } }, {}),
      DEAD.has(to) && !(from && DEAD.has(from)) ? putDeadMarker(ctx, inst) : undefined,
      from && DEAD.has(from) && !DEAD.has(to) ? deleteIf(ctx.store, dead.pk, dead.sk) : undefined,
    ]);
  } catch (error) {
    ctx.logger.warn('instance count failed', {
      instanceId: inst.instanceId,
      from,
      to,
      error: error as Error,
    });
  }
}

function putDeadMarker(ctx: AppContext, inst: Counted): Promise<void> {
  return ctx.store.put({
    ...instanceKeys.deadCopy(nodeShard(inst.nodeId), inst.nodeId, inst.instanceId),
    instanceId: inst.instanceId,
    imageId: inst.imageId,
    nodeId: inst.nodeId,
  });
}

export const zeroCounts = (): InstanceCounts => ({
  pending: 0,
  running: 0,
  stopping: 0,
  stopped: 0,
  exited: 0,
  failed: 0,
  orphaned: 0,
  removing: 0,
  removed: 0,
});

/** Counter records summed as stored (a lost counter write may leave one below zero). */
function sumRecords(items: readonly StoreItem[]): InstanceCounts {
  const out = zeroCounts();
  for (const item of items)
    for (const s of COUNTED) {
      const v = item[s];
      if (typeof v === 'number') out[s] += v;
    }
  return out;
}

/** What readers see: a count one off never shows below zero. */
function toCounts(items: readonly StoreItem[]): InstanceCounts {
  const out = sumRecords(items);
  for (const s of COUNTED) out[s] = Math.max(0, out[s]);
  return out;
}

/** Instances not removed. */
export const totalOf = (c: InstanceCounts): number => COUNTED.reduce((n, s) => n + c[s], 0);

/** The fleet's counts: 8 single-item queries, eventually consistent (half a read unit each). */
export async function fleetInstanceCounts(ctx: AppContext): Promise<InstanceCounts> {
  const pages = await Promise.all(
    SHARDS.map((s) => {
      const k = instanceKeys.fleetCount(s);
      return ctx.store.query<StoreItem>(k.pk, { between: [k.sk, k.sk], limit: 1 });
    }),
  );
  return toCounts(pages.flatMap((p) => p.items));
}

/** One image's counts: one query of at most 8 small records (16 for a global service: its passes' too). */
export async function imageInstanceCounts(ctx: AppContext, imageId: string): Promise<InstanceCounts> {
  return toCounts(await queryAll<StoreItem>(ctx.store, instanceKeys.imageCountPk(imageId)));
}

const movesOf = (items: readonly StoreItem[]) =>
  items.reduce((n, i) => n + (typeof i[MOVES] === 'number' ? i[MOVES] : 0), 0);

/** How long an image's moves must stand still between two reconciles before a recount corrects. */
const QUIET_MS = 50_000;

interface RecountItem extends StoreItem {
  moves: number;
  at: number;
  /** What the instances read showed minus the counters, by status. */
  diff: Record<string, number>;
}

/**
 * The image's counts against `instances` (every one of the image not removed, as its reconcile
 * just read them): `correct` below. Reads one query of the image's small records, and the recount
 * record when the counts differ.
 */
export async function recountImage(
  ctx: AppContext,
  imageId: string,
  instances: readonly (Counted & { status: InstanceStatus })[],
): Promise<Record<string, number> | undefined> {
  const items = await queryAll<StoreItem>(ctx.store, instanceKeys.imageCountPk(imageId));
  const actual = zeroCounts();
  for (const i of instances) if (i.status !== 'removed') actual[i.status]++;
  // Copies the counters missed may miss their dead markers too (stored before them): put again.
  return correct(ctx, imageId, items, actual, () => instances.filter((i) => DEAD.has(i.status)));
}

/** The image's counted moves so far: a global service's reconcile chain notes them at its start. */
export async function imageMoves(ctx: AppContext, imageId: string): Promise<number> {
  return movesOf(await queryAll<StoreItem>(ctx.store, instanceKeys.imageCountPk(imageId)));
}

interface PassItem extends StoreItem {
  /** The shard's copies of the image by status, as the chain read them node by node. */
  copies: Record<string, number>;
  /** The image's moves when the chain began (not `moves`: the image's records sum those). */
  atMoves: number;
  /** The moves were the same when the chain ended. */
  still: boolean;
}

const isPass = (item: StoreItem): item is PassItem => item.sk.startsWith('PASS#');

/**
 * A global service's recount, from its reconcile's pages of nodes instead of a read of every copy:
 * each shard's chain counts the image's copies on the nodes it reads and, at its end, stores them
 * beside the image's counters with the moves at its start (`movesAtStart`) and whether they stood
 * still through the chain. Once all 8 shards' counts stand at the moves the counters hold now
 * (nothing counted moved while any was read), their sum is the image's count, and `correct` takes
 * it as a replicated image's does. Reads one query of the image's records (counters and passes)
 * and, on a difference, the recount record: bounded, whatever the copies. Dead markers are not put
 * here (no list of copies).
 */
export async function recountGlobalShard(
  ctx: AppContext,
  imageId: string,
  shard: number,
  copies: Readonly<Record<string, number>>,
  movesAtStart: number,
): Promise<Record<string, number> | undefined> {
  const items = await queryAll<StoreItem>(ctx.store, instanceKeys.imageCountPk(imageId));
  const counters = items.filter((i) => !isPass(i));
  const moves = movesOf(counters);
  const mine: PassItem = {
    ...instanceKeys.imagePass(imageId, shard),
    copies: { ...copies },
    atMoves: movesAtStart,
    still: moves === movesAtStart,
  };
  await ctx.store.put<PassItem>(mine);
  const passes = [mine, ...items.filter(isPass).filter((p) => p.sk !== mine.sk)];
  if (passes.length < NODE_SHARDS || !passes.every((p) => p.still && p.atMoves === moves)) return undefined;
  const actual = zeroCounts();
  for (const p of passes)
    for (const s of COUNTED) actual[s] += typeof p.copies[s] === 'number' ? p.copies[s] : 0;
  return correct(ctx, imageId, counters, actual, () => []);
}

/**
 * `actual` against the counter records `items` (read just before). A difference is corrected only
 * when a later look, at least QUIET_MS after, finds the same difference and no counted move in
 * between: a change whose counter write was on its way when the copies were read would otherwise
 * count twice. The correction is added to one shard of the image's records and of the fleet's.
 * The difference is against the stored sums, so a count a lost write left below zero comes right too.
 */
async function correct(
  ctx: AppContext,
  imageId: string,
  items: readonly StoreItem[],
  actual: InstanceCounts,
  deadOnes: () => readonly Counted[],
): Promise<Record<string, number> | undefined> {
  const counts = sumRecords(items);
  const moves = movesOf(items);
  const diff: Record<string, number> = {};
  for (const s of COUNTED) if (actual[s] !== counts[s]) diff[s] = actual[s] - counts[s];
  // Counts right: nothing more read. A record left from a difference gone stays; moves outdate it.
  if (!Object.keys(diff).length) return undefined;
  const k = instanceKeys.recount(imageId);
  const last = await ctx.store.get<RecountItem>(k.pk, k.sk);
  const now = ctx.now();
  const same =
    last !== undefined && last.moves === moves && JSON.stringify(last.diff) === JSON.stringify(diff);
  if (!same) {
    await ctx.store.put<RecountItem>({ ...k, moves, at: now, diff });
    return undefined;
  }
  if (now - last.at < QUIET_MS) return undefined;
  // Claimed by deleting the record it read: of two reconciles at once, one corrects.
  if (!(await deleteIf(ctx.store, k.pk, k.sk, { equals: { at: last.at } }))) return undefined;
  const shard = Math.floor(Math.random() * INSTANCE_COUNT_SHARDS);
  const fleet = instanceKeys.fleetCount(shard);
  const image = instanceKeys.imageCount(imageId, shard);
  const dead = diff.exited || diff.failed ? deadOnes() : [];
  await Promise.all([
    ctx.store.update(image.pk, image.sk, { add: diff }, {}),
    ctx.store.update(fleet.pk, fleet.sk, { add: diff }, {}),
    ...dead.map((i) => putDeadMarker(ctx, i)),
  ]);
  ctx.logger.warn('instance counters recounted', { imageId, diff });
  return diff;
}
