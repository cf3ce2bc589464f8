import * as z from 'zod';
import type { AppContext } from '../core/context.js';
import { NotFoundError } from '../core/errors.js';
import { fleetKeys, keys } from '../core/keys.js';
import { getNode, isOnline, type NodeItem } from '../nodes/nodes.js';
import { queryAll, type StoreItem, conditional, updateIf } from '../ports/store.js';
import { getInstance, type InstanceItem } from './model.js';
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

async function viewOf(ctx: AppContext, e: EndpointItem) {
  if (e.source !== 'auto') return endpointView(e, ctx);
  const [node, instance] = await Promise.all([
    e.nodeId ? getNode(ctx, e.nodeId) : undefined,
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

export async function listEndpoints(ctx: AppContext, imageId?: string) {
  const items = await queryAll<EndpointItem>(ctx.store, fleetKeys.endpointsPk, {
    index: 'gsi1',
    ...(imageId ? { prefix: `${imageId}#` } : {}),
  });
  return Promise.all(items.filter((e) => !imageId || e.image_id === imageId).map((e) => viewOf(ctx, e)));
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
