import { randomBytes } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { ConflictError, NotFoundError, ValidationError, UnavailableError } from '../core/errors.js';
import { checkOutboundUrl, OutboundRefusedError } from '../core/outbound.js';
import { emit } from '../core/events.js';
import { novitaKeys } from '../core/keys.js';
import type { NovitaProduct, NovitaTemplate } from '../ports/novita-cloud.js';
import { isBurst, markLiveBurst, unmarkLiveBurst } from './burst-index.js';
import { instanceCounts, markLive, syncLive, unmarkLive } from './live-index.js';
import { noteCache } from './metrics.js';
import { asHttp, getInstanceItem, isoNow, type NovitaInstanceItem } from './model.js';
import { chooseProduct } from './products.js';
import { novitaCloud } from './settings.js';
import type { InstanceStatus } from './status.js';
import { POLL_EVENT } from './model.js';
import { issueJoinToken } from '../nodes/join-tokens.js';
import { joinEnvs, startupCommand } from './join.js';

/** How long Novita typically takes to bring an instance up; only the estimate in the answer. */
const TYPICAL_STARTUP_MS = 5 * 60_000;

export interface CreateInput {
  name: string;
  productName: string;
  templateId: string;
  gpuNum: number;
  rootfsSize: number;
  region: string;
  webhookUrl?: string;
  join_fleet?: boolean | undefined;
  cluster?: string | undefined;
  labels?: Record<string, string> | undefined;
  spot?: boolean | undefined;
}

export interface CreateOptions {
  /** The control plane URL a joining instance is given (INSTALL_CONTROL_PLANE_URL wins). */
  baseUrl?: string;
  /** A burst's: the training job it is rented for. */
  burstFor?: string;
  /** A model burst's: the model whose queue it serves. */
  burstModel?: string;
  /** Refuse when the cheapest offer costs more per hour. */
  maxPricePerHour?: number;
}

const caches = new WeakMap<AppContext, Map<string, { value: unknown; until: number }>>();

/** Products and templates change rarely: reuse them for NOVITA_CACHE_SECONDS. Misses are not cached. */
async function cached<T>(ctx: AppContext, key: string, load: () => Promise<T>): Promise<T> {
  let cache = caches.get(ctx);
  if (!cache) caches.set(ctx, (cache = new Map()));
  const hit = cache.get(key);
  if (hit && hit.until > ctx.now()) {
    await noteCache(ctx, true);
    return hit.value as T;
  }
  await noteCache(ctx, false);
  const value = await load();
  if (value !== undefined && ctx.config.NOVITA_CACHE_SECONDS > 0) {
    cache.set(key, { value, until: ctx.now() + ctx.config.NOVITA_CACHE_SECONDS * 1000 });
  }
  return value;
}

const invalid = (field: string, msg: string, type: string) =>
  new ValidationError([{ loc: ['body', field], msg, type }], 400);

export async function createInstance(ctx: AppContext, input: CreateInput, options: CreateOptions = {}) {
  // Before anything else: a receiver the control plane may not reach is a bad request.
  if (input.webhookUrl) {
    try {
      await checkOutboundUrl(input.webhookUrl, ctx.config.OUTBOUND_ALLOWLIST);
    } catch (error) {
      if (!(error instanceof OutboundRefusedError)) throw error;
      throw invalid('webhookUrl', `webhookUrl refused: ${error.message}`, 'forbidden_destination');
    }
  }
  const cloud = novitaCloud(ctx);
  const billingMode = input.spot === undefined ? ctx.config.NOVITA_BILLING_MODE : input.spot ? 'spot' : 'onDemand';
  const joinUrl = ctx.config.INSTALL_CONTROL_PLANE_URL?.replace(/\/+$/, '') ?? options.baseUrl;
  if (input.join_fleet && !joinUrl) {
    throw invalid('join_fleet', 'join_fleet needs the control plane URL instances reach (INSTALL_CONTROL_PLANE_URL)', 'no_control_plane_url');
  }
  let products: NovitaProduct[];
  let template: NovitaTemplate | undefined;
  try {
    products = await cached(ctx, `products|${input.productName}|${input.gpuNum}`, () =>
      cloud.listProducts({ productName: input.productName, gpuNum: input.gpuNum }),
    );
    template = await cached(ctx, `template|${input.templateId}`, () => cloud.getTemplate(input.templateId));
  } catch (error) {
    throw asHttp(error);
  }
  const choice = chooseProduct(products, { productName: input.productName, region: input.region, billingMode });
  if (choice.kind === 'unknown') {
    const known = choice.known.slice(0, 20);
    throw invalid(
      'productName',
      `Unknown product "${input.productName}"${known.length ? `; similar products: ${known.join(', ')}` : ''}`,
      'unknown_product',
    );
  }
  if (choice.kind === 'wrong-region') {
    throw invalid(
      'region',
      `Product "${input.productName}" is not offered in ${input.region}; regions: ${choice.regions.join(', ') || 'none'}`,
      'unknown_region',
    );
  }
  if (choice.kind === 'unavailable') {
    throw new UnavailableError(`No "${input.productName}" can be deployed in ${input.region} now`, 'NOVITA_API_ERROR', {
      reason: 'INSUFFICIENT_RESOURCE',
      productName: input.productName,
      region: input.region,
    });
  }
  const product = choice.product;
  if (options.maxPricePerHour !== undefined && choice.price > options.maxPricePerHour) {
    throw new ConflictError(`The cheapest "${product.name}" in ${input.region} costs ${choice.price} per hour, above the most allowed (${options.maxPricePerHour})`, 'PRICE_ABOVE_LIMIT');
  }
  if (
    (product.minRootFS !== undefined && input.rootfsSize < product.minRootFS) ||
    (product.maxRootFS !== undefined && input.rootfsSize > product.maxRootFS)
  ) {
    throw invalid(
      'rootfsSize',
      `rootfsSize must be between ${product.minRootFS ?? 1} and ${product.maxRootFS ?? 'unbounded'} GB for ${product.name}`,
      'out_of_range',
    );
  }
  if (!template) throw invalid('templateId', `Unknown template "${input.templateId}"`, 'unknown_template');

  // Written before Novita is asked, so a crash after the create leaves a record the poller
  // (and the migration sweep) can find and fail, not an instance nobody knows.
  const instanceId = `inst-${randomBytes(6).toString('hex')}`;
  const createdAt = isoNow(ctx);
  // A join token for this one instance: one use, its node name only, gone when the startup window is.
  const join = input.join_fleet
    ? await issueJoinToken(ctx, 'worker', {
        maxUses: 1,
        ttlSeconds: ctx.config.NOVITA_STARTUP_TIMEOUT_SECONDS + 600,
        nodeName: instanceId,
        cloud: {
          provider: 'novita',
          instanceId,
          pricePerHour: choice.price,
          spot: billingMode === 'spot',
          productName: product.name,
          region: input.region,
        },
      })
    : undefined;
  const item: NovitaInstanceItem = {
    ...novitaKeys.instance(instanceId),
    ...novitaKeys.instanceIndexes(createdAt, instanceId, 'creating'),
    version: 1,
    instanceId,
    name: input.name,
    status: 'creating',
    productId: product.id,
    productName: product.name,
    templateId: template.id,
    gpuNum: input.gpuNum,
    rootfsSize: input.rootfsSize,
    region: input.region,
    billingMode,
    price: choice.price,
    ...(input.webhookUrl ? { webhookUrl: input.webhookUrl } : {}),
    ...(join
      ? {
          joinFleet: true,
          nodeName: instanceId,
          joinTokenId: join.item.id,
          ...(input.cluster ? { cluster: input.cluster } : {}),
          ...(input.labels ? { labels: input.labels } : {}),
        }
      : {}),
    ...(options.burstFor ? { burstFor: options.burstFor } : {}),
    ...(options.burstModel ? { burstModel: options.burstModel } : {}),
    createdAt,
  };
  // A burst's marker first: a crash before the record leaves a marker readers drop, never a hidden instance.
  if (isBurst(item)) await markLiveBurst(ctx, instanceId, createdAt);
  await markLive(ctx, item);
  await ctx.store.put(item, { notExists: true });
  let novitaId: string;
  try {
    ({ id: novitaId } = await cloud.createInstance({
      name: input.name,
      productId: product.id,
      gpuNum: input.gpuNum,
      rootfsSize: input.rootfsSize,
      imageUrl: template.imageUrl,
      ...(template.imageAuth ? { imageAuth: template.imageAuth } : {}),
      ...(template.ports ? { ports: template.ports } : {}),
      ...(join
        ? {
            envs: [
              ...(template.envs ?? []),
              ...joinEnvs({
                url: joinUrl!,
                nodeName: instanceId,
                token: join.token,
                ...(input.cluster ? { cluster: input.cluster } : {}),
                ...(input.labels ? { labels: input.labels } : {}),
              }),
            ],
            command: startupCommand(),
          }
        : {
            ...(template.envs ? { envs: template.envs } : {}),
            ...(template.command ? { command: template.command } : {}),
          }),
      clusterId: input.region,
      kind: 'gpu',
      billingMode,
    }));
  } catch (error) {
    // Novita refused: nothing was created, so nothing stays.
    const removed = await ctx.store.delete(item.pk, item.sk, { absent: ['novitaInstanceId'] }).then(
      () => true,
      (e: unknown) => {
        ctx.logger.warn('could not remove a refused instance record; the poller fails it', {
          instanceId,
          error: e as Error,
        });
        return false;
      },
    );
    // Left behind on a failure: readers drop a marker whose record never came.
    if (removed)
      await Promise.all([unmarkLive(ctx, instanceId), ...(isBurst(item) ? [unmarkLiveBurst(ctx, instanceId)] : [])]).catch(
        (e: unknown) => ctx.logger.warn('could not remove a refused instance marker', { instanceId, error: e as Error }),
      );
    throw asHttp(error);
  }
  await syncLive(ctx, await ctx.store.update<NovitaInstanceItem>(item.pk, item.sk, { set: { novitaInstanceId: novitaId } }));
  await emit(ctx, { type: POLL_EVENT, instanceId }, ctx.config.NOVITA_POLL_SECONDS);
  ctx.logger.info('novita instance created', { instanceId, novitaInstanceId: novitaId, productId: product.id });
  return {
    instanceId,
    status: 'creating' as const,
    message: 'Instance creation initiated',
    estimatedReadyTime: new Date(ctx.now() + TYPICAL_STARTUP_MS).toISOString(),
  };
}

export async function requireInstance(ctx: AppContext, instanceId: string): Promise<NovitaInstanceItem> {
  const item = await getInstanceItem(ctx, instanceId);
  if (!item) throw new NotFoundError(`Instance ${instanceId} not found`, 'INSTANCE_NOT_FOUND', { instanceId });
  return item;
}

/** gsi1/gsi2 sort keys of instances: `<created ISO>#<instance id>`. */
const LIST_KEY = /^\d{4}-\d{2}-\d{2}T[\d:.]+Z#[\w-]{1,100}$/;

export class InvalidCursorError extends Error {
  constructor() {
    super('Invalid pagination cursor');
    this.name = 'InvalidCursorError';
  }
}

const encodeCursor = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A cursor this listing wrote, for the same status filter: `{s, k, n}` (filter, last key, items before). */
function decodeCursor(cursor: string, status: string): { k: string; n: number } {
  let c: unknown;
  try {
    if (cursor.length > 1024 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw new InvalidCursorError();
    c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError();
  }
  const { s, k, n } = (c ?? {}) as Record<string, unknown>;
  if (s !== status || typeof k !== 'string' || !LIST_KEY.test(k) || !Number.isSafeInteger(n) || (n as number) < 0)
    throw new InvalidCursorError();
  return { k, n: n as number };
}

/**
 * Newest first, a page at a time: a Limit query of the index (gsi1, or gsi2 by status) from the
 * cursor's sort key, or after the `offset` items it skips without one. `total` is counted
 * (live-index.ts), not read. Reads grow with the page, never with the instances managed.
 */
export async function listInstances(
  ctx: AppContext,
  q: { status?: InstanceStatus; limit: number; offset: number; cursor?: string },
): Promise<{ items: NovitaInstanceItem[]; total: number; offset: number; cursor?: string }> {
  const from = q.cursor !== undefined ? decodeCursor(q.cursor, q.status ?? '') : undefined;
  const pk = q.status ? novitaKeys.instanceStatusPk(q.status) : novitaKeys.instancesPk;
  const index = q.status ? 'gsi2' : 'gsi1';
  const sortKey = (i: NovitaInstanceItem) => (q.status ? i.gsi2sk : i.gsi1sk) as string;
  const skip = from ? 0 : q.offset;
  const want = skip + q.limit;
  const read = async () => {
    const items: NovitaInstanceItem[] = [];
    let cursor: string | undefined;
    do {
      // Inclusive bound: the cursor's own item comes back first and is dropped; one more says a page follows.
      const page = await ctx.store.query<NovitaInstanceItem>(pk, {
        index,
        ascending: false,
        ...(from ? { between: ['0', from.k] as [string, string] } : {}),
        limit: Math.min(1000, want + 1 - items.length + (from && !cursor ? 1 : 0)),
        ...(cursor ? { cursor } : {}),
      });
      items.push(...page.items.filter((i) => sortKey(i) !== from?.k));
      cursor = page.cursor;
    } while (cursor && items.length <= want);
    return items;
  };
  const [items, counts] = await Promise.all([read(), instanceCounts(ctx)]);
  const pageItems = items.slice(skip, want);
  const offset = from ? from.n : q.offset;
  return {
    items: pageItems,
    total: q.status ? counts[q.status] : counts.total,
    offset,
    ...(items.length > want && pageItems.length
      ? { cursor: encodeCursor({ s: q.status ?? '', k: sortKey(pageItems.at(-1)!), n: offset + pageItems.length }) }
      : {}),
  };
}
