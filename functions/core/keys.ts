/** How long a queued task waits to gain one priority level (the planner's default aging, 0.1 a minute). */
export const QUEUE_LEVEL_MS = 600_000;
/** Sort keys of the queue index in placement order start with this. */
export const QUEUE_KEY_PREFIX = 'Q#';

/**
 * Every key of the single table, built in one place. docs/architecture.md lists the same design.
 * `gsi1`/`gsi2` are sparse: an item appears in an index only while it carries that index's keys.
 */
export const keys = {
  node: (nodeId: string) => ({ pk: `NODE#${nodeId}`, sk: 'META' }),
  /** Uniqueness guard: one node per node name. */
  nodeName: (name: string) => ({ pk: `NODENAME#${name}`, sk: 'NAME' }),
  /** gsi1: all nodes by name (written at registration and label changes only, never by heartbeats). */
  nodesIndex: (name: string) => ({ gsi1pk: 'NODES', gsi1sk: name }),
  /** A node's liveness (status, last heartbeat): small, rewritten every beat, on no index. */
  nodeLive: (nodeId: string, shard: number) => ({ pk: `NODESTATE#${shard}`, sk: `${nodeId}#LIVE` }),
  /** A node's last stored metrics sample (metrics, models, containers): on no index. */
  nodeMetrics: (nodeId: string, shard: number) => ({ pk: `NODESTATE#${shard}`, sk: `${nodeId}#METRICS` }),

  command: (commandId: string) => ({ pk: `CMD#${commandId}`, sk: 'META' }),
  /** gsi1: a node's commands in issue order. */
  nodeCommandsIndex: (nodeId: string, issuedAt: string, commandId: string) => ({
    gsi1pk: `NODECMD#${nodeId}`,
    gsi1sk: `${issuedAt}#${commandId}`,
  }),

  /** Desired state for one image. */
  service: (imageId: string) => ({ pk: `SERVICE#${imageId}`, sk: 'META' }),
  servicesIndex: (imageId: string) => ({ gsi1pk: 'SERVICES', gsi1sk: imageId }),

  instance: (instanceId: string) => ({ pk: `INSTANCE#${instanceId}`, sk: 'META' }),
  /** gsi1: instances of an image; gsi2: instances on a node. */
  instanceIndexes: (imageId: string, nodeId: string, instanceId: string) => ({
    gsi1pk: `IMAGE#${imageId}`,
    gsi1sk: instanceId,
    gsi2pk: `NODEINST#${nodeId}`,
    gsi2sk: instanceId,
  }),

  endpoint: (endpointId: string) => ({ pk: `ENDPOINT#${endpointId}`, sk: 'META' }),
  endpointsIndex: (serviceName: string, endpointId: string) => ({
    gsi1pk: 'ENDPOINTS',
    gsi1sk: `${serviceName}#${endpointId}`,
  }),

  job: (jobId: string) => ({ pk: `JOB#${jobId}`, sk: 'META' }),
  jobName: (name: string) => ({ pk: `JOBNAME#${name}`, sk: 'NAME' }),
  /** gsi1: all jobs by creation; gsi2: jobs by status. */
  jobIndexes: (createdAt: string, jobId: string, status: string) => ({
    gsi1pk: 'JOBS',
    gsi1sk: `${createdAt}#${jobId}`,
    gsi2pk: `JOBSTATUS#${status}`,
    gsi2sk: `${createdAt}#${jobId}`,
  }),
  run: (jobId: string, startedAt: string, runId: string) => ({
    pk: `JOB#${jobId}`,
    sk: `RUN#${startedAt}#${runId}`,
  }),

  task: (taskId: string) => ({ pk: `TASK#${taskId}`, sk: 'META' }),
  /** gsi1 (sparse, queued tasks only): in the order placement serves them. gsi2: all tasks by creation. */
  taskIndexes: (taskId: string, createdAt: string) => ({ gsi2pk: 'TASKS', gsi2sk: `${createdAt}#${taskId}` }),
  /**
   * Placement serves the highest effective priority first (level + one level per 10 minutes
   * waited), then the oldest: that is the earliest creation time minus 10 minutes a level, a
   * number fixed at submit, so an ascending query reads the queue in placement order (shifted by
   * 10 levels: never negative). `Q#` sorts after the keys of the layout before (`997#…`, priority
   * first), left by tasks queued before: those are the oldest, read first.
   */
  queuedIndex: (priority: number, enqueuedAt: string, taskId: string) => ({
    gsi1pk: 'QUEUE',
    gsi1sk: `${QUEUE_KEY_PREFIX}${String(Date.parse(enqueuedAt) + (10 - priority) * QUEUE_LEVEL_MS).padStart(15, '0')}#${enqueuedAt}#${taskId}`,
  }),
  model: (modelId: string) => ({ pk: `MODEL#${modelId}`, sk: 'META' }),
  modelsIndex: (modelId: string) => ({ gsi1pk: 'MODELS', gsi1sk: modelId }),
} as const;

/** Fleet and orchestrator keys (appended). */
export const fleetKeys = {
  /** One desired copy of an image: claimed with a conditional write so concurrent reconcilers place it once. */
  serviceSlot: (imageId: string, ordinal: number) => ({
    pk: `SERVICE#${imageId}`,
    sk: `SLOT#${String(ordinal).padStart(5, '0')}`,
  }),
  serviceSlotPrefix: 'SLOT#',
  /** A global service's copy on one node (one slot a node, by shard so a page of a shard reads its slots in one query). */
  globalSlot: (imageId: string, shard: number, nodeId: string) => ({
    pk: `SERVICE#${imageId}`,
    sk: `SLOT#N#${shard}#${nodeId}`,
  }),
  globalSlotPrefix: (shard: number) => `SLOT#N#${shard}#`,
  /** A global service's eligible nodes in one shard, as its last reconcile chain counted them. */
  globalCount: (imageId: string, shard: number) => ({ pk: `SERVICE#${imageId}`, sk: `GCOUNT#${shard}` }),
  globalCountPrefix: 'GCOUNT#',
  servicesPk: 'SERVICES',
  nodesPk: 'NODES',
  /** Liveness and metrics records of the nodes in one shard: `<nodeId>#LIVE`, `<nodeId>#METRICS`, side by side. */
  nodeStatePk: (shard: number) => `NODESTATE#${shard}`,
  nodeStatePrefix: (nodeId: string) => `${nodeId}#`,
  nodeLiveSuffix: '#LIVE',
  /**
   * The free-capacity index: a node that may take a task (online, not cordoned, a free slot as last
   * known) in one of the shards; gsi1 by its resident model. Placement reads candidates, not the fleet.
   */
  nodeFree: (nodeId: string, shard: number) => ({ pk: `NODEFREE#${shard}`, sk: nodeId }),
  nodeFreePk: (shard: number) => `NODEFREE#${shard}`,
  nodeFreeModelIndex: (nodeId: string, model: string) => ({
    gsi1pk: `NODEFREEMODEL#${model}`,
    gsi1sk: nodeId,
  }),
  nodeFreeModelPk: (model: string) => `NODEFREEMODEL#${model}`,
  /**
   * The eligible-node index: a node that may take a new container (online, not cordoned), in one of
   * the shards. A container start reads a page of it, not the fleet.
   */
  nodeUp: (nodeId: string, shard: number) => ({ pk: `NODEUP#${shard}`, sk: nodeId }),
  nodeUpPk: (shard: number) => `NODEUP#${shard}`,
  /** A node with problems of its own (node-problems.ts): the problems listing reads these, not the fleet. */
  nodeProblems: (nodeId: string, shard: number) => ({ pk: `NODEPROBLEMS#${shard}`, sk: nodeId }),
  nodeProblemsPk: (shard: number) => `NODEPROBLEMS#${shard}`,
  /** The sweep's fleet aggregate: one record per shard and link of its chain (`<shard>#<link>`). */
  fleetAggPk: 'FLEETAGG',
  fleetAgg: (shard: number, link: number) => ({
    pk: 'FLEETAGG',
    sk: `${shard}#${String(link).padStart(4, '0')}`,
  }),
  fleetAggAll: { pk: 'FLEETAGG', sk: 'ALL' },
  endpointsPk: 'ENDPOINTS',
  /** gsi1 partition of an image's instances. */
  imageInstancesPk: (imageId: string) => `IMAGE#${imageId}`,
  /** gsi2 partition of a node's instances. */
  nodeInstancesPk: (nodeId: string) => `NODEINST#${nodeId}`,
  /** gsi1 partition of a node's commands. */
  nodeCommandsPk: (nodeId: string) => `NODECMD#${nodeId}`,
} as const;

/** The task queue of the Cluster Manager and Vision APIs. Tasks and models use `keys.task*` / `keys.model*` above. */
export const taskQueueKeys = {
  queuePk: 'QUEUE',
  tasksPk: 'TASKS',
  modelsPk: 'MODELS',
  /**
   * One concurrency slot of a node, held by the task running there. Claimed with a conditional
   * put, so two placement runners never put more tasks on a node than it has slots.
   * gsi1 (sparse, held slots only): every running task of the fleet in one query.
   */
  nodeSlot: (nodeId: string, slot: number) => ({
    pk: `TASKSLOT#${nodeId}`,
    sk: `SLOT#${String(slot).padStart(3, '0')}`,
  }),
  heldSlotIndex: (nodeId: string, slot: number) => ({
    gsi1pk: 'TASKSLOTS',
    gsi1sk: `${nodeId}#${String(slot).padStart(3, '0')}`,
  }),
  heldSlotsPk: 'TASKSLOTS',
  /** Where the scheduled run's check of the held-slot index goes on from (its gsi1 cursor). */
  heldSlotsCursor: { pk: 'TASKSLOTCURSOR', sk: 'CURSOR' },
  /** gsi2 (held slots only): the slots running a model, so a placement finds the busy nodes serving it. */
  slotModelIndex: (model: string, nodeId: string, slot: number) => ({
    gsi2pk: `TASKSLOTMODEL#${model}`,
    gsi2sk: `${nodeId}#${String(slot).padStart(3, '0')}`,
  }),
  slotModelPk: (model: string) => `TASKSLOTMODEL#${model}`,
  /** Models the control plane has put on a node (its own view, ahead of the heartbeat); gsi1: all of them. */
  nodeModels: (nodeId: string) => ({
    pk: `NODEMODELS#${nodeId}`,
    sk: 'STATE',
    gsi1pk: 'NODEMODELS',
    gsi1sk: nodeId,
  }),
  nodeModelsPk: 'NODEMODELS',
  /**
   * The model residency index (cluster/model-residency.ts): a node that holds a model, as the control
   * plane planned it or the node reported it, one partition a model. Questions about a model read its holders.
   */
  modelNode: (model: string, nodeId: string) => ({ pk: `MODELNODES#${model}`, sk: nodeId }),
  modelNodesPk: (model: string) => `MODELNODES#${model}`,
  /** One fleet sample per minute (GPU utilisation, memory) for /cluster/metrics. */
  clusterSample: (minute: string) => ({ pk: 'CLUSTERSAMPLES', sk: minute }),
  clusterSamplesPk: 'CLUSTERSAMPLES',
  /**
   * A queued task's queue deadline (creation + its `timeout`), written at submit beside the task:
   * the scheduled placement run reads only those past due, oldest first (queue-deadlines.ts).
   */
  queueDeadline: (deadlineMs: number, taskId: string) => ({
    pk: 'QDEADLINES',
    sk: `${String(Math.max(0, deadlineMs)).padStart(15, '0')}#${taskId}`,
  }),
  queueDeadlinesPk: 'QDEADLINES',
  /** The task counters' recount state (task-counts.ts recountQueued). */
  taskCountRecount: { pk: 'TASKCOUNT#RECOUNT', sk: 'QUEUED' },
  /** Queued tasks whose placement-order time falls in one second (queue-position.ts). */
  queueCount: (bucketMs: number) => ({ pk: 'QUEUECOUNT', sk: `B#${String(bucketMs).padStart(15, '0')}` }),
  queueCountPk: 'QUEUECOUNT',
} as const;

/** Training job keys (appended). Jobs and runs use `keys.job*` / `keys.run` above. */
export const trainingKeys = {
  /** gsi1 partition of every job, by creation. */
  jobsPk: 'JOBS',
  /** gsi2 partition of the jobs in one status. */
  jobStatusPk: (status: string) => `JOBSTATUS#${status}`,
  /** Sort key prefix of a job's runs (same partition as the job). */
  runPrefix: 'RUN#',
  /** gsi1 (sparse, running runs only): every run in flight, by node, for capacity and node loss. */
  activeRunIndex: (nodeId: string, instanceId: string) => ({
    gsi1pk: 'TRAINRUNS',
    gsi1sk: `${nodeId}#${instanceId}`,
  }),
  activeRunsPk: 'TRAINRUNS',
  /** gsi2 (runs placed on a node, kept after they end): one node's runs, latest start first. */
  nodeRunIndex: (nodeId: string, startedAt: string, instanceId: string) => ({
    gsi2pk: `NODERUNS#${nodeId}`,
    gsi2sk: `${startedAt}#${instanceId}`,
  }),
  nodeRunsPk: (nodeId: string) => `NODERUNS#${nodeId}`,
} as const;

/** Novita GPU instance keys (appended). */
export const novitaKeys = {
  /** A managed Novita instance (our id, which maps to Novita's). */
  instance: (instanceId: string) => ({ pk: `NOVITAINST#${instanceId}`, sk: 'META' }),
  /** gsi1: every managed instance by creation; gsi2: those in one status. */
  instanceIndexes: (createdAt: string, instanceId: string, status: string) => ({
    gsi1pk: 'NOVITAINSTANCES',
    gsi1sk: `${createdAt}#${instanceId}`,
    gsi2pk: `NOVITAINSTSTATUS#${status}`,
    gsi2sk: `${createdAt}#${instanceId}`,
  }),
  instancesPk: 'NOVITAINSTANCES',
  instanceStatusPk: (status: string) => `NOVITAINSTSTATUS#${status}`,
  /** One spot migration execution; gsi1: all by queue time; gsi2: those in one status. */
  migration: (jobId: string) => ({ pk: `NOVITAMIG#${jobId}`, sk: 'META' }),
  migrationIndexes: (queuedAt: string, jobId: string, status: string) => ({
    gsi1pk: 'NOVITAMIGRATIONS',
    gsi1sk: `${queuedAt}#${jobId}`,
    gsi2pk: `NOVITAMIGSTATUS#${status}`,
    gsi2sk: `${queuedAt}#${jobId}`,
  }),
  migrationsPk: 'NOVITAMIGRATIONS',
  migrationStatusPk: (status: string) => `NOVITAMIGSTATUS#${status}`,
  /** The one migration in flight: written with attribute_not_exists, deleted by its holder. */
  migrationLock: () => ({ pk: 'NOVITAMIGRATION', sk: 'LOCK' }),
  /** Counters: `MIGRATIONS` (finished executions); requests are the control plane's counters (observabilityKeys). */
  stats: (name: 'REQUESTS' | 'MIGRATIONS') => ({ pk: 'NOVITASTATS', sk: name }),
  /** One rate-limit window of one client and bucket; gone by TTL after the window. */
  /** A model burst: the instance rented for the model's queue, or why none is. */
  modelBurst: (modelId: string) => ({ pk: `NOVITAMODELBURST#${modelId}`, sk: 'META' }),
  /**
   * A burst's instance not given back yet (written before its record, removed after it is
   * terminated): what placement runs and the caps read, however many instances bursts ever rented.
   */
  liveBurst: (instanceId: string) => ({ pk: 'NOVITABURSTS', sk: instanceId }),
  liveBurstsPk: 'NOVITABURSTS',
  /** A burst's instance given back on that UTC day (`YYYY-MM-DD`): what that day's spend still counts. */
  endedBurst: (day: string, instanceId: string) => ({ pk: `NOVITABURSTENDED#${day}`, sk: instanceId }),
  endedBurstsPk: (day: string) => `NOVITABURSTENDED#${day}`,
  /**
   * A managed instance not retired yet (not terminated, migrated away, or gone from Novita), with
   * what the counts need: the schedule, the migration, the listing's total and /api/metrics read these.
   */
  liveInstance: (instanceId: string) => ({ pk: 'NOVITALIVE', sk: instanceId }),
  liveInstancesPk: 'NOVITALIVE',
  /** An instance retired at `retiredAt`, not yet folded into the totals (instanceTotals). */
  retiredInstance: (retiredAt: string, instanceId: string) => ({
    pk: 'NOVITARETIRED',
    sk: `${retiredAt}#${instanceId}`,
  }),
  retiredInstancesPk: 'NOVITARETIRED',
  /** Counts of the retired instances folded so far, and the last retired sort key folded. */
  instanceTotals: { pk: 'NOVITASTATS', sk: 'INSTANCES' },
  rateWindow: (bucket: string, ip: string, windowStart: number) => ({
    pk: `NOVITARATE#${bucket}#${ip}`,
    sk: String(windowStart),
  }),
} as const;

/** Fleet Commander clusters (groups of nodes) and vault credentials. */
export const fleetClusterKeys = {
  cluster: (clusterId: string) => ({ pk: `FLEETCLUSTER#${clusterId}`, sk: 'META' }),
  /** Uniqueness guard: one cluster per name. */
  clusterName: (name: string) => ({ pk: `FLEETCLUSTERNAME#${name}`, sk: 'NAME' }),
  /** gsi1: every cluster by name. */
  clustersIndex: (name: string) => ({ gsi1pk: 'FLEETCLUSTERS', gsi1sk: name }),
  clustersPk: 'FLEETCLUSTERS',
  /** A credential's metadata, keyed by its unique name; the password is a secret `vault/<id>`. */
  credential: (name: string) => ({ pk: `CRED#${name}`, sk: 'META' }),
  /** gsi1: every credential by id (list, and delete by id). */
  credentialsIndex: (credId: string) => ({ gsi1pk: 'CREDS', gsi1sk: credId }),
  credentialsPk: 'CREDS',
} as const;

/**
 * Container instance lookups and counters (appended; orchestrator/instance-counts.ts), kept where
 * an instance is created, changes status or its engine id, so no request reads every instance.
 */
export const instanceKeys = {
  /** Instances in each status, fleet-wide, in one of 8 shards (single-item ADDs). */
  fleetCount: (shard: number) => ({ pk: `INSTCOUNT#${shard}`, sk: 'LIVE' }),
  /** One image's instances in each status: its 8 shards in one partition, read by one query. */
  imageCount: (imageId: string, shard: number) => ({ pk: `INSTCOUNT#I#${imageId}`, sk: String(shard) }),
  imageCountPk: (imageId: string) => `INSTCOUNT#I#${imageId}`,
  /** An image's counts as its last reconcile read them (the bounded recount). */
  recount: (imageId: string) => ({ pk: 'INSTCOUNT#RECOUNT', sk: imageId }),
  /** A global service's copies on one node shard as its reconcile's chain counted them, beside its counters. */
  imagePass: (imageId: string, shard: number) => ({ pk: `INSTCOUNT#I#${imageId}`, sk: `PASS#${shard}` }),
  /** The engine's container id → the instance; by its first 12 characters (the shortest id a lookup takes). */
  containerId: (containerId: string) => ({ pk: `CONTAINERID#${containerId.slice(0, 12)}`, sk: containerId }),
  containerIdPk: (prefix: string) => `CONTAINERID#${prefix.slice(0, 12)}`,
  /** A copy that died (exited or failed) on its node, while it is, in its node's shard: the problems listing reads these. */
  deadCopy: (shard: number, nodeId: string, instanceId: string) => ({
    pk: `DEADCOPIES#${shard}`,
    sk: `${nodeId}#${instanceId}`,
  }),
  deadCopiesPk: (shard: number) => `DEADCOPIES#${shard}`,
} as const;

/** Swarm API names of services (appended); the service itself is `keys.service(imageId)`. */
export const swarmKeys = {
  /** Uniqueness guard: one service per name, pointing at its image. */
  serviceName: (name: string) => ({ pk: `SVCNAME#${name}`, sk: 'NAME' }),
} as const;

/** Swarm join tokens (appended): keyed by the token's SHA-256, gone by TTL (`expiresAt`). */
export const joinTokenKeys = {
  joinToken: (sha256: string) => ({ pk: `JOINTOKEN#${sha256}`, sk: 'META' }),
  /** gsi1: every join token by its public id (listing, revocation by id). */
  joinTokensIndex: (id: string) => ({ gsi1pk: 'JOINTOKENS', gsi1sk: id }),
  joinTokensPk: 'JOINTOKENS',
} as const;

/** WebSocket connections (appended): one record per live connection, gone by TTL if never removed. */
export const realtimeKeys = {
  connection: (connectionId: string) => ({ pk: `WSCONN#${connectionId}`, sk: 'META' }),
  /**
   * gsi1: the connections of one channel (`metrics`, `doctor`, `logs#<nodeId>`), for fan-out, by
   * expiry (epoch seconds, ten digits until 2286): a fan-out's key condition leaves expired records unread.
   */
  channelIndex: (channel: string, connectionId: string, expiresAt: number) => ({
    gsi1pk: `WSCHANNEL#${channel}`,
    gsi1sk: `${expiresAt}#${connectionId}`,
  }),
  channelPk: (channel: string) => `WSCHANNEL#${channel}`,
  /** The lowest gsi1sk of a channel's connection still live at `nowS`. */
  channelLiveFrom: (nowS: number) => String(nowS + 1),
  /** One item per followed container (`?container=` subscriptions): when its agent lease is next renewed. */
  followPk: 'WSFOLLOW',
  follow: (nodeId: string, instanceId: string) => ({ pk: 'WSFOLLOW', sk: `${nodeId}#${instanceId}` }),
  /** API Gateway closes a WebSocket after 2 hours at most; a record a little older is surely dead. */
  connectionTtlSeconds: 2 * 3600 + 600,
  /** Until when a connection can be open (the latest connection's expiry): the minute's push reads it, not the channels. */
  liveUntil: { pk: 'WSLIVE', sk: 'META' },
} as const;

/** Network scans (appended): the last scan of each subnet, and which subnet was scanned last. */
export const networkKeys = {
  /** One item per subnet (canonical CIDR): the scan in flight or last done, and the last devices found. */
  scan: (cidr: string) => ({ pk: `NETSCAN#${cidr}`, sk: 'META' }),
  /** Points at the subnet of the latest scan started, for GET /api/network/scan-status. */
  latest: () => ({ pk: 'NETSCAN', sk: 'LATEST' }),
} as const;

/** Fleet Commander maintenance (appended): one partition holds the switch, the run lock and the open problems. */
export const maintenanceKeys = {
  pk: 'MAINTENANCE',
  /** Whether the daily run acts, and what the last run did. */
  state: () => ({ pk: 'MAINTENANCE', sk: 'STATE' }),
  /** The run in flight: written with attribute_not_exists, deleted by its holder, taken over after its lease. */
  lock: () => ({ pk: 'MAINTENANCE', sk: 'LOCK' }),
  /** A problem seen and not yet gone, keyed by its stable id (a hash of node and type): when it was first seen. */
  problem: (problemId: string) => ({ pk: 'MAINTENANCE', sk: `PROBLEM#${problemId}` }),
  problemPrefix: 'PROBLEM#',
} as const;

/** Access control (appended): API keys by id (listing on gsi1), the audit log in one partition by time. */
export const accessKeys = {
  apiKey: (keyId: string) => ({ pk: `APIKEY#${keyId}`, sk: 'META' }),
  apiKeysIndex: (createdAt: string, keyId: string) => ({
    gsi1pk: 'APIKEYS',
    gsi1sk: `${createdAt}#${keyId}`,
  }),
  apiKeysPk: 'APIKEYS',
  auditPk: 'AUDIT',
  /** Time first: a query reads a time range, newest first. */
  audit: (at: string, requestId: string) => ({ pk: 'AUDIT', sk: `${at}#${requestId}` }),
} as const;

/** The control plane's own counters (functions/observability/counters.ts): one small item each, one partition. */
export const observabilityKeys = {
  pk: 'METRICS',
  http: (method: string, route: string) => `HTTP#${method} ${route}`,
  command: (type: string) => `CMD#${type}`,
  task: (outcome: string) => `TASK#${outcome}`,
  placements: 'PLACEMENTS',
  novitaCache: 'NOVITACACHE',
} as const;

/** The Install Queue (appended): one item per job, listed on gsi1 by creation; host keys trusted on first use. */
export const installKeys = {
  job: (jobId: string) => ({ pk: `INSTALLJOB#${jobId}`, sk: 'META' }),
  /** gsi1: every job by creation (the queue's order). */
  jobsIndex: (createdAt: string, jobId: string) => ({
    gsi1pk: 'INSTALLJOBS',
    gsi1sk: `${createdAt}#${jobId}`,
  }),
  jobsPk: 'INSTALLJOBS',
  /** The SSH host key first seen at `host:port`; a different one is refused until this is deleted. */
  hostKey: (host: string, port: number) => ({ pk: `HOSTKEY#${host.toLowerCase()}:${port}`, sk: 'META' }),
  /** One of a node's INSTALL_CONCURRENCY_PER_NODE install slots, held by the job running in it. */
  slot: (nodeId: string, n: number) => ({
    pk: `INSTALLSLOT#${nodeId}`,
    sk: `SLOT#${String(n).padStart(2, '0')}`,
  }),
} as const;

const utcHour = (ms: number) => new Date(ms).toISOString().slice(0, 13);

/**
 * Metric history (appended): one partition a node; an item 10 minutes of 1-minute points (`F#`, by
 * the window's UTC minute) and an item an hour of 5-minute averages (`A#`, by UTC hour), so ranges
 * read in order. `M1#` (an hour of 1-minute points) and `M5#` (six hours of 5-minute points):
 * the layout before, read until it expires.
 */
const utcMinute = (ms: number) => new Date(ms).toISOString().slice(0, 16);
export const metricHistoryKeys = {
  points: (nodeId: string, windowStartMs: number) => ({
    pk: `NODEMETRICS#${nodeId}`,
    sk: `F#${utcMinute(windowStartMs)}`,
  }),
  averages: (nodeId: string, hourStartMs: number) => ({
    pk: `NODEMETRICS#${nodeId}`,
    sk: `A#${utcHour(hourStartMs)}`,
  }),
  fine: (nodeId: string, hourStartMs: number) => ({
    pk: `NODEMETRICS#${nodeId}`,
    sk: `M1#${utcHour(hourStartMs)}`,
  }),
  coarse: (nodeId: string, spanStartMs: number) => ({
    pk: `NODEMETRICS#${nodeId}`,
    sk: `M5#${utcHour(spanStartMs)}`,
  }),
} as const;

/**
 * Task statistics by the hour (appended; functions/cluster/task-stats.ts), written when a task
 * finishes: a node's own (`NODESTATS#<nodeId>`), and the fleet's in shards (`TASKRATE#<0-7>`), by
 * UTC hour (`H#`) and minute (`M#`) so a range reads in order.
 */
export const statsKeys = {
  nodePk: (nodeId: string) => `NODESTATS#${nodeId}`,
  nodeHour: (nodeId: string, ms: number) => ({ pk: `NODESTATS#${nodeId}`, sk: `H#${utcHour(ms)}` }),
  fleetPk: (shard: number) => `TASKRATE#${shard}`,
  fleetHour: (shard: number, ms: number) => ({ pk: `TASKRATE#${shard}`, sk: `H#${utcHour(ms)}` }),
  fleetMinute: (shard: number, ms: number) => ({ pk: `TASKRATE#${shard}`, sk: `M#${utcMinute(ms)}` }),
  hourSk: (ms: number) => `H#${utcHour(ms)}`,
  minuteSk: (ms: number) => `M#${utcMinute(ms)}`,
} as const;

/**
 * Node addresses and Jetsons (appended; functions/nodes/address-index.ts), written at registration
 * and removed with the node, so the Network API, the install queue and GET /api/nodes/jetpack ask
 * the registry about an address, a subnet or the Jetsons without reading the fleet.
 */
export const nodeAddressKeys = {
  /**
   * One address of a node. IPv4 by its /16 (`a.b`), sorted by the address as 8 hex digits, so a
   * scanned subnet (a /22 at most) is one range of one partition; anything else under `other`.
   */
  address: (partition: string, sortable: string, nodeId: string) => ({
    pk: `NODEADDR#${partition}`,
    sk: `${sortable}#${nodeId}`,
  }),
  addressPk: (partition: string) => `NODEADDR#${partition}`,
  /** A Jetson by node name: GET /api/nodes/jetpack reads the first online. */
  jetson: (nodeName: string) => ({ pk: 'JETSONS', sk: nodeName }),
  jetsonsPk: 'JETSONS',
  /** An online Jetson by node name (written where its liveness changes): jetpack reads the first. */
  jetsonUp: (nodeName: string) => ({ pk: 'JETSONSUP', sk: nodeName }),
  jetsonsUpPk: 'JETSONSUP',
  /** A Jetson's short node name or host name, lowercased: a scanned device with that name is a Jetson. */
  jetsonName: (short: string, nodeId: string) => ({ pk: `JETSONNAME#${short}`, sk: nodeId }),
  jetsonNamePk: (short: string) => `JETSONNAME#${short}`,
  /** Written once the nodes registered before these keys have theirs (the first reader writes them). */
  indexed: { pk: 'NODEADDR', sk: 'INDEXED' },
} as const;
