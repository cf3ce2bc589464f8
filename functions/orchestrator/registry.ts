import * as z from 'zod';
import type { AppContext } from '../core/context.js';
import { NotFoundError } from '../core/errors.js';
import { fleetKeys, keys } from '../core/keys.js';
import { getNode, isOnline, type NodeItem } from '../nodes/nodes.js';
import { type StoreItem, conditional, updateIf } from '../ports/store.js';
import { getInstance, type InstanceItem } from './model.js';
import { decodeCursor, encodeCursor, invalidCursor } from './instance-pages.js';
import { cpuCap, memCap, port } from './resources.js';

/** EndpointIn. */
export const endpointIn = z.object({
  id: z.string().min(1).max(256),
  image_id: z.string().min(1).max(512),
  host: z.string().min(1).max(255),
  port,
  caps: z.object({ cpu: cpuCap.optional(), mem: memCap.optional() }).optional(),
});
export type EndpointIn = z.infer<typeof endpointIn>;

export const endpointStatus = z.enum(['UP', 'DOWN']);
export type EndpointStatus = z.infer<typeof endpointStatus>;

export const endpointOut = endpointIn.extend({ status: endpointStatus, last_heartbeat: z.string() });

export interface EndpointFields {
  id: string;
  image_id: string;
  host: string;
  port: number;
  caps?: { cpu?: string; mem?: string };
  status: EndpointStatus;
  last_heartbeat: string;
  /** `auto`: a container's published port; its liveness follows the container and its node. */
  source: 'manual' | 'auto';
  nodeId?: string;
  instanceId?: string;
}
export type EndpointItem = StoreItem & EndpointFields;

function item(e: EndpointFields): EndpointItem {
  return { ...keys.endpoint(e.id), ...keys.endpointsIndex(e.image_id, e.id), ...e };
}

/** The documented body. Container endpoints are DOWN on read as soon as their node's heartbeat is stale. */
export function endpointView(
  e: EndpointItem,
  ctx: AppContext,
  node?: NodeItem,
  instance?: InstanceItem | null,
) {
  let status = e.status;
  let lastHeartbeat = e.last_heartbeat;
  if (e.source === 'auto') {
    if (node?.lastHeartbeat && node.lastHeartbeat > lastHeartbeat) lastHeartbeat = node.lastHeartbeat;
    // `null`: the container's record is gone.
    if (!node || !isOnline(node, ctx) || instance === null || (instance && instance.status !== 'running'))
      status = 'DOWN';
  }
  return {
    id: e.id,
    image_id: e.image_id,
    host: e.host,
    port: e.port,
    ...(e.caps ? { caps: e.caps } : {}),
    status,
    last_heartbeat: lastHeartbeat,
  };
}

async function viewOf(
  ctx: AppContext,
  e: EndpointItem,
  nodeOf: (nodeId: string) => Promise<NodeItem | undefined> = (id) => getNode(ctx, id),
) {
  if (e.source !== 'auto') return endpointView(e, ctx);
  const [node, instance] = await Promise.all([
    e.nodeId ? nodeOf(e.nodeId) : undefined,
    e.instanceId ? getInstance(ctx, e.instanceId) : undefined,
  ]);
  return endpointView(e, ctx, node, e.instanceId ? (instance ?? null) : undefined);
}

/** Register or update: a re-POST is the endpoint's heartbeat (UP, now). */
export async function upsertEndpoint(ctx: AppContext, input: EndpointIn) {
  const e = item({
    ...input,
    status: 'UP',
    last_heartbeat: new Date(ctx.now()).toISOString(),
    source: 'manual',
  });
  await ctx.store.put(e);
  return endpointView(e, ctx);
}

export async function getEndpoint(ctx: AppContext, id: string): Promise<EndpointItem | undefined> {
  const k = keys.endpoint(id);
  return ctx.store.get<EndpointItem>(k.pk, k.sk);
}

export async function deleteEndpoint(ctx: AppContext, id: string): Promise<void> {
  const k = keys.endpoint(id);
  const old = await ctx.store.delete(k.pk, k.sk);
  if (!old) throw new NotFoundError(`Endpoint ${id} not found`);
}

export async function setEndpointStatus(ctx: AppContext, id: string, status: EndpointStatus) {
  const k = keys.endpoint(id);
  const e = await updateIf<EndpointItem>(ctx.store, k.pk, k.sk, {
    set: { status, last_heartbeat: new Date(ctx.now()).toISOString() },
  });
  if (!e) throw new NotFoundError(`Endpoint ${id} not found`);
  return viewOf(ctx, e);
}

/**
 * `limit` endpoints after `cursor` (of one image with `imageId`), by image and id: a Limit query of
 * the endpoint index and each listed auto endpoint's node and copy (a node read once a page), never
 * every endpoint (a global service has one on each eligible node). `cursor` is absent on the last
 * page; a cursor of another image's listing is a 400.
 */
export async function listEndpoints(
  ctx: AppContext,
  query: { image_id?: string | undefined; limit: number; cursor?: string | undefined },
) {
  const { image_id: imageId, limit } = query;
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  if (after && imageId !== undefined && after.i !== imageId) throw invalidCursor();
  const low = after ? `${after.i}#${after.a}` : imageId !== undefined ? `${imageId}#` : undefined;
  const high = imageId !== undefined ? `${imageId}#\uffff` : '\uffff';
  const found: EndpointItem[] = [];
  let from: string | undefined;
  do {
    const page = await ctx.store.query<EndpointItem>(fleetKeys.endpointsPk, {
      index: 'gsi1',
      ascending: true,
      // No empty key value: DynamoDB refuses one, so the whole index has no range.
      ...(low !== undefined ? { between: [low, high] as [string, string] } : {}),
      limit: limit + 1 - found.length + (after ? 1 : 0),
      ...(from !== undefined ? { cursor: from } : {}),
    });
    for (const e of page.items) {
      const resumed = after && e.image_id === after.i && e.id === after.a;
      if (!resumed && (imageId === undefined || e.image_id === imageId) && found.length <= limit)
        found.push(e);
    }
    from = page.cursor;
  } while (from !== undefined && found.length <= limit);
  const listed = found.slice(0, limit);
  const last = listed.at(-1);
  const nodes = new Map<string, Promise<NodeItem | undefined>>();
  const nodeOf = (id: string) => {
    let got = nodes.get(id);
    if (!got) nodes.set(id, (got = getNode(ctx, id)));
    return got;
  };
  return {
    endpoints: await Promise.all(listed.map((e) => viewOf(ctx, e, nodeOf))),
    next_cursor: found.length > limit && last ? encodeCursor({ i: last.image_id, a: last.id }) : null,
  };
}

const autoId = (instanceId: string, containerPort: number) => `${instanceId}-${containerPort}`;

/** A running container's published ports become endpoints (UP), at the node's first address. */
export async function registerInstanceEndpoints(
  ctx: AppContext,
  inst: InstanceItem,
  node: NodeItem,
): Promise<void> {
  const host = node.addresses[0] ?? node.hostname;
  const now = new Date(ctx.now()).toISOString();
  const mem = inst.resources.memory_limit;
  const cpu = inst.resources.cpu_limit;
  for (const binding of inst.ports) {
    if (!binding.hostPort) continue;
    await ctx.store.put(
      item({
        id: autoId(inst.instanceId, binding.containerPort),
        image_id: inst.imageId,
        host,
        port: binding.hostPort,
        ...(cpu || mem ? { caps: { ...(cpu ? { cpu } : {}), ...(mem ? { mem } : {}) } } : {}),
        status: 'UP',
        last_heartbeat: now,
        source: 'auto',
        nodeId: inst.nodeId,
        instanceId: inst.instanceId,
      }),
    );
  }
}

async function forInstanceEndpoints(
  ctx: AppContext,
  inst: InstanceItem,
  fn: (k: { pk: string; sk: string }) => Promise<unknown>,
) {
  const ports = new Set([...inst.ports.map((p) => p.containerPort), ...inst.containerPorts]);
  for (const p of ports) {
    const k = keys.endpoint(autoId(inst.instanceId, p));
    await conditional(fn(k));
  }
}

/** The container died or its node went away. */
export async function instanceEndpointsDown(ctx: AppContext, inst: InstanceItem): Promise<void> {
  await forInstanceEndpoints(ctx, inst, (k) =>
    ctx.store.update(k.pk, k.sk, { set: { status: 'DOWN' } }, { exists: true, equals: { source: 'auto' } }),
  );
}

/** The container is gone for good. */
export async function deleteInstanceEndpoints(ctx: AppContext, inst: InstanceItem): Promise<void> {
  await forInstanceEndpoints(ctx, inst, (k) => ctx.store.delete(k.pk, k.sk, { equals: { source: 'auto' } }));
}
