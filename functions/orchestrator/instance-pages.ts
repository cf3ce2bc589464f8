/**
 * Container instances a page at a time: the fleet's (GET /containers, GET /api/swarm/containers)
 * and one image's (GET /containers/{imageId}/instances: a global service has a copy on every
 * eligible node).
 */
import * as z from 'zod';
import type { AppContext } from '../core/context.js';
import { ValidationError } from '../core/errors.js';
import { fleetKeys } from '../core/keys.js';
import type { InstanceItem, ServiceItem } from './model.js';
import { fleetInstanceCounts, totalOf } from './instance-counts.js';

/** Most instances one page returns (and its default: a small fleet comes back whole). */
export const INSTANCE_PAGE_MAX = 1000;
/** Services one read of the service index takes. */
const SERVICE_PAGE = 100;

export const instancePageQuery = {
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(INSTANCE_PAGE_MAX)
    .default(INSTANCE_PAGE_MAX)
    .describe('Containers a page, by image and id (default 1,000: a small fleet in one page)'),
  cursor: z.string().min(1).max(4096).optional().describe("A page's `next_cursor`: the containers after it"),
};

/** Where a page ends: an image and an id within it (an instance's, an endpoint's). */
export interface After {
  /** The image and the id last listed. */
  i: string;
  a: string;
}

/** Opaque to callers: base64url JSON of the last image and instance listed; a malformed one is a 400. */
export const encodeCursor = (after: After) => Buffer.from(JSON.stringify(after)).toString('base64url');

export function decodeCursor(cursor: string): After {
  try {
    if (/^[A-Za-z0-9_-]+$/.test(cursor)) {
      const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Partial<After> | null;
      const { i, a } = parsed ?? {};
      if (typeof i === 'string' && typeof a === 'string' && i && a && i.length <= 1024 && a.length <= 400)
        return { i, a };
    }
  } catch {
    // fall through
  }
  throw invalidCursor();
}

export const invalidCursor = () =>
  new ValidationError(
    [{ loc: ['query', 'cursor'], msg: 'Invalid pagination cursor', type: 'value_error' }],
    400,
  );

/**
 * Adds the image's instances after `resume` (removed ones left out) to `found` until it holds one
 * more than `limit` or the image is read through: a Limit query of its gsi1 partition, by id.
 */
async function collect(
  ctx: AppContext,
  imageId: string,
  resume: string | undefined,
  found: InstanceItem[],
  limit: number,
): Promise<void> {
  let from: string | undefined;
  do {
    const batch = await ctx.store.query<InstanceItem>(fleetKeys.imageInstancesPk(imageId), {
      index: 'gsi1',
      ascending: true,
      ...(resume !== undefined ? { between: [resume, '\uffff'] as [string, string] } : {}),
      limit: limit + 1 - found.length + (resume !== undefined ? 1 : 0),
      ...(from !== undefined ? { cursor: from } : {}),
    });
    for (const i of batch.items)
      if (i.instanceId !== resume && i.status !== 'removed' && found.length <= limit) found.push(i);
    from = batch.cursor;
  } while (from !== undefined && found.length <= limit);
}

/**
 * `limit` instances (removed ones left out) after `cursor`, by image and instance id: pages of the
 * service index and of each listed image's instances, read until one more than the page is found,
 * so a request reads what it returns (and the removed copies of the day between), never the
 * fleet. `total` comes from the counters (instance-counts.ts), or is the page's own length when
 * the page is the whole fleet. `cursor` is absent on the last page.
 */
export async function instancePage(
  ctx: AppContext,
  opts: { limit: number; cursor?: string | undefined },
): Promise<{ instances: InstanceItem[]; total: number; cursor?: string }> {
  const after = opts.cursor === undefined ? undefined : decodeCursor(opts.cursor);
  const found: InstanceItem[] = [];
  const full = () => found.length > opts.limit;
  let services: string | undefined;
  do {
    const page = await ctx.store.query<ServiceItem>(fleetKeys.servicesPk, {
      index: 'gsi1',
      ascending: true,
      ...(after ? { between: [after.i, '\uffff'] as [string, string] } : {}),
      limit: SERVICE_PAGE,
      ...(services !== undefined ? { cursor: services } : {}),
    });
    for (const service of page.items) {
      await collect(
        ctx,
        service.imageId,
        after?.i === service.imageId ? after.a : undefined,
        found,
        opts.limit,
      );
      if (full()) break;
    }
    services = page.cursor;
  } while (services !== undefined && !full());
  const listed = found.slice(0, opts.limit);
  const last = listed.at(-1);
  const whole = after === undefined && !full();
  return {
    instances: listed,
    total: whole ? listed.length : totalOf(await fleetInstanceCounts(ctx)),
    ...(full() && last ? { cursor: encodeCursor({ i: last.imageId, a: last.instanceId }) } : {}),
  };
}

/**
 * `limit` of one image's instances (removed ones left out) after `cursor`, by instance id: reads
 * the page (and the removed copies of the day between), never every copy. A cursor of another
 * image's listing is a 400; `cursor` is absent on the last page.
 */
export async function imageInstancePage(
  ctx: AppContext,
  imageId: string,
  opts: { limit: number; cursor?: string | undefined },
): Promise<{ instances: InstanceItem[]; cursor?: string }> {
  const after = opts.cursor === undefined ? undefined : decodeCursor(opts.cursor);
  if (after && after.i !== imageId) throw invalidCursor();
  const found: InstanceItem[] = [];
  await collect(ctx, imageId, after?.a, found, opts.limit);
  const listed = found.slice(0, opts.limit);
  const last = listed.at(-1);
  return {
    instances: listed,
    ...(found.length > opts.limit && last
      ? { cursor: encodeCursor({ i: imageId, a: last.instanceId }) }
      : {}),
  };
}
