import * as z from 'zod';
import { reportedPolicy } from './policy.js';

/**
 * The wire contract between the control plane and the node agent. Both sides import these
 * schemas; nothing else crosses between them.
 *
 * Flow: the agent registers (POST /agent/register) and gets a node id, a credential and its
 * command channel (its SQS queue: the agent reads it with credentials from POST /agent/credentials); it heartbeats (POST /agent/heartbeat) with metrics and container states;
 * it receives commands (its SQS queue, or GET /agent/commands when the control plane is
 * embedded), executes each at most once, reports the result (POST /agent/commands/{id}/result)
 * and acknowledges the delivery. Asynchronous happenings (a container exited, task progress)
 * go to POST /agent/events.
 */

/** Labels the agent puts on every container it creates; it touches no container without them. */
export const LABELS = {
  managed: 'fleet.managed',
  node: 'fleet.node',
  instance: 'fleet.instance',
  image: 'fleet.image',
  command: 'fleet.command',
  /** What the container serves: `service` (desired count), `run` (training run), `model` (model server). */
  kind: 'fleet.kind',
  run: 'fleet.run',
  model: 'fleet.model',
} as const;

/**
 * Ids a node sends back that become parts of storage keys (task ids): one path segment, no
 * traversal. The control plane issues them as UUIDs.
 */
export const wireId = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/,
    'an id: letters, digits, ".", "_", ":", "-"; no path separators',
  )
  .refine((s) => !s.includes('..'), 'an id may not contain ".."');

/** A file a task produced: its name is the model server's, kept only as a hint (never a storage key). */
const taskFile = z.object({
  name: z.string().max(1024),
  contentType: z.string().max(1024),
  base64: z.string(),
});

/**
 * Physical ceilings far above any machine, so fleet-wide sums stay exact numbers (below 2^53)
 * even at 100,000 nodes.
 */
const MAX_GPU_MIB = 10_000_000;
const MAX_CPUS = 16_384;
const MAX_MEMORY_MB = 1_000_000_000;
const MAX_DISK_GB = 10_000_000;
const MAX_GPUS = 64;

export const gpuSchema = z.object({
  index: z.number().int(),
  uuid: z.string().nullable(),
  name: z.string(),
  utilizationGpu: z.number().nullable(),
  utilizationMemory: z.number().nullable(),
  memoryTotalMiB: z.number().max(MAX_GPU_MIB).nullable(),
  memoryUsedMiB: z.number().max(MAX_GPU_MIB).nullable(),
  memoryFreeMiB: z.number().max(MAX_GPU_MIB).nullable(),
  temperatureC: z.number().nullable(),
  powerDrawW: z.number().nullable(),
  powerLimitW: z.number().nullable(),
  /** SM clock (MHz); older agents leave it out. */
  clockSmMHz: z.number().nullable().optional(),
  driverVersion: z.string().nullable().optional(),
});
export type Gpu = z.infer<typeof gpuSchema>;

export const jetsonSchema = z.object({
  l4t: z.string().nullable(),
  jetpack: z.string().nullable(),
  cuda: z.string().nullable(),
  cudnn: z.string().nullable(),
  model: z.string().nullable().optional(),
});
export type JetsonInfo = z.infer<typeof jetsonSchema>;

export const NODE_DRIVERS = ['container', 'process'] as const;
export type NodeDriver = (typeof NODE_DRIVERS)[number];

export const registerRequest = z.object({
  nodeName: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, . _ -'),
  hostname: z.string(),
  addresses: z.array(z.string()).default([]),
  arch: z.string(),
  os: z.string(),
  cpuCount: z.number().int().positive().max(MAX_CPUS),
  cpuModel: z.string().optional(),
  memoryMb: z.number().nonnegative().max(MAX_MEMORY_MB),
  diskGb: z.number().nonnegative().max(MAX_DISK_GB),
  gpus: z.array(gpuSchema).max(MAX_GPUS).default([]),
  jetson: jetsonSchema.nullable().optional(),
  labels: z.record(z.string(), z.string()).default({}),
  cluster: z.string().optional(),
  agentVersion: z.string(),
  /** Engine facts the control plane plans around (Podman lacks container update, for one). */
  engine: z
    .object({ name: z.string(), version: z.string(), gpuRuntime: z.boolean().default(false) })
    .optional(),
  /**
   * What this node lets containers do (protocol/policy.ts). It is fixed for the agent's life and
   * the agent registers on every start, so each registration carries the one in force; older
   * agents leave it out (the control plane then leaves the judgement to the node).
   */
  policy: reportedPolicy.optional(),
  /**
   * What runs a start: `container` (Docker/Podman; older agents leave it out) or `process` (the
   * start's command as a process group, no image: hosts without a container engine).
   */
  driver: z.enum(NODE_DRIVERS).optional(),
});
export type RegisterRequest = z.infer<typeof registerRequest>;

/** `sqs`: the node's own queue, read with credentials from POST /agent/credentials (a node holds no AWS keys). */
export const commandChannel = z.discriminatedUnion('type', [
  z.object({ type: z.literal('http') }),
  z.object({
    type: z.literal('sqs'),
    queueUrl: z.string(),
    endpoint: z.string().optional(),
    region: z.string(),
  }),
]);
export type CommandChannel = z.infer<typeof commandChannel>;

/**
 * POST /agent/credentials: short-lived AWS credentials for the node's own queue (the sqs channel),
 * vended by the control plane so a node needs no AWS identity of its own. Ask again before `expiration`.
 */
export const queueCredentials = z.object({
  accessKeyId: z.string(),
  secretAccessKey: z.string(),
  sessionToken: z.string(),
  /** ISO 8601. */
  expiration: z.string(),
  region: z.string(),
  queueUrl: z.string(),
  endpoint: z.string().optional(),
});
export type QueueCredentialsResponse = z.infer<typeof queueCredentials>;

export const registerResponse = z.object({
  nodeId: z.string(),
  /** Bearer credential for every later agent call; shown once, stored hashed. */
  token: z.string(),
  channel: commandChannel,
  heartbeatIntervalSeconds: z.number().int().positive(),
});
export type RegisterResponse = z.infer<typeof registerResponse>;

/** POST /agent/token/rotate: the node's new credential; the one presented stops working. */
export const rotateTokenResponse = z.object({ nodeId: z.string(), token: z.string() });

export const containerStats = z.object({
  cpuPercent: z.number().nullable(),
  memoryUsageMb: z.number().nullable(),
  memoryLimitMb: z.number().nullable(),
  memoryPercent: z.number().nullable(),
});

export const containerState = z.object({
  containerId: z.string(),
  name: z.string(),
  /** The control plane's id for this container (label fleet.instance). */
  instanceId: z.string(),
  imageId: z.string(),
  kind: z.enum(['service', 'run', 'model']).default('service'),
  /** Engine state: created, running, exited, dead, paused, restarting. */
  state: z.string(),
  exitCode: z.number().int().nullable().optional(),
  startedAt: z.string().nullable().optional(),
  ports: z
    .array(z.object({ containerPort: z.number().int(), hostPort: z.number().int(), protocol: z.string() }))
    .default([]),
  stats: containerStats.nullable().optional(),
  labels: z.record(z.string(), z.string()).default({}),
});
export type ContainerState = z.infer<typeof containerState>;

export const nodeMetrics = z.object({
  cpuPercent: z.number().nullable(),
  memoryUsedMb: z.number().max(MAX_MEMORY_MB).nullable(),
  memoryTotalMb: z.number().max(MAX_MEMORY_MB).nullable(),
  diskUsedGb: z.number().max(MAX_DISK_GB).nullable(),
  diskTotalGb: z.number().max(MAX_DISK_GB).nullable(),
  gpus: z.array(gpuSchema).max(MAX_GPUS).default([]),
  /** The parsed tegrastats line on a Jetson. */
  tegrastats: z.record(z.string(), z.unknown()).nullable().optional(),
});
export type NodeMetrics = z.infer<typeof nodeMetrics>;

export const heartbeatRequest = z.object({
  metrics: nodeMetrics,
  containers: z.array(containerState),
  /** Models resident on this node (model server containers running). */
  loadedModels: z.array(z.string()).default([]),
});
export type HeartbeatRequest = z.infer<typeof heartbeatRequest>;

export const agentEvent = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('container.exited'),
    instanceId: z.string(),
    kind: z.enum(['service', 'run', 'model']),
    exitCode: z.number().int().nullable(),
    logTail: z.string().default(''),
    at: z.string(),
  }),
  /** New output lines of a followed container (container.follow), batched and rate-limited by the agent. */
  z.object({
    type: z.literal('container.output'),
    instanceId: z.string(),
    lines: z.array(z.string().max(4096)).max(200),
    /** Lines left out since the last batch: the container wrote faster than the agent forwards. */
    dropped: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31)
      .default(0),
    at: z.string(),
  }),
  z.object({
    type: z.literal('task.progress'),
    taskId: wireId,
    progress: z.number().min(0).max(100),
    at: z.string(),
  }),
  z.object({
    type: z.literal('task.finished'),
    taskId: wireId,
    status: z.enum(['completed', 'failed', 'cancelled']),
    result: z.record(z.string(), z.unknown()).optional(),
    /** Files produced (images), uploaded separately as base64 here for the embedded case. */
    files: z.array(taskFile).default([]),
    error: z.string().optional(),
    /** The task.run this outcome ends: the control plane ignores the outcome of an earlier run. */
    runCommandId: z.string().optional(),
    at: z.string(),
  }),
]);
export type AgentEvent = z.infer<typeof agentEvent>;

export const agentEventsRequest = z.object({ events: z.array(agentEvent).min(1).max(100) });
