import { randomUUID } from 'node:crypto';
import * as z from 'zod';
import type { AppContext } from '../core/context.js';
import { ConflictError, NotFoundError, ValidationError } from '../core/errors.js';
import { fleetClusterKeys } from '../core/keys.js';
import { claimName, releaseName } from '../core/name-guard.js';
import { boolQuery } from '../core/query.js';
import { route, type AnyRoute, type RouteSpec } from '../core/route.js';
import { ConditionFailedError, queryAll, type StoreItem } from '../ports/store.js';
import { getNode, isOnline, resolveNode, type NodeItem } from '../nodes/nodes.js';
import { nodeView } from '../nodes/routes.js';

/**
 * Fleet Commander's Clusters API: named groups of nodes with a manager. A cluster is one item
 * (its members a list in it), so every change is one conditional write on its version; the name
 * is unique through a guard item written first.
 */
export interface ClusterItem extends StoreItem {
  clusterId: string;
  name: string;
  clusterType: string;
  nodeIds: string[];
  managerNodeId: string | null;
  createdAt: string;
}

const CLUSTER_TYPES = ['swarm', 'standalone', 'kubernetes'] as const;

export const clusterCreateBody = z
  .object({
    name: z
      .string()
      .min(1)
      .max(64)
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9_.-]*$/,
        'letters, digits, ".", "_" and "-", starting with a letter or digit',
      ),
    cluster_type: z.enum(CLUSTER_TYPES).default('swarm'),
    node_ids: z.array(z.string().min(1)).max(256).default([]),
    manager_node_id: z.string().min(1).nullable().optional(),
  })
  .strict();

const clusterOut = z.object({
  id: z.string(),
  name: z.string(),
  cluster_type: z.string(),
  node_ids: z.array(z.string()),
  manager_node_id: z.string().nullable(),
  status: z.enum(['active', 'degraded', 'inactive']),
  created_at: z.string(),
});
type ClusterOut = z.output<typeof clusterOut>;

const statusOut = z.object({
  cluster: clusterOut,
  nodes: z.array(
    z.object({
      node_id: z.string(),
      status: z.enum(['online', 'offline']),
      cpu: z.number(),
      memory: z.number(),
      gpu: z.number(),
      is_manager: z.boolean(),
    }),
  ),
  online_count: z.number().int(),
  total_count: z.number().int(),
});

/** Members are shown by node name, as the Fleet Commander API names nodes (`agx0`). */
function view(c: ClusterItem, nodes: Map<string, NodeItem>, ctx: AppContext, now: number): ClusterOut {
  const name = (id: string) => nodes.get(id)?.nodeName ?? id;
  const online = c.nodeIds.filter((id) => {
    const n = nodes.get(id);
    return n !== undefined && isOnline(n, ctx, now);
  }).length;
  return {
    id: c.clusterId,
    name: c.name,
    cluster_type: c.clusterType,
    node_ids: c.nodeIds.map(name),
    manager_node_id: c.managerNodeId ? name(c.managerNodeId) : null,
    // active: every member online; degraded: some; inactive: none (or no members).
    status: online === 0 ? 'inactive' : online === c.nodeIds.length ? 'active' : 'degraded',
    created_at: c.createdAt,
  };
}

/** The clusters' members, each read by id: what a view reads grows with its members, not the fleet. */
async function nodesById(ctx: AppContext, clusters: ClusterItem[]): Promise<Map<string, NodeItem>> {
  const ids = [...new Set(clusters.flatMap((c) => c.nodeIds))];
  const nodes = await Promise.all(ids.map((id) => getNode(ctx, id)));
  return new Map(nodes.filter((n): n is NodeItem => !!n).map((n) => [n.nodeId, n]));
}

/** Node ids or names to stored node ids; an unknown one is a 422 naming its position. */
async function resolveMembers(ctx: AppContext, refs: string[], field: string): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, ref] of refs.entries()) {
    const node = await resolveNode(ctx, ref);
    if (!node)
      throw new ValidationError([
        { loc: ['body', field, i], msg: `Unknown node ${ref}`, type: 'value_error' },
      ]);
    if (!ids.includes(node.nodeId)) ids.push(node.nodeId);
  }
  return ids;
}

async function getCluster(ctx: AppContext, clusterId: string): Promise<ClusterItem> {
  const k = fleetClusterKeys.cluster(clusterId);
  const found = await ctx.store.get<ClusterItem>(k.pk, k.sk);
  if (!found) throw new NotFoundError(`Cluster ${clusterId} not found`);
  return found;
}

export async function createCluster(
  ctx: AppContext,
  body: z.output<typeof clusterCreateBody>,
): Promise<ClusterItem> {
  const nodeIds = await resolveMembers(ctx, body.node_ids, 'node_ids');
  let managerNodeId: string | null = nodeIds[0] ?? null;
  if (body.manager_node_id) {
    const [manager] = await resolveMembers(ctx, [body.manager_node_id], 'manager_node_id');
    if (!nodeIds.includes(manager!))
      throw new ValidationError([
        { loc: ['body', 'manager_node_id'], msg: 'The manager must be one of node_ids', type: 'value_error' },
      ]);
    managerNodeId = manager!;
  }
  const clusterId = randomUUID();
  const claim = await claimName<StoreItem & { clusterId: string }>(ctx, {
    key: fleetClusterKeys.clusterName(body.name),
    owner: { clusterId },
    alive: async (held) =>
      (await ctx.store.get(fleetClusterKeys.cluster(held.clusterId).pk, 'META')) !== undefined,
    conflict: () => new ConflictError(`A cluster named ${body.name} already exists`),
  });
  const item: ClusterItem = {
    ...fleetClusterKeys.cluster(clusterId),
    ...fleetClusterKeys.clustersIndex(body.name),
    clusterId,
    name: body.name,
    clusterType: body.cluster_type,
    nodeIds,
    managerNodeId,
    createdAt: new Date(ctx.now()).toISOString(),
    version: 1,
  };
  try {
    await ctx.store.put(item, { notExists: true });
  } catch (error) {
    await claim.release();
    throw error;
  }
  if (!(await claim.bind())) {
    await ctx.store.delete(item.pk, item.sk);
    throw new ConflictError(`A cluster named ${body.name} already exists`);
  }
  return item;
}

/** Applies `change` to the members with the cluster's version as the condition; retried when it lost a race. */
async function changeMembers(
  ctx: AppContext,
  clusterId: string,
  change: (c: ClusterItem) => { nodeIds: string[]; managerNodeId: string | null },
): Promise<ClusterItem> {
  for (let attempt = 0; ; attempt++) {
    const current = await getCluster(ctx, clusterId);
    const next = change(current);
    try {
      return await ctx.store.update<ClusterItem>(
        current.pk,
        current.sk,
        { set: next },
        { version: current.version ?? 0 },
      );
    } catch (error) {
      if (!(error instanceof ConditionFailedError) || attempt >= 4) throw error;
    }
  }
}

async function deleteCluster(ctx: AppContext, clusterId: string): Promise<ClusterItem> {
  const c = await getCluster(ctx, clusterId);
  // The cluster first: a crash before the guard goes leaves a guard the next create takes over.
  await ctx.store.delete(c.pk, c.sk);
  await releaseName(ctx, fleetClusterKeys.clusterName(c.name), { clusterId });
  return c;
}

const common: Pick<RouteSpec, 'tags' | 'errorStyle' | 'scope'> = {
  tags: ['Clusters'],
  errorStyle: 'fastapi',
  scope: 'user',
};
const clusterParams = z.object({ cluster_id: z.string().min(1) });
const memberParams = z.object({ cluster_id: z.string().min(1), node_id: z.string().min(1) });

export function fleetClusterRoutes(): AnyRoute[] {
  return [
    route({
      ...common,
      method: 'GET',
      path: '/api/clusters/',
      summary: 'List clusters',
      response: z.array(clusterOut),
      handler: async (_req, ctx) => {
        const now = ctx.now();
        const clusters = await queryAll<ClusterItem>(ctx.store, fleetClusterKeys.clustersPk, {
          index: 'gsi1',
        });
        const nodes = await nodesById(ctx, clusters);
        return clusters.map((c) => view(c, nodes, ctx, now));
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/clusters/',
      summary: 'Create a cluster of nodes (ids or names); the manager defaults to the first node',
      body: clusterCreateBody,
      response: clusterOut,
      successStatus: 201,
      responses: { 409: 'A cluster of that name exists' },
      handler: async (req, ctx) => {
        const created = await createCluster(ctx, req.body);
        return view(created, await nodesById(ctx, [created]), ctx, ctx.now());
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/clusters/{cluster_id}/status',
      summary: 'A cluster with the live state of each member',
      params: clusterParams,
      response: statusOut,
      responses: { 404: 'Unknown cluster' },
      handler: async (req, ctx) => {
        const now = ctx.now();
        const c = await getCluster(ctx, req.params.cluster_id);
        const nodes = await nodesById(ctx, [c]);
        const members = c.nodeIds.map((id) => {
          const n = nodes.get(id);
          const v = n ? nodeView(n, ctx, now) : undefined;
          return {
            node_id: n?.nodeName ?? id,
            status: v?.status ?? ('offline' as const),
            cpu: v?.cpu ?? 0,
            memory: v?.memory ?? 0,
            gpu: v?.gpu ?? 0,
            is_manager: id === c.managerNodeId,
          };
        });
        return {
          cluster: view(c, nodes, ctx, now),
          nodes: members,
          online_count: members.filter((m) => m.status === 'online').length,
          total_count: members.length,
        };
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/clusters/{cluster_id}/nodes/{node_id}',
      summary: 'Add a node to a cluster (idempotent)',
      params: memberParams,
      response: clusterOut,
      responses: { 404: 'Unknown cluster or node' },
      handler: async (req, ctx) => {
        const node = await resolveNode(ctx, req.params.node_id);
        if (!node) throw new NotFoundError(`Node ${req.params.node_id} not found`);
        const updated = await changeMembers(ctx, req.params.cluster_id, (c) => ({
          nodeIds: c.nodeIds.includes(node.nodeId) ? c.nodeIds : [...c.nodeIds, node.nodeId],
          managerNodeId: c.managerNodeId ?? node.nodeId,
        }));
        return view(updated, await nodesById(ctx, [updated]), ctx, ctx.now());
      },
    }),
    route({
      ...common,
      method: 'DELETE',
      path: '/api/clusters/{cluster_id}/nodes/{node_id}',
      summary: 'Remove a node from a cluster; a removed manager hands over to the next member',
      params: memberParams,
      response: clusterOut,
      responses: { 404: 'Unknown cluster, or the node is not a member' },
      handler: async (req, ctx) => {
        const node = await resolveNode(ctx, req.params.node_id);
        const ref = node?.nodeId ?? req.params.node_id;
        const updated = await changeMembers(ctx, req.params.cluster_id, (c) => {
          if (!c.nodeIds.includes(ref))
            throw new NotFoundError(`Node ${req.params.node_id} is not a member of cluster ${c.name}`);
          const nodeIds = c.nodeIds.filter((id) => id !== ref);
          return { nodeIds, managerNodeId: c.managerNodeId === ref ? (nodeIds[0] ?? null) : c.managerNodeId };
        });
        return view(updated, await nodesById(ctx, [updated]), ctx, ctx.now());
      },
    }),
    route({
      ...common,
      method: 'DELETE',
      path: '/api/clusters/{cluster_id}',
      summary: 'Delete a cluster (its nodes stay in the fleet)',
      params: clusterParams,
      query: z.object({ cleanup_swarm: boolQuery.default(false) }),
      response: z.object({
        status: z.literal('deleted'),
        id: z.string(),
        name: z.string(),
        swarm_cleanup: z.string(),
      }),
      responses: { 404: 'Unknown cluster' },
      handler: async (req, ctx) => {
        const c = await deleteCluster(ctx, req.params.cluster_id);
        return {
          status: 'deleted' as const,
          id: c.clusterId,
          name: c.name,
          // Nodes run no Swarm here (the orchestrator's desired counts do its work): nothing to leave.
          swarm_cleanup: req.query.cleanup_swarm ? 'no swarm to leave' : 'not requested',
        };
      },
    }),
  ];
}
