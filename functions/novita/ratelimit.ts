import type { AppContext } from '../core/context.js';
import { novitaKeys } from '../core/keys.js';
import { putIfAbsent, updateIf, type StoreItem } from '../ports/store.js';

/** The documented limits: creation and status queries per minute, everything else per hour. */
export type RateBucket = 'create' | 'status' | 'general';

interface WindowItem extends StoreItem {
  count: number;
}

export interface RateVerdict {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Epoch seconds when the window ends. */
  reset: number;
  retryAfterSeconds: number;
}

export function bucketLimit(ctx: AppContext, bucket: RateBucket): { limit: number; windowSeconds: number } {
  const c = ctx.config;
  if (bucket === 'create') return { limit: c.NOVITA_RATE_LIMIT_CREATE_PER_MINUTE, windowSeconds: 60 };
  if (bucket === 'status') return { limit: c.NOVITA_RATE_LIMIT_STATUS_PER_MINUTE, windowSeconds: 60 };
  return { limit: c.NOVITA_RATE_LIMIT_GENERAL_PER_HOUR, windowSeconds: 3600 };
}

const MAX_TRIES = 8;

/**
 * Fixed windows, one counter item per (bucket, ip, window). The count only rises through a
 * conditional write on the version read, so concurrent Lambdas never admit more than the limit;
 * a refused request is not counted. TTL removes old windows.
 */
export async function takeToken(ctx: AppContext, bucket: RateBucket, ip: string): Promise<RateVerdict> {
  const { limit, windowSeconds } = bucketLimit(ctx, bucket);
  const nowS = Math.floor(ctx.now() / 1000);
  const windowStart = nowS - (nowS % windowSeconds);
  const reset = windowStart + windowSeconds;
  const k = novitaKeys.rateWindow(bucket, ip, windowStart);
  const verdict = (count: number, allowed: boolean): RateVerdict => ({
    allowed,
    limit,
    remaining: Math.max(0, limit - count),
    reset,
    retryAfterSeconds: Math.max(1, reset - nowS),
  });
  for (let tries = 0; tries < MAX_TRIES; tries++) {
    const current = await ctx.store.get<WindowItem>(k.pk, k.sk);
    const count = current?.count ?? 0;
    if (count >= limit) return verdict(count, false);
    const counted = current
      ? (await updateIf(ctx.store, k.pk, k.sk, { add: { count: 1 } }, { version: current.version ?? 0 })) !== undefined
      : await putIfAbsent(ctx.store, { ...k, count: 1, version: 1, expiresAt: reset + 60 } satisfies WindowItem);
    if (counted) return verdict(count + 1, true);
  }
  // Heavy contention on one client's window: refuse rather than count past the limit.
  return verdict(limit, false);
}

export function rateHeaders(v: RateVerdict): Record<string, string> {
  return {
    'x-ratelimit-limit': String(v.limit),
    'x-ratelimit-remaining': String(v.remaining),
    'x-ratelimit-reset': String(v.reset),
  };
}
