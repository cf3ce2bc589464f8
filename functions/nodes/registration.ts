/**
 * The node registry: registration (idempotent by name, a fresh credential each time), credential
 * rotation, label overrides and removal. Writes META and, at registration, the liveness record.
 */
import { randomBytes } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { ConflictError, ForbiddenError, UnauthenticatedError } from '../core/errors.js';
import { keys, taskQueueKeys } from '../core/keys.js';
import { type StoreItem, deleteIf, putIfAbsent, updateIf } from '../ports/store.js';
import {
  freeKey,
  liveKey,
  markFree,
  markUp,
  metricsKey,
  upKey,
  liveFacts,
  type LiveRecord,
  type MetricsRecord,
} from './node-records.js';
import { forgetNode } from '../cluster/model-residency.js';
import { hashToken, newToken } from '../core/tokens.js';
import { consumeJoinTokenUse, refundJoinTokenUse, type JoinTokenItem } from './join-tokens.js';
import { linkInstanceNode } from '../novita/join.js';
import { indexNode, markJetsonUp, unindexNode } from './address-index.js';
import { problemMarkerKey } from './node-problems.js';
import type { CommandChannel, RegisterRequest } from '../../protocol/messages.js';
import {
  COMMAND_MAX_RECEIVES,
  COMMAND_VISIBILITY_SECONDS,
  assemble,
  getNode,
  heartbeatIntervalSeconds,
  isOnline,
  nodeQueue,
  withState,
  type NodeItem,
} from './node-model.js';

/** SQS queue names allow letters, digits, `-` and `_`, 80 characters with prefix and `-dlq`. */
function newNodeId(nodeName: string): string {
  const base = nodeName.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40);
  return `${base}-${randomBytes(4).toString('hex')}`;
}

export interface Registration {
  node: NodeItem;
  token: string;
  channel: CommandChannel;
  heartbeatIntervalSeconds: number;
}

/** The queue port gains `url()` in the SQS adapter; the embedded queue has none. */
interface QueueWithUrl {
  url(queue: string): Promise<string>;
}
const hasUrl = (queue: object): queue is QueueWithUrl =>
  'url' in queue && typeof (queue as QueueWithUrl).url === 'function';

async function channelFor(ctx: AppContext, queue: string): Promise<CommandChannel> {
  if (ctx.mode === 'embedded' || !hasUrl(ctx.queue)) return { type: 'http' };
  return {
    type: 'sqs',
    queueUrl: await ctx.queue.url(queue),
    ...(ctx.config.AWS_ENDPOINT_URL ? { endpoint: ctx.config.AWS_ENDPOINT_URL } : {}),
    region: ctx.config.AWS_REGION,
  };
}

/**
 * Who registers: the API key (or a deployment without API_AUTH) may create or re-register any
 * node; a join token only creates nodes; a node's own credential only re-registers that node.
 */
export type RegistrationAccess =
  { kind: 'admin' } | { kind: 'join'; token: string } | { kind: 'node'; nodeId: string; tokenHash: string };

const credentialSuperseded = () =>
  new UnauthenticatedError('Invalid agent token', 'AUTHENTICATION_ERROR', undefined, {
    'www-authenticate': 'Bearer',
  });

/**
 * Registers a node, idempotent by node name: the same name keeps its node id (and its containers).
 * Every call issues a fresh token, so the previous one stops working.
 */
export async function registerNode(
  ctx: AppContext,
  req: RegisterRequest,
  access: RegistrationAccess = { kind: 'admin' },
): Promise<Registration> {
  const guard = keys.nodeName(req.nodeName);
  let nodeId = (await ctx.store.get<StoreItem & { nodeId: string }>(guard.pk, guard.sk))?.nodeId;
  if (access.kind === 'node' && nodeId !== access.nodeId) {
    throw new ForbiddenError(
      `This node credential belongs to another node: it cannot register ${req.nodeName}`,
    );
  }
  if (nodeId && access.kind === 'join') throw nameTaken(req.nodeName);
  let joined: JoinTokenItem | undefined;
  if (!nodeId) {
    const use = access.kind === 'join' ? await consumeJoinTokenUse(ctx, access.token) : undefined;
    if (access.kind === 'join' && !use) {
      throw new UnauthenticatedError(
        'Join token expired, revoked or used up',
        'AUTHENTICATION_ERROR',
        undefined,
        {
          'www-authenticate': 'Bearer',
        },
      );
    }
    if (use?.nodeName !== undefined && use.nodeName !== req.nodeName) {
      await refundJoinTokenUse(ctx, use);
      throw new ForbiddenError(
        `This join token registers the node ${use.nodeName} only, not ${req.nodeName}`,
      );
    }
    joined = use;
    const candidate = newNodeId(req.nodeName);
    if (await putIfAbsent(ctx.store, { ...guard, nodeId: candidate, nodeName: req.nodeName }))
      nodeId = candidate;
    else {
      if (use) {
        await refundJoinTokenUse(ctx, use);
        throw nameTaken(req.nodeName);
      }
      // Two first registrations raced: the winner's id is the node's id.
      nodeId = (await ctx.store.get<StoreItem & { nodeId: string }>(guard.pk, guard.sk))!.nodeId;
    }
  }

  const queue = nodeQueue(nodeId);
  await ctx.queue.ensure({
    name: queue,
    visibilityTimeoutSeconds: COMMAND_VISIBILITY_SECONDS,
    maxReceiveCount: COMMAND_MAX_RECEIVES,
  });
  // The agent registers on every start: commands its killed predecessor took are delivered again now.
  const released = await ctx.queue.releaseInFlight?.(queue);
  if (released) ctx.logger.info('in-flight commands released', { nodeId, released });

  const token = newToken(nodeId);
  const now = ctx.now();
  const k = keys.node(nodeId);
  const before = await getNode(ctx, nodeId);
  // A node that was offline (swept, or silent past NODE_OFFLINE_AFTER_SECONDS) and comes back by
  // registering (its agent restarted) keeps the stored "offline" until its first heartbeat, so that
  // heartbeat sees it come online: node.online, a reconcile that removes its orphans, endpoints UP.
  const wasOnline = !before || (before.status === 'online' && isOnline(before, ctx, now));
  const facts = {
    nodeName: req.nodeName,
    hostname: req.hostname,
    addresses: req.addresses,
    arch: req.arch,
    os: req.os,
    cpuCount: req.cpuCount,
    cpuModel: req.cpuModel,
    memoryMb: req.memoryMb,
    diskGb: req.diskGb,
    gpus: req.gpus,
    jetson: req.jetson ?? null,
    labels: req.labels,
    cluster: req.cluster,
    agentVersion: req.agentVersion,
    engine: req.engine,
    policy: req.policy,
    driver: req.driver ?? 'container',
    tokenHash: hashToken(token),
    ...keys.nodesIndex(req.nodeName),
  };
  // Registering is a sign of life: readers see the node online (lastHeartbeatMs) until its heartbeats stop.
  const live: LiveRecord = {
    ...liveKey(nodeId),
    nodeId,
    status: wasOnline ? 'online' : 'offline',
    lastHeartbeat: new Date(now).toISOString(),
    lastHeartbeatMs: now,
    ...liveFacts(facts),
  };
  // A node re-registering as itself: only while its credential is still the stored one.
  const condition = access.kind === 'node' ? { equals: { tokenHash: access.tokenHash } } : undefined;
  // An agent that reports no policy (an older one) leaves no stale policy behind.
  const update = { set: facts, ...(req.policy ? {} : { remove: ['policy'] }) };
  let node = await updateIf<NodeItem>(ctx.store, k.pk, k.sk, update, condition);
  if (!node) {
    if (access.kind === 'node') throw credentialSuperseded();
    node = {
      ...k,
      nodeId,
      ...facts,
      registeredAt: new Date(now).toISOString(),
      status: live.status,
      loadedModels: [],
      containerStats: {},
      ...(joined?.cloud ? { cloud: joined.cloud } : {}),
    };
    await ctx.store.put(node, { notExists: true });
    if (joined?.cloud) await linkInstanceNode(ctx, joined.cloud.instanceId, nodeId, req.nodeName);
  }
  await indexNode(ctx, { nodeId, ...facts }, before);
  // An update (creating the record when it is new), not a put: the metric history points it carries stay.
  const { pk: livePk, sk: liveSk, ...liveFields } = live;
  // What a put would have dropped: the agent's word that it stopped, a Jetson's memory no longer reported.
  const remove = ['stoppedAtMs', ...(live.unifiedMb === undefined ? ['unifiedMb'] : [])];
  await ctx.store.update(livePk, liveSk, { set: liveFields, remove }, {});
  if (live.status === 'online' && !node.cordoned)
    await Promise.all([markFree(ctx, nodeId, { keep: true }), markUp(ctx, nodeId)]);
  if (live.status === 'online' && node.jetson) await markJetsonUp(ctx, node);
  return {
    node: assemble(node, live),
    token,
    channel: await channelFor(ctx, queue),
    heartbeatIntervalSeconds: heartbeatIntervalSeconds(ctx),
  };
}

const nameTaken = (name: string) =>
  new ConflictError(
    `Node name ${name} is already registered: re-registering a node needs its own credential or the API key`,
    'NODE_EXISTS',
  );

/**
 * A node's own credential rotation: a fresh token replaces the one presented, which stops working
 * at once. Conditional on that token still being the stored one.
 */
export async function rotateNodeToken(ctx: AppContext, node: NodeItem): Promise<string> {
  const token = newToken(node.nodeId);
  const k = keys.node(node.nodeId);
  const rotated = await updateIf(
    ctx.store,
    k.pk,
    k.sk,
    { set: { tokenHash: hashToken(token) } },
    { equals: { tokenHash: node.tokenHash } },
  );
  if (!rotated) throw credentialSuperseded();
  return token;
}

/**
 * Removes a node's registry side: its record (so its credential stops working at once), its name
 * (free for a new join), its state and model records, its problem marker, its model residency and
 * address index entries (an online Jetson's too)
 * and its command queue. Conditional on the credential read, so a node that
 * re-registered meanwhile keeps its record. False when another caller got there first.
 */
export async function deleteNodeRecords(ctx: AppContext, node: NodeItem): Promise<boolean> {
  const k = keys.node(node.nodeId);
  if (!(await deleteIf(ctx.store, k.pk, k.sk, { equals: { tokenHash: node.tokenHash } }))) return false;
  const guard = keys.nodeName(node.nodeName);
  await deleteIf(ctx.store, guard.pk, guard.sk, { equals: { nodeId: node.nodeId } });
  // Its liveness and metrics records go with it (they live in the sharded state partitions).
  for (const key of [
    liveKey(node.nodeId),
    freeKey(node.nodeId),
    upKey(node.nodeId),
    problemMarkerKey(node.nodeId),
  ])
    await ctx.store.delete(key.pk, key.sk);
  // Its model record and sample too, and the residency index's entries of the models they name.
  const mk = metricsKey(node.nodeId);
  const plan = taskQueueKeys.nodeModels(node.nodeId);
  const [sample, planned] = await Promise.all([
    ctx.store.delete<MetricsRecord>(mk.pk, mk.sk),
    ctx.store.delete<StoreItem & { models?: string[] }>(plan.pk, plan.sk),
  ]);
  await forgetNode(ctx, node.nodeId, [
    ...(sample?.loadedModels ?? node.loadedModels ?? []),
    ...(planned?.models ?? []),
  ]);
  await unindexNode(ctx, node);
  await ctx.queue.remove(nodeQueue(node.nodeId));
  return true;
}

/** Sets the API's label overrides on a node (META only); the node as readers see it. */
export async function setNodeLabelOverrides(
  ctx: AppContext,
  nodeId: string,
  overrides: Record<string, string | null>,
): Promise<NodeItem> {
  const k = keys.node(nodeId);
  const meta = await ctx.store.update<NodeItem>(
    k.pk,
    k.sk,
    { set: { labelOverrides: overrides } },
    { exists: true },
  );
  return withState(ctx, meta);
}
