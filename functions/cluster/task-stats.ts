/**
 * Run-time statistics of completed tasks, kept as counters so that a wait estimate reads a few
 * small records instead of every task of the last day. One record per UTC day and shard
 * (`TASKSTATS#<shard>` / `<yyyy-mm-dd>`), updated with ADD by each completion: fleet-wide count and
 * seconds, and the same per model. A completion picks its shard at random, so no partition key
 * takes more than 1/TASK_STATS_SHARDS of the fleet's completions (1,000 writes/s each).
 */
import type { AppContext } from '../core/context.js';
import { queryAll, type StoreItem } from '../ports/store.js';

export const TASK_STATS_SHARDS = 8;
const SHARDS = Array.from({ length: TASK_STATS_SHARDS }, (_, i) => i);
const DAY_MS = 86_400_000;
/** Records outlive the two days a reader looks at. */
const TTL_SECONDS = 3 * 86_400;

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
export const taskStatsKey = (shard: number, dayKey: string) => ({ pk: `TASKSTATS#${shard}`, sk: dayKey });

interface TaskStatsItem extends StoreItem {
  count?: number;
  seconds?: number;
  [field: string]: unknown;
}

const countField = (model: string) => `count:${model}`;
const secondsField = (model: string) => `seconds:${model}`;

/** One write unit a completed task. */
export async function recordCompletion(ctx: AppContext, model: string, seconds: number): Promise<void> {
  const now = ctx.now();
  const shard = Math.floor(Math.random() * TASK_STATS_SHARDS);
  const k = taskStatsKey(shard, day(now));
  await ctx.store.update(
    k.pk,
    k.sk,
    {
      set: { expiresAt: Math.floor(now / 1000) + TTL_SECONDS },
      add: { count: 1, seconds, [countField(model)]: 1, [secondsField(model)]: seconds },
    },
    // No condition: the first completion of the day creates the record.
    {},
  );
}

export interface Durations {
  perModel: Map<string, number>;
  fleet: number | null;
}

/** Mean run seconds per model and fleet-wide over today and yesterday (UTC). */
export async function readDurations(ctx: AppContext): Promise<Durations> {
  const now = ctx.now();
  const items = (
    await Promise.all(
      SHARDS.map((s) =>
        queryAll<TaskStatsItem>(ctx.store, taskStatsKey(s, '').pk, {
          between: [day(now - DAY_MS), day(now)],
        }),
      ),
    )
  ).flat();
  let count = 0;
  let seconds = 0;
  const perCount = new Map<string, number>();
  const perSeconds = new Map<string, number>();
  for (const item of items) {
    count += item.count ?? 0;
    seconds += item.seconds ?? 0;
    for (const [field, value] of Object.entries(item)) {
      if (typeof value !== 'number') continue;
      if (field.startsWith('count:'))
        perCount.set(field.slice(6), (perCount.get(field.slice(6)) ?? 0) + value);
      if (field.startsWith('seconds:'))
        perSeconds.set(field.slice(8), (perSeconds.get(field.slice(8)) ?? 0) + value);
    }
  }
  const perModel = new Map<string, number>();
  for (const [model, n] of perCount) if (n > 0) perModel.set(model, (perSeconds.get(model) ?? 0) / n);
  return { perModel, fleet: count > 0 ? seconds / count : null };
}
