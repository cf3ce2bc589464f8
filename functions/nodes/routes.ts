import * as z from 'zod';
import type { AppContext } from '../core/context.js';
import { NotFoundError } from '../core/errors.js';
import { emit } from '../core/events.js';
import { route, type AnyRoute, type RouteSpec } from '../core/route.js';
import { clusterMembership } from '../commander/cluster-membership.js';
import { drainNode, retireNode } from './drain.js';
import { ensureIndexed, firstJetson } from './address-index.js';
import {
  isCordoned,
  isDraining,
  isOnline,
  nextCursorField,
  nodeLabels,
  nodePage,
  nodePageQuery,
  resolveNode,
  setCordon,
  type NodeItem,
} from './nodes.js';

const r1 = (n: number) => Math.round(n * 10) / 10;
const avg = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

function tegra(node: NodeItem): { gpuLoad?: number; temps: number[] } {
  const t = node.metrics?.tegrastats as
    { gpuLoadPercent?: unknown; temperatures?: Record<string, unknown> } | null | undefined;
  const temps = Object.values(t?.temperatures ?? {}).filter((v): v is number => typeof v === 'number');
  return { ...(typeof t?.gpuLoadPercent === 'number' ? { gpuLoad: t.gpuLoadPercent } : {}), temps };
}

/** The Fleet Commander node shape: percentages from the last heartbeat, status computed now. */
/** `clusters`: membership through `/api/clusters/` (clusterMembership), which wins over the agent's own setting. */
export function nodeView(node: NodeItem, ctx: AppContext, now = ctx.now(), clusters?: Map<string, string>) {
  const m = node.metrics;
  const gpus = m?.gpus ?? [];
  const t = tegra(node);
  const gpuUtil = gpus.flatMap((g) => ((g.utilizationGpu ?? null) === null ? [] : [g.utilizationGpu!]));
  const gpuMem = gpus.flatMap((g) =>
    g.memoryTotalMiB && g.memoryUsedMiB !== null ? [(g.memoryUsedMiB / g.memoryTotalMiB) * 100] : [],
  );
  const temps = [...gpus.flatMap((g) => (g.temperatureC === null ? [] : [g.temperatureC])), ...t.temps];
  const memTotal = m?.memoryTotalMb ?? node.memoryMb;
  const diskTotal = m?.diskTotalGb ?? node.diskGb;
  return {
    id: node.nodeId,
    name: node.nodeName,
    hostname: node.hostname,
    ip: node.addresses[0] ?? null,
    status: isOnline(node, ctx, now) ? ('online' as const) : ('offline' as const),
    cluster: clusters?.get(node.nodeId) ?? node.cluster ?? null,
    cpu: r1(m?.cpuPercent ?? 0),
    memory: memTotal && m?.memoryUsedMb != null ? r1((m.memoryUsedMb / memTotal) * 100) : 0,
    gpu: r1(gpuUtil.length ? avg(gpuUtil) : (t.gpuLoad ?? 0)),
    gpu_memory: r1(avg(gpuMem)),
    temperature: temps.length ? r1(Math.max(...temps)) : null,
    disk: diskTotal && m?.diskUsedGb != null ? r1((m.diskUsedGb / diskTotal) * 100) : 0,
    last_seen: node.lastHeartbeat ?? null,
    cordoned: isCordoned(node),
    draining: isDraining(node),
    policy: policyView(node),
    driver: node.driver ?? 'container',
    cloud_instance: node.cloud
      ? {
          provider: node.cloud.provider,
          id: node.cloud.instanceId,
          price_per_hour: node.cloud.pricePerHour,
          spot: node.cloud.spot,
          product: node.cloud.productName,
          region: node.cloud.region,
        }
      : null,
  };
}

/** The node's own policy as its agent reported it; null for an agent that reports none. */
function policyView(node: NodeItem) {
  const p = node.policy;
  if (!p) return null;
  return {
    allow_host_paths: p.allowHostPaths,
    allow_engine_socket: p.allowEngineSocket,
    allow_privileged: p.allowPrivileged,
    allow_host_network: p.allowHostNetwork,
    allow_host_pid: p.allowHostPid,
    allow_capabilities: p.allowCapabilities,
    allow_exec: p.allowExec ?? null,
  };
}

function jetpackView(node: NodeItem) {
  const j = node.jetson;
  if (!j) throw new NotFoundError(`Node ${node.nodeName} is not a Jetson`);
  return {
    jetpack_version: j.jetpack,
    l4t_version: j.l4t,
    cuda_version: j.cuda,
    cudnn_version: j.cudnn,
    node_id: node.nodeId,
  };
}

const nodeOut = z.object({
  id: z.string(),
  name: z.string(),
  hostname: z.string(),
  ip: z.string().nullable(),
  status: z.enum(['online', 'offline']),
  cluster: z.string().nullable(),
  cpu: z.number(),
  memory: z.number(),
  gpu: z.number(),
  gpu_memory: z.number(),
  temperature: z.number().nullable(),
  disk: z.number(),
  last_seen: z.string().nullable(),
  cordoned: z.boolean().describe('No new placements (services, tasks, models, training runs) on this node'),
  draining: z.boolean().describe('Cordoned by a drain: what runs here keeps being moved elsewhere'),
  policy: z
    .object({
      allow_host_paths: z.array(z.string()),
      allow_engine_socket: z.boolean(),
      allow_privileged: z.boolean(),
      allow_host_network: z.boolean(),
      allow_host_pid: z.boolean(),
      allow_capabilities: z.array(z.string()),
      allow_exec: z
        .boolean()
        .nullable()
        .describe(
          'Host commands (POST /api/ssh/exec-node) run here: the agent was started with --allow-exec. Null: its agent does not say',
        ),
    })
    .nullable()
    .describe(
      "What the node's owner lets containers do there (set on the node; the control plane places only what it allows). Null: the agent reports none and judges each start itself",
    ),
});
const nodeDetailOut = nodeOut.extend({
  labels: z
    .record(z.string(), z.string())
    .describe('The agent’s labels with those set by POST /api/swarm/nodes/{node_id}/labels on top'),
});
const jetpackOut = z.object({
  jetpack_version: z.string().nullable(),
  l4t_version: z.string().nullable(),
  cuda_version: z.string().nullable(),
  cudnn_version: z.string().nullable(),
  node_id: z.string(),
});

const nodeParams = z.object({ node_id: z.string().min(1).max(200).describe('Node id or node name') });
const unknownNode = (id: string) => new NotFoundError(`Node ${id} not found`);
async function mustNode(ctx: AppContext, idOrName: string): Promise<NodeItem> {
  const node = await resolveNode(ctx, idOrName);
  if (!node) throw unknownNode(idOrName);
  return node;
}

const movedOut = z.object({
  kind: z.enum(['service', 'task', 'training_run']),
  id: z.string().describe('Container id (service copy), task id or training job id'),
  image: z.string().optional(),
  to_node: z.string().nullable().describe('Where the replacement went; null while it waits in a queue'),
  replacement: z.string().nullable().describe('The replacement container id, or the next training run'),
});
const notMovedOut = z.object({
  kind: z.enum(['service', 'task', 'training_run']),
  id: z.string(),
  reason: z.string(),
});
const drainFields = {
  node_id: z.string(),
  name: z.string(),
  moved: z.array(movedOut),
  not_moved: z.array(notMovedOut),
};
const drainOut = z
  .object(drainFields)
  .describe(
    'Service copies get a replacement on another node and are removed here once it is placed; inference tasks go back to the queue and their run here is cancelled; training runs end their attempt here and the retry runs elsewhere (it counts as an attempt). What has nowhere to go stays, listed in `not_moved` with the reason, and moves on a later reconcile while the node stays draining.',
  );
const retireOut = z
  .object({
    ...drainFields,
    stopped: z.array(z.string()).describe('Containers removed from the host (stop=true)'),
    left_on_host: z.array(z.string()).describe('Containers left running on the host, no longer managed'),
  })
  .describe(
    'Its work moves as by a drain. Its containers stay on the host (the control plane forgets them) unless `stop=true`, which removes them first and needs the node online. The node can join again with a new join token.',
  );

const common: Pick<RouteSpec, 'tags' | 'errorStyle' | 'scope'> = {
  tags: ['Nodes'],
  errorStyle: 'fastapi',
  scope: 'user',
};

/** Fleet Commander's Nodes API over the registered agents. */
export function fleetNodeRoutes(): AnyRoute[] {
  return [
    route({
      ...common,
      method: 'GET',
      path: '/api/nodes/',
      summary: 'List all nodes, by name, a page at a time (1,000 by default: a small fleet in one page)',
      query: z.object(nodePageQuery),
      // Labels too (beyond the document): the console filters and tags the page it shows by them.
      response: z.object({ nodes: z.array(nodeDetailOut), next_cursor: nextCursorField }),
      responses: { 400: 'Invalid pagination cursor' },
      handler: async (req, ctx) => {
        const now = ctx.now();
        const [page, clusters] = await Promise.all([nodePage(ctx, req.query), clusterMembership(ctx)]);
        return {
          nodes: page.nodes.map((n) => ({ ...nodeView(n, ctx, now, clusters), labels: nodeLabels(n) })),
          next_cursor: page.cursor ?? null,
        };
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/nodes/jetpack',
      summary: 'JetPack versions of the first online Jetson node (by name)',
      response: jetpackOut,
      responses: { 404: 'No Jetson node registered' },
      handler: async (_req, ctx) => {
        await ensureIndexed(ctx);
        const pick = await firstJetson(ctx);
        if (!pick) throw new NotFoundError('No Jetson node registered');
        return jetpackView(pick);
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/nodes/{node_id}',
      summary: 'One node (id or name): the listing’s fields and its labels, from its own records',
      params: nodeParams,
      response: nodeDetailOut,
      responses: { 404: 'Unknown node' },
      handler: async (req, ctx) => {
        const [node, clusters] = await Promise.all([
          mustNode(ctx, req.params.node_id),
          clusterMembership(ctx),
        ]);
        return { ...nodeView(node, ctx, ctx.now(), clusters), labels: nodeLabels(node) };
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/nodes/{node_id}/cordon',
      summary: 'Cordon a node (id or name): nothing new is placed on it; what runs there stays',
      role: 'operator',
      params: nodeParams,
      response: nodeOut,
      responses: { 404: 'Unknown node' },
      handler: async (req, ctx) => {
        const node = await mustNode(ctx, req.params.node_id);
        // A drained node stays draining: cordon does not undo the move.
        const updated = await setCordon(ctx, node.nodeId, { cordoned: true, draining: isDraining(node) });
        if (!updated) throw unknownNode(req.params.node_id);
        return nodeView(updated, ctx);
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/nodes/{node_id}/uncordon',
      summary: 'Uncordon a node (id or name): it takes new placements again, and a drain stops',
      role: 'operator',
      params: nodeParams,
      response: nodeOut,
      responses: { 404: 'Unknown node' },
      handler: async (req, ctx) => {
        const node = await mustNode(ctx, req.params.node_id);
        const updated = await setCordon(ctx, node.nodeId, { cordoned: false });
        if (!updated) throw unknownNode(req.params.node_id);
        await emit(ctx, { type: 'reconcile' });
        await emit(ctx, { type: 'placement.run', reason: 'node uncordoned', requestedAt: Date.now() });
        return nodeView(updated, ctx);
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/nodes/{node_id}/drain',
      summary:
        'Drain a node (id or name): cordon it, then move its service copies, inference tasks and training runs elsewhere',
      role: 'operator',
      params: nodeParams,
      response: drainOut,
      responses: { 404: 'Unknown node', 409: 'The node was removed meanwhile' },
      handler: async (req, ctx) => drainNode(ctx, await mustNode(ctx, req.params.node_id)),
    }),
    route({
      ...common,
      method: 'DELETE',
      path: '/api/nodes/{node_id}',
      summary:
        'Retire a node (id or name): revoke its credential, remove its queue and records, clear its problems',
      role: 'operator',
      params: nodeParams,
      query: z.object({
        stop: z
          .enum(['true', 'false'])
          .default('false')
          .describe('Remove its containers from the host before retiring it (the node must be online)'),
      }),
      response: retireOut,
      responses: { 404: 'Unknown node', 409: 'stop=true on an offline node' },
      handler: async (req, ctx) =>
        retireNode(ctx, await mustNode(ctx, req.params.node_id), { stop: req.query.stop === 'true' }),
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/nodes/{node_id}/jetpack',
      summary: 'JetPack versions of one node (id or name)',
      params: z.object({ node_id: z.string().min(1) }),
      response: jetpackOut,
      responses: { 404: 'Unknown node, or not a Jetson' },
      handler: async (req, ctx) => {
        const node = await resolveNode(ctx, req.params.node_id);
        if (!node) throw new NotFoundError(`Node ${req.params.node_id} not found`);
        return jetpackView(node);
      },
    }),
  ];
}
