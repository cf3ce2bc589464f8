import * as z from 'zod';
import { NETWORK_SCAN } from './network.js';

/**
 * The wire contract between the control plane and the node agent. Both sides import these
 * schemas; nothing else crosses between them.
 *
 * Flow: the agent registers (POST /agent/register) and gets a node id, a credential and its
 * command channel; it heartbeats (POST /agent/heartbeat) with metrics and container states;
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

export const gpuSchema = z.object({
  index: z.number().int(),
  uuid: z.string().nullable(),
  name: z.string(),
  utilizationGpu: z.number().nullable(),
  utilizationMemory: z.number().nullable(),
  memoryTotalMiB: z.number().nullable(),
  memoryUsedMiB: z.number().nullable(),
  memoryFreeMiB: z.number().nullable(),
  temperatureC: z.number().nullable(),
  powerDrawW: z.number().nullable(),
  powerLimitW: z.number().nullable(),
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

export const registerRequest = z.object({
  nodeName: z.string().min(1).max(128).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, . _ -'),
  hostname: z.string(),
  addresses: z.array(z.string()).default([]),
  arch: z.string(),
  os: z.string(),
  cpuCount: z.number().int().positive(),
  cpuModel: z.string().optional(),
  memoryMb: z.number().nonnegative(),
  diskGb: z.number().nonnegative(),
  gpus: z.array(gpuSchema).default([]),
  jetson: jetsonSchema.nullable().optional(),
  labels: z.record(z.string(), z.string()).default({}),
  cluster: z.string().optional(),
  agentVersion: z.string(),
  /** Engine facts the control plane plans around (Podman lacks container update, for one). */
  engine: z.object({ name: z.string(), version: z.string(), gpuRuntime: z.boolean().default(false) }).optional(),
});
export type RegisterRequest = z.infer<typeof registerRequest>;

export const commandChannel = z.discriminatedUnion('type', [
  z.object({ type: z.literal('http') }),
  z.object({ type: z.literal('sqs'), queueUrl: z.string(), endpoint: z.string().optional(), region: z.string() }),
]);
export type CommandChannel = z.infer<typeof commandChannel>;

export const registerResponse = z.object({
  nodeId: z.string(),
  /** Bearer credential for every later agent call; shown once, stored hashed. */
  token: z.string(),
  channel: commandChannel,
  heartbeatIntervalSeconds: z.number().int().positive(),
});
export type RegisterResponse = z.infer<typeof registerResponse>;

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
  ports: z.array(z.object({ containerPort: z.number().int(), hostPort: z.number().int(), protocol: z.string() })).default([]),
  stats: containerStats.nullable().optional(),
  labels: z.record(z.string(), z.string()).default({}),
});
export type ContainerState = z.infer<typeof containerState>;

export const nodeMetrics = z.object({
  cpuPercent: z.number().nullable(),
  memoryUsedMb: z.number().nullable(),
  memoryTotalMb: z.number().nullable(),
  diskUsedGb: z.number().nullable(),
  diskTotalGb: z.number().nullable(),
  gpus: z.array(gpuSchema).default([]),
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

/** Resource asks for a container, in engine units. */
export const containerSpec = z.object({
  instanceId: z.string(),
  imageId: z.string(),
  name: z.string(),
  kind: z.enum(['service', 'run', 'model']),
  command: z.array(z.string()).optional(),
  env: z.record(z.string(), z.string()).default({}),
  /** Host port 0 lets the engine pick. */
  ports: z.array(z.object({ containerPort: z.number().int(), hostPort: z.number().int().default(0), protocol: z.enum(['tcp', 'udp']).default('tcp') })).default([]),
  volumes: z.array(z.object({ hostPath: z.string(), containerPath: z.string(), readOnly: z.boolean().default(false) })).default([]),
  cpuLimit: z.number().positive().optional(),
  memoryLimitMb: z.number().positive().optional(),
  diskLimitGb: z.number().positive().optional(),
  gpus: z.union([z.literal('all'), z.number().int().nonnegative()]).optional(),
  labels: z.record(z.string(), z.string()).default({}),
  /** Start again on failure (services) or never (training runs report their exit). */
  restart: z.enum(['no', 'on-failure', 'always']).default('no'),
});
export type ContainerSpec = z.infer<typeof containerSpec>;

/** Bounds of host.exec; the agent enforces them too, whatever the control plane sent. */
export const HOST_EXEC = {
  defaultTimeoutSeconds: 30,
  maxTimeoutSeconds: 120,
  /** Per stream; the end of the output is kept. */
  maxOutputBytes: 64 * 1024,
  maxCommandChars: 16 * 1024,
} as const;

export const command = z.discriminatedUnion('type', [
  z.object({ type: z.literal('container.start'), spec: containerSpec }),
  z.object({ type: z.literal('container.stop'), instanceId: z.string(), timeoutSeconds: z.number().int().default(10) }),
  z.object({ type: z.literal('container.remove'), instanceId: z.string(), force: z.boolean().default(false) }),
  z.object({
    type: z.literal('container.update'),
    instanceId: z.string(),
    cpuLimit: z.number().positive().optional(),
    memoryLimitMb: z.number().positive().optional(),
    diskLimitGb: z.number().positive().optional(),
  }),
  z.object({ type: z.literal('container.logs'), instanceId: z.string(), tail: z.number().int().positive().default(100) }),
  /** Stops (if running) and starts the same container: same id, same limits, same ports. */
  z.object({ type: z.literal('container.restart'), instanceId: z.string(), timeoutSeconds: z.number().int().default(10) }),
  /** Runs an inference task against the node's model server and reports progress and result as events. */
  z.object({
    type: z.literal('task.run'),
    taskId: z.string(),
    model: z.string(),
    server: containerSpec,
    /** Path and JSON body of the model server's API call. */
    request: z.object({ path: z.string(), body: z.unknown() }),
    timeoutSeconds: z.number().int().positive().default(600),
  }),
  z.object({ type: z.literal('task.cancel'), taskId: z.string() }),
  /**
   * Builds the folder of `dockerfilePath` (the build context, inside the agent's --build-root),
   * tags it `image` and pushes it; refused unless the agent was started with --build-root.
   */
  z.object({
    type: z.literal('image.build'),
    /** `<registry>/<name>:<tag>`. */
    image: z.string().min(1).max(512),
    dockerfilePath: z.string().min(1).max(4096),
    buildArgs: z.record(z.string(), z.string()).default({}),
    push: z.boolean().default(true),
    /** The registry speaks plain HTTP: Podman pushes with tlsVerify=false (Docker allows 127.0.0.0/8 anyway). */
    insecureRegistry: z.boolean().default(false),
    timeoutSeconds: z.number().int().positive().max(4 * 3600).default(3600),
  }),
  /** TCP connect probes of `ports` on every address of `subnet` (IPv4, /22 at most), MACs from ARP. */
  z.object({
    type: z.literal('network.scan'),
    subnet: z.string().min(1).max(64),
    ports: z
      .array(z.number().int().min(1).max(65535))
      .min(1)
      .max(NETWORK_SCAN.maxPorts)
      .default([...NETWORK_SCAN.defaultPorts]),
  }),
  /**
   * Removes this node's stopped containers that carry the agent's labels (exits already reported)
   * and the engine's dangling images; nothing else.
   */
  z.object({ type: z.literal('engine.prune') }),
  /** Filesystem usage of the engine's root and the agent's state folder, and the engine's own disk usage. */
  z.object({ type: z.literal('disk.audit') }),
  /** Runs `/bin/sh -c command` on the host; refused unless the agent was started with --allow-exec. */
  z.object({
    type: z.literal('host.exec'),
    command: z.string().min(1).max(HOST_EXEC.maxCommandChars),
    timeoutSeconds: z.number().int().min(1).max(HOST_EXEC.maxTimeoutSeconds).default(HOST_EXEC.defaultTimeoutSeconds),
  }),
]);
export type Command = z.infer<typeof command>;

/** What travels on a node's command channel. */
export const commandEnvelope = z.object({
  commandId: z.string(),
  nodeId: z.string(),
  issuedAt: z.string(),
  command,
});
export type CommandEnvelope = z.infer<typeof commandEnvelope>;

export const commandResult = z.object({
  status: z.enum(['succeeded', 'failed']),
  /** Command-specific output: container id and ports for a start, log text for logs. */
  output: z.record(z.string(), z.unknown()).default({}),
  error: z.string().optional(),
});
export type CommandResult = z.infer<typeof commandResult>;

export const agentEvent = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('container.exited'),
    instanceId: z.string(),
    kind: z.enum(['service', 'run', 'model']),
    exitCode: z.number().int().nullable(),
    logTail: z.string().default(''),
    at: z.string(),
  }),
  z.object({ type: z.literal('task.progress'), taskId: z.string(), progress: z.number().min(0).max(100), at: z.string() }),
  z.object({
    type: z.literal('task.finished'),
    taskId: z.string(),
    status: z.enum(['completed', 'failed', 'cancelled']),
    result: z.record(z.string(), z.unknown()).optional(),
    /** Files produced (images), uploaded separately as base64 here for the embedded case. */
    files: z.array(z.object({ name: z.string(), contentType: z.string(), base64: z.string() })).default([]),
    error: z.string().optional(),
    at: z.string(),
  }),
]);
export type AgentEvent = z.infer<typeof agentEvent>;

export const agentEventsRequest = z.object({ events: z.array(agentEvent).min(1).max(100) });
