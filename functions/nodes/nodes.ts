import { randomBytes } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { ConflictError, ForbiddenError, UnauthenticatedError } from '../core/errors.js';
import { emit } from '../core/events.js';
import { fleetKeys, keys, taskQueueKeys } from '../core/keys.js';
import { ConditionFailedError, queryAll, type StoreItem, deleteIf } from '../ports/store.js';
import {
  SHARDS,
  clearFree,
  clearUp,
  freeKey,
  liveKey,
  markFree,
  markUp,
  maxConcurrencyOf,
  metricsDue,
  metricsKey,
  upKey,
  addToPart,
  emptyPart,
  liveFacts,
  type FleetPart,
  type FreeRecord,
  type LiveRecord,
  type MetricsRecord,
} from './node-records.js';
import { hashToken, newToken } from '../core/tokens.js';
import {
  consumeJoinTokenUse,
  refundJoinTokenUse,
  type CloudNodeFacts,
  type JoinTokenItem,
} from './join-tokens.js';
import { linkInstanceNode } from '../novita/join.js';
import type {
  CommandChannel,
  Gpu,
  HeartbeatRequest,
  JetsonInfo,
  NodeDriver,
  NodeMetrics,
  RegisterRequest,
} from '../../protocol/messages.js';
import type { ReportedPolicy } from '../../protocol/policy.js';

/** Per-container numbers from the last heartbeat, kept on the node item (one write per heartbeat). */
export interface ContainerSample {
  state: string;
  kind: string;
  cpuPercent: number | null;
  memoryPercent: number | null;
  memoryUsageMb: number | null;
}

export interface NodeItem extends StoreItem {
  nodeId: string;
  nodeName: string;
  hostname: string;
  addresses: string[];
  arch: string;
  os: string;
  cpuCount: number;
  cpuModel?: string;
  memoryMb: number;
  diskGb: number;
  gpus: Gpu[];
  jetson?: JetsonInfo | null;
  /** As the agent declares them (replaced on every registration). */
  labels: Record<string, string>;
  /** Set through the API (Swarm node labels; null removes the agent's); win over the agent's and survive re-registration. */
  labelOverrides?: Record<string, string | null>;
  cluster?: string;
  agentVersion: string;
  engine?: { name: string; version: string; gpuRuntime: boolean };
  /** What the node lets containers do, as its agent reported it at its last registration. */
  policy?: ReportedPolicy;
  /** What runs a start there (protocol NODE_DRIVERS); absent on records of older agents: container. */
  driver?: NodeDriver;
  /** A rented cloud instance (joined with its instance's join token): which, its price, spot or not. */
  cloud?: CloudNodeFacts;
  /** SHA-256 of the agent's bearer token; the token itself is never stored. */
  tokenHash: string;
  registeredAt: string;
  /** Stored view, flipped by heartbeats and the sweep; readers use `isOnline`. */
  status: 'online' | 'offline';
  lastHeartbeat?: string;
  lastHeartbeatMs?: number;
  /** Its agent said it is stopping (node-stop.ts): offline at once, not after NODE_OFFLINE_AFTER_SECONDS. */
  stoppedAtMs?: number;
  metrics?: NodeMetrics;
  loadedModels: string[];
  containerStats: Record<string, ContainerSample>;
  /** Set through the API: no new placements here (kept across re-registration; uncordon clears it). */
  cordoned?: boolean;
  cordonedAt?: string;
  /** Cordoned by a drain: what runs here keeps being moved elsewhere until uncordoned. */
  draining?: boolean;
}

/** The labels placement and views use: the agent's, with the API's on top. */
export function nodeLabels(n: Pick<NodeItem, 'labels' | 'labelOverrides'>): Record<string, string> {
  const labels = { ...(n.labels ?? {}) };
  for (const [k, v] of Object.entries(n.labelOverrides ?? {})) {
    if (v === null) delete labels[k];
    else labels[k] = v;
  }
  return labels;
}

/** The node's command queue (logical name; the adapter adds the deployment prefix). */
export const nodeQueue = (nodeId: string) => `node-${nodeId}`;

/** Commands may wait for an image pull before the agent acknowledges them. */
export const COMMAND_VISIBILITY_SECONDS = 120;
export const COMMAND_MAX_RECEIVES = 5;

export function heartbeatIntervalSeconds(ctx: AppContext): number {
  const third = Math.max(1, Math.floor(ctx.config.NODE_OFFLINE_AFTER_SECONDS / 3));
  return Math.min(ctx.config.NODE_HEARTBEAT_SECONDS, third);
}

/**
 * Online is computed from the last heartbeat on every read (and the agent's word that it stopped);
 * the stored status may lag until the sweep.
 */
export function isOnline(
  node: Pick<NodeItem, 'lastHeartbeatMs' | 'stoppedAtMs'>,
  ctx: AppContext,
  now = ctx.now(),
): boolean {
  return (
    node.lastHeartbeatMs !== undefined &&
    node.stoppedAtMs === undefined &&
    now - node.lastHeartbeatMs <= ctx.config.NODE_OFFLINE_AFTER_SECONDS * 1000
  );
}

/**
 * A node as readers see it: its META record with its liveness and last stored sample on top
 * (node-records.ts). Records written before the split carry those fields on META itself.
 */
function assemble(meta: NodeItem, live?: LiveRecord, sample?: MetricsRecord): NodeItem {
  const node: NodeItem = {
    ...meta,
    status: live?.status ?? meta.status ?? 'offline',
    loadedModels: sample?.loadedModels ?? meta.loadedModels ?? [],
    containerStats: sample?.containerStats ?? meta.containerStats ?? {},
  };
  const beat = live ?? meta;
  if (beat.lastHeartbeatMs !== undefined) {
    node.lastHeartbeatMs = beat.lastHeartbeatMs;
    node.lastHeartbeat = beat.lastHeartbeat;
  }
  if (live?.stoppedAtMs !== undefined) node.stoppedAtMs = live.stoppedAtMs;
  const metrics = sample?.metrics ?? meta.metrics;
  if (metrics) node.metrics = metrics;
  return node;
}

/** The META record alone (credential checks, label changes). */
export async function getNodeRecord(ctx: AppContext, nodeId: string): Promise<NodeItem | undefined> {
  const k = keys.node(nodeId);
  return ctx.store.get<NodeItem>(k.pk, k.sk);
}

export async function getNode(ctx: AppContext, nodeId: string): Promise<NodeItem | undefined> {
  const meta = await getNodeRecord(ctx, nodeId);
  return meta ? withState(ctx, meta) : undefined;
}

/** A node's liveness and metrics records: one eventually consistent query (they sit side by side). */
async function stateOf(
  ctx: AppContext,
  nodeId: string,
): Promise<{ live?: LiveRecord; sample?: MetricsRecord }> {
  const { items } = await ctx.store.query<LiveRecord | MetricsRecord>(liveKey(nodeId).pk, {
    prefix: fleetKeys.nodeStatePrefix(nodeId),
  });
  const out: { live?: LiveRecord; sample?: MetricsRecord } = {};
  for (const r of items) {
    if (r.sk.endsWith(fleetKeys.nodeLiveSuffix)) out.live = r as LiveRecord;
    else out.sample = r as MetricsRecord;
  }
  return out;
}

/** A META record with its liveness and metrics read and put on top. */
export async function withState(ctx: AppContext, meta: NodeItem): Promise<NodeItem> {
  const { live, sample } = await stateOf(ctx, meta.nodeId);
  return assemble(meta, live, sample);
}

/** By node id, or by node name (the Fleet Commander API names nodes like `agx0`). */
export async function resolveNode(ctx: AppContext, idOrName: string): Promise<NodeItem | undefined> {
  const byId = await getNode(ctx, idOrName);
  if (byId) return byId;
  const guard = keys.nodeName(idOrName);
  const named = await ctx.store
    .get<StoreItem & { nodeId: string }>(guard.pk, guard.sk)
    .catch(() => undefined);
  return named ? getNode(ctx, named.nodeId) : undefined;
}

/** Every node's liveness and metrics records, by node id. */
async function allState(
  ctx: AppContext,
): Promise<{ live: Map<string, LiveRecord>; sample: Map<string, MetricsRecord> }> {
  const shards = await Promise.all(
    SHARDS.map((s) => queryAll<LiveRecord | MetricsRecord>(ctx.store, fleetKeys.nodeStatePk(s))),
  );
  const live = new Map<string, LiveRecord>();
  const sample = new Map<string, MetricsRecord>();
  for (const r of shards.flat()) {
    if (r.sk.endsWith(fleetKeys.nodeLiveSuffix)) live.set(r.nodeId, r as LiveRecord);
    else sample.set(r.nodeId, r as MetricsRecord);
  }
  return { live, sample };
}

/** Every node, by name: the node index and one query per shard for liveness and metrics together. */
export async function listNodes(ctx: AppContext): Promise<NodeItem[]> {
  const [metas, { live, sample }] = await Promise.all([
    queryAll<NodeItem>(ctx.store, fleetKeys.nodesPk, { index: 'gsi1' }),
    allState(ctx),
  ]);
  return metas.map((m) => assemble(m, live.get(m.nodeId), sample.get(m.nodeId)));
}

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
    try {
      await ctx.store.put({ ...guard, nodeId: candidate, nodeName: req.nodeName }, { notExists: true });
      nodeId = candidate;
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error;
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
  let node: NodeItem;
  try {
    // A node re-registering as itself: only while its credential is still the stored one.
    const condition = access.kind === 'node' ? { equals: { tokenHash: access.tokenHash } } : undefined;
    // An agent that reports no policy (an older one) leaves no stale policy behind.
    const update = { set: facts, ...(req.policy ? {} : { remove: ['policy'] }) };
    node = await ctx.store.update<NodeItem>(k.pk, k.sk, update, condition);
  } catch (error) {
    if (!(error instanceof ConditionFailedError)) throw error;
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
  await ctx.store.put(live);
  if (live.status === 'online' && !node.cordoned)
    await Promise.all([markFree(ctx, nodeId, { keep: true }), markUp(ctx, nodeId)]);
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
  try {
    await ctx.store.update(
      k.pk,
      k.sk,
      { set: { tokenHash: hashToken(token) } },
      { equals: { tokenHash: node.tokenHash } },
    );
  } catch (error) {
    if (error instanceof ConditionFailedError) throw credentialSuperseded();
    throw error;
  }
  return token;
}

/**
 * Stores a heartbeat: the liveness record every time (one write unit), the metrics sample only
 * when it moved (node-records.ts metricsDue). Says whether the node was offline before it.
 */
export async function recordHeartbeat(
  ctx: AppContext,
  node: NodeItem,
  hb: HeartbeatRequest,
  /** Stores the sample whatever it moved, when this says so of the node as it was (a signal fired on it). */
  mustStore?: (before: NodeItem) => boolean,
): Promise<{ node: NodeItem; before: NodeItem; cameOnline: boolean }> {
  const now = ctx.now();
  const lk = liveKey(node.nodeId);
  const mk = metricsKey(node.nodeId);
  const { live, sample: stored } = await stateOf(ctx, node.nodeId);
  const prior = live ?? node;
  const wasOnline = prior.status === 'online' && isOnline(prior, ctx, now);
  const containerStats: Record<string, ContainerSample> = {};
  for (const c of hb.containers) {
    containerStats[c.instanceId] = {
      state: c.state,
      kind: c.kind,
      cpuPercent: c.stats?.cpuPercent ?? null,
      memoryPercent: c.stats?.memoryPercent ?? null,
      memoryUsageMb: c.stats?.memoryUsageMb ?? null,
    };
  }
  const fresh = { metrics: hb.metrics, loadedModels: hb.loadedModels, containerStats };
  const beat: LiveRecord = {
    ...lk,
    nodeId: node.nodeId,
    status: 'online',
    lastHeartbeat: new Date(now).toISOString(),
    lastHeartbeatMs: now,
    ...liveFacts(node),
  };
  const before = assemble(node, live, stored);
  const due = metricsDue(ctx, stored, fresh, now) || (mustStore?.(before) ?? false);
  const sample: MetricsRecord = due
    ? { ...mk, nodeId: node.nodeId, ...fresh, storedAtMs: now }
    : { ...stored!, ...fresh };
  // Two items, written side by side: the liveness record does not wait for the metrics.
  await Promise.all([ctx.store.put(beat), due ? ctx.store.put(sample) : undefined]);
  const model = [...hb.loadedModels].sort()[0];
  if (!wasOnline) {
    if (!node.cordoned)
      await Promise.all([
        markFree(ctx, node.nodeId, { keep: true, ...(model ? { model } : {}) }),
        markUp(ctx, node.nodeId),
      ]);
    await emit(ctx, { type: 'node.online', nodeId: node.nodeId });
  }
  // Readers of this heartbeat's node see what it reported, stored or not.
  return { node: assemble(node, beat, sample), before, cameOnline: !wasOnline };
}

/**
 * Flips nodes whose heartbeats stopped to offline (readers already see them offline; this makes
 * it an event others act on). Reads only the liveness records. Conditional on the heartbeat it
 * judged, so a heartbeat that lands meanwhile wins.
 */
export async function sweepNodes(ctx: AppContext): Promise<string[]> {
  const wentOffline: string[] = [];
  for (const shard of SHARDS) {
    let cursor: string | undefined;
    do {
      const part = await sweepShard(ctx, shard, cursor);
      wentOffline.push(...part.wentOffline);
      cursor = part.cursor;
    } while (cursor);
  }
  return wentOffline;
}

/** Records one sweep invocation reads at most: the events function's timeout holds at any fleet size. */
export const SWEEP_ITEMS_PER_INVOCATION = 10_000;
const SWEEP_PAGE_ITEMS = 1_000;

export interface ShardSweep {
  /** Records read (liveness and metrics: they share the shard's partition). */
  read: number;
  wentOffline: string[];
  /** Nodes silent past NODE_RETIRE_AFTER_SECONDS (their liveness records), for the caller to retire. */
  toRetire: LiveRecord[];
  /** Where the next invocation goes on; absent when the shard is done. */
  cursor?: string;
  /** The online nodes it read, for the fleet sample (node-records.ts FleetPart). */
  part: FleetPart;
  /** Index entries it wrote or removed because they drifted from the liveness records. */
  repaired: number;
}

/**
 * Brings the eligible-node and free-capacity indexes of the nodes in one page in line with their
 * liveness records (a lost write, nodes from before the indexes): reads each index over the page's
 * node id range, one query each, and only the META (and held slots) of nodes that drifted.
 */
async function repairIndexes(
  ctx: AppContext,
  shard: number,
  lives: LiveRecord[],
  samples: Map<string, MetricsRecord>,
  now: number,
): Promise<number> {
  if (!lives.length) return 0;
  const range: [string, string] = [lives[0]!.nodeId, lives[lives.length - 1]!.nodeId];
  const [up, free] = await Promise.all([
    queryAll<FreeRecord>(ctx.store, fleetKeys.nodeUpPk(shard), { between: range }),
    queryAll<FreeRecord>(ctx.store, fleetKeys.nodeFreePk(shard), { between: range }),
  ]);
  const upIds = new Set(up.map((r) => r.nodeId));
  const freeBy = new Map(free.map((r) => [r.nodeId, r] as const));
  const online = new Set(lives.filter((l) => isOnline(l, ctx, now)).map((l) => l.nodeId));
  let repaired = 0;
  for (const id of [...upIds, ...freeBy.keys()]) {
    if (online.has(id)) continue;
    if (upIds.delete(id)) {
      await clearUp(ctx, id);
      repaired++;
    }
    if (freeBy.delete(id)) {
      await clearFree(ctx, id);
      repaired++;
    }
  }
  for (const id of online) {
    const resident = [...(samples.get(id)?.loadedModels ?? [])].sort()[0];
    const entry = freeBy.get(id);
    const modelDrift =
      entry !== undefined &&
      entry.model !== resident &&
      now - (samples.get(id)?.storedAtMs ?? now) >= MODEL_SETTLED_MS;
    if (upIds.has(id) && entry && !modelDrift) continue;
    const meta = await getNodeRecord(ctx, id);
    if (!meta || meta.cordoned) continue;
    if (!upIds.has(id)) {
      await markUp(ctx, id);
      repaired++;
    }
    if (entry && !modelDrift) continue;
    const held = await ctx.store.query(taskQueueKeys.nodeSlot(id, 0).pk);
    if (held.items.length >= maxConcurrencyOf(meta)) continue;
    await markFree(ctx, id, resident ? { model: resident } : {});
    repaired++;
  }
  return repaired;
}

/** A model the node loaded or dropped on its own is trusted over the index after this (placement's settle time). */
const MODEL_SETTLED_MS = 60_000;

/**
 * The indexes are written where liveness and cordon change; the repair is the safety net for a
 * lost write, so a shard's is done at most this often per process, not on every sweep.
 */
export const INDEX_REPAIR_EVERY_MS = 5 * 60_000;
let lastRepair = 0;
/** Whether the sweep starting now repairs the indexes (its whole chain does, the flag travels with it). */
export function indexRepairDue(): boolean {
  const now = Date.now();
  if (now - lastRepair < INDEX_REPAIR_EVERY_MS) return false;
  lastRepair = now;
  return true;
}

/**
 * One invocation's share of the sweep: up to `budget` records of one shard from `cursor`, so a
 * fleet of any size is swept by invocations of bounded work (one chain per shard, each link under
 * the function's timeout). Flips silent online nodes offline, conditional on the heartbeat it
 * judged so a heartbeat that lands meanwhile wins, and names those silent past retirement.
 */
export async function sweepShard(
  ctx: AppContext,
  shard: number,
  cursor?: string,
  budget = SWEEP_ITEMS_PER_INVOCATION,
  /** Repair the eligible-node and free-capacity indexes of what it reads. */
  repair = false,
): Promise<ShardSweep> {
  const now = ctx.now();
  const retireAfter = ctx.config.NODE_RETIRE_AFTER_SECONDS;
  const out: ShardSweep = { read: 0, wentOffline: [], toRetire: [], part: emptyPart(), repaired: 0 };
  let next = cursor;
  do {
    const page = await ctx.store.query<LiveRecord | MetricsRecord>(fleetKeys.nodeStatePk(shard), {
      limit: Math.min(SWEEP_PAGE_ITEMS, budget - out.read),
      ...(next ? { cursor: next } : {}),
    });
    out.read += page.items.length;
    next = page.cursor;
    const lives = page.items.filter((r): r is LiveRecord => r.sk.endsWith(fleetKeys.nodeLiveSuffix));
    const samples = new Map(
      page.items
        .filter((r): r is MetricsRecord => !r.sk.endsWith(fleetKeys.nodeLiveSuffix))
        .map((r) => [r.nodeId, r] as const),
    );
    out.part.nodes = (out.part.nodes ?? 0) + lives.length;
    for (const live of lives)
      if (isOnline(live, ctx, now)) addToPart(out.part, live, samples.get(live.nodeId));
    if (repair) out.repaired += await repairIndexes(ctx, shard, lives, samples, now);
    for (const r of page.items) {
      if (!r.sk.endsWith(fleetKeys.nodeLiveSuffix)) continue;
      const live = r as LiveRecord;
      if (retireAfter && now - live.lastHeartbeatMs > retireAfter * 1000) out.toRetire.push(live);
      if (live.status !== 'online' || isOnline(live, ctx, now)) continue;
      try {
        await ctx.store.update(
          live.pk,
          live.sk,
          { set: { status: 'offline' } },
          { equals: { status: 'online', lastHeartbeatMs: live.lastHeartbeatMs } },
        );
      } catch (error) {
        if (error instanceof ConditionFailedError) continue;
        throw error;
      }
      out.wentOffline.push(live.nodeId);
      await Promise.all([clearFree(ctx, live.nodeId), clearUp(ctx, live.nodeId)]);
      await emit(ctx, { type: 'node.offline', nodeId: live.nodeId, lastHeartbeat: live.lastHeartbeat });
    }
  } while (next && out.read < budget);
  if (next) out.cursor = next;
  return out;
}

// ---------------------------------------------------------------- cordon and retire

/** Cordoned (or draining): nothing new is placed on the node. */
export const isCordoned = (n: Pick<NodeItem, 'cordoned'>): boolean => n.cordoned === true;
/** Draining: what runs on the node is moved elsewhere. */
export const isDraining = (n: Pick<NodeItem, 'draining'>): boolean => n.draining === true;

/** Online and not cordoned: may take new work. */
/**
 * Whether the node can run a start: a process node (no container engine) runs only starts that
 * give a command, and never a model server (it forwards tasks to a container's published port).
 */
export function canRun(
  n: Pick<NodeItem, 'driver'>,
  start: { command?: readonly string[] | undefined },
): boolean {
  return n.driver !== 'process' || (start.command?.length ?? 0) > 0;
}

export const isSchedulable = (n: NodeItem, ctx: AppContext, now = ctx.now()): boolean =>
  !isCordoned(n) && isOnline(n, ctx, now);

/** Cordons (optionally for a drain) or uncordons; undefined when the node is gone. */
export async function setCordon(
  ctx: AppContext,
  nodeId: string,
  state: { cordoned: boolean; draining?: boolean },
): Promise<NodeItem | undefined> {
  const k = keys.node(nodeId);
  const set = state.cordoned
    ? { cordoned: true, draining: state.draining === true, cordonedAt: new Date(ctx.now()).toISOString() }
    : { cordoned: false, draining: false };
  try {
    // Cordon state is registry state: it lives on META, and readers get the node with its liveness.
    const node = await withState(
      ctx,
      await ctx.store.update<NodeItem>(k.pk, k.sk, { set }, { exists: true }),
    );
    const model = [...node.loadedModels].sort()[0];
    if (state.cordoned) await Promise.all([clearFree(ctx, nodeId), clearUp(ctx, nodeId)]);
    else {
      await markFree(ctx, nodeId, { keep: true, ...(model ? { model } : {}) });
      if (isOnline(node, ctx)) await markUp(ctx, nodeId);
    }
    return node;
  } catch (error) {
    if (error instanceof ConditionFailedError) return undefined;
    throw error;
  }
}

/**
 * Removes a node's registry side: its record (so its credential stops working at once), its name
 * (free for a new join) and its command queue. Conditional on the credential read, so a node that
 * re-registered meanwhile keeps its record. False when another caller got there first.
 */
export async function deleteNodeRecords(ctx: AppContext, node: NodeItem): Promise<boolean> {
  const k = keys.node(node.nodeId);
  if (!(await deleteIf(ctx.store, k.pk, k.sk, { equals: { tokenHash: node.tokenHash } }))) return false;
  const guard = keys.nodeName(node.nodeName);
  await deleteIf(ctx.store, guard.pk, guard.sk, { equals: { nodeId: node.nodeId } });
  // Its liveness and metrics records go with it (they live in the sharded state partitions).
  for (const key of [liveKey(node.nodeId), metricsKey(node.nodeId), freeKey(node.nodeId), upKey(node.nodeId)])
    await ctx.store.delete(key.pk, key.sk);
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
