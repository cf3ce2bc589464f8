import * as z from 'zod';
import { containerStartOutput, diskAuditOutput, enginePruneOutput, hostExecOutput } from './agent-api.js';
import { imageBuildOutput } from './build.js';
import { hostInstallOutput, INSTALL_NAME } from './install.js';
import { NETWORK_SCAN, networkScanOutput } from './network.js';
import { checkpointSpec } from './checkpoints.js';

/**
 * The agent commands, declared once: each entry names a command, the schema of what the control
 * plane sends and the schema of what a succeeded result's `output` carries. The agent's executor
 * must handle every entry (agent/commands.ts, checked by the compiler) and the control plane
 * applies results through its appliers keyed by the same names (functions/agent-api/command-appliers.ts).
 * A new command is an entry here plus those two halves.
 */

/** Resource asks for a container, in engine units. */
export const containerSpec = z.object({
  instanceId: z.string(),
  imageId: z.string(),
  name: z.string(),
  kind: z.enum(['service', 'run', 'model']),
  command: z.array(z.string()).optional(),
  env: z.record(z.string(), z.string()).default({}),
  /** Host port 0 lets the engine pick. */
  ports: z
    .array(
      z.object({
        containerPort: z.number().int(),
        hostPort: z.number().int().default(0),
        /** Host address to bind; the agent binds 127.0.0.1 when none is given. */
        hostIp: z.union([z.ipv4(), z.ipv6()]).optional(),
        protocol: z.enum(['tcp', 'udp']).default('tcp'),
      }),
    )
    .default([]),
  volumes: z
    .array(
      z.object({ hostPath: z.string(), containerPath: z.string(), readOnly: z.boolean().default(false) }),
    )
    .default([]),
  cpuLimit: z.number().positive().optional(),
  memoryLimitMb: z.number().positive().optional(),
  diskLimitGb: z.number().positive().optional(),
  gpus: z.union([z.literal('all'), z.number().int().nonnegative()]).optional(),
  /** Which GPUs (indexes or UUIDs, as nvidia-smi lists them) instead of a count. */
  gpuDeviceIds: z
    .array(z.string().regex(/^[A-Za-z0-9-]{1,64}$/))
    .max(16)
    .optional(),
  labels: z.record(z.string(), z.string()).default({}),
  /** Host-level access; each needs the node's own policy to allow it (agent/policy.ts). */
  privileged: z.boolean().optional(),
  network: z.literal('host').optional(),
  pid: z.literal('host').optional(),
  capAdd: z
    .array(z.string().regex(/^[A-Za-z_]{1,64}$/))
    .max(64)
    .optional(),
  /** Start again on failure (services) or never (training runs report their exit). */
  restart: z.enum(['no', 'on-failure', 'always']).default('no'),
  /** A training run's checkpoint folder, synced to the artifacts store by the agent. */
  checkpoint: checkpointSpec.optional(),
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

/** A container as the agent describes it after acting on it (the heartbeat fills any gap). */
const containerDescription = containerStartOutput;

const notFound = z.object({ found: z.literal(false), instanceId: z.string() });

/** Declares one command: its input fields (besides `type`) and its output. */
function declare<T extends string, S extends z.ZodRawShape, O extends z.ZodType>(
  type: T,
  input: S,
  output: O,
) {
  return { type, input: z.object({ type: z.literal(type), ...input }), output };
}

export const COMMANDS = {
  'container.start': declare(
    'container.start',
    { spec: containerSpec },
    containerDescription.extend({ reused: z.boolean().optional() }),
  ),
  'container.stop': declare(
    'container.stop',
    { instanceId: z.string(), timeoutSeconds: z.number().int().default(10) },
    z.union([notFound, containerDescription.extend({ found: z.literal(true) })]),
  ),
  'container.remove': declare(
    'container.remove',
    { instanceId: z.string(), force: z.boolean().default(false) },
    z.object({
      found: z.boolean(),
      removed: z.boolean(),
      instanceId: z.string(),
      containerId: z.string().optional(),
    }),
  ),
  'container.update': declare(
    'container.update',
    {
      instanceId: z.string(),
      cpuLimit: z.number().positive().optional(),
      memoryLimitMb: z.number().positive().optional(),
      diskLimitGb: z.number().positive().optional(),
    },
    containerDescription.extend({ method: z.enum(['update', 'recreate']), previousContainerId: z.string() }),
  ),
  'container.logs': declare(
    'container.logs',
    { instanceId: z.string(), tail: z.number().int().positive().default(100) },
    z.object({ containerId: z.string(), instanceId: z.string(), logs: z.string(), truncated: z.boolean() }),
  ),
  /**
   * Streams the container's new output lines as `container.output` events for `seconds` (a lease the
   * control plane renews while someone watches); a repeat only extends the lease. Answers the last
   * `tail` lines, for the subscriber that asked.
   */
  'container.follow': declare(
    'container.follow',
    {
      instanceId: z.string(),
      seconds: z.number().int().min(10).max(900).default(120),
      tail: z.number().int().min(0).max(1000).default(50),
    },
    z.object({
      containerId: z.string(),
      instanceId: z.string(),
      /** false: it was already followed, and only the lease moved. */
      started: z.boolean(),
      until: z.string(),
      logs: z.string(),
    }),
  ),
  /** Stops (if running) and starts the same container: same id, same limits, same ports. */
  'container.restart': declare(
    'container.restart',
    { instanceId: z.string(), timeoutSeconds: z.number().int().default(10) },
    containerDescription,
  ),
  /** Runs an inference task against the node's model server and reports progress and result as events. */
  'task.run': declare(
    'task.run',
    {
      taskId: z.string(),
      model: z.string(),
      server: containerSpec,
      /** Path and JSON body of the model server's API call. */
      request: z.object({ path: z.string(), body: z.unknown() }),
      timeoutSeconds: z.number().int().positive().default(600),
    },
    z.object({ taskId: z.string(), accepted: z.boolean(), alreadyRunning: z.boolean() }),
  ),
  'task.cancel': declare(
    'task.cancel',
    {
      taskId: z.string(),
      /**
       * The task.run it cancels. Commands to a node are not ordered: a cancel that arrives before
       * its run keeps that run from starting, and never touches a later run of the same task.
       */
      runCommandId: z.string().optional(),
    },
    z.object({ taskId: z.string(), cancelled: z.boolean() }),
  ),
  /**
   * Builds the folder of `dockerfilePath` (the build context, inside the agent's --build-root),
   * tags it `image` and pushes it; refused unless the agent was started with --build-root.
   */
  'image.build': declare(
    'image.build',
    {
      /** `<registry>/<name>:<tag>`. */
      image: z.string().min(1).max(512),
      dockerfilePath: z.string().min(1).max(4096),
      buildArgs: z.record(z.string(), z.string()).default({}),
      push: z.boolean().default(true),
      /** The registry speaks plain HTTP: Podman pushes with tlsVerify=false (Docker allows 127.0.0.0/8 anyway). */
      insecureRegistry: z.boolean().default(false),
      timeoutSeconds: z
        .number()
        .int()
        .positive()
        .max(4 * 3600)
        .default(3600),
    },
    imageBuildOutput,
  ),
  /** TCP connect probes of `ports` on every address of `subnet` (IPv4, /22 at most), MACs from ARP. */
  'network.scan': declare(
    'network.scan',
    {
      subnet: z.string().min(1).max(64),
      ports: z
        .array(z.number().int().min(1).max(65535))
        .min(1)
        .max(NETWORK_SCAN.maxPorts)
        .default([...NETWORK_SCAN.defaultPorts]),
    },
    networkScanOutput,
  ),
  /**
   * Removes this node's stopped containers that carry the agent's labels (exits already reported)
   * and the engine's dangling images; nothing else.
   */
  'engine.prune': declare('engine.prune', {}, enginePruneOutput),
  /** Filesystem usage of the engine's root and the agent's state folder, and the engine's own disk usage. */
  'disk.audit': declare('disk.audit', {}, diskAuditOutput),
  /** Runs `/bin/sh -c command` on the host; refused unless the agent was started with --allow-exec. */
  'host.exec': declare(
    'host.exec',
    {
      command: z.string().min(1).max(HOST_EXEC.maxCommandChars),
      timeoutSeconds: z
        .number()
        .int()
        .min(1)
        .max(HOST_EXEC.maxTimeoutSeconds)
        .default(HOST_EXEC.defaultTimeoutSeconds),
    },
    hostExecOutput,
  ),
  /**
   * Installs the agent on another host over SSH (the Install Queue). The login and the join
   * token are fetched by the agent for this command id (POST /agent/install/{id}/credential),
   * never carried here. `hostKey`: the key stored for the host (trust on first use); absent, the
   * one presented is accepted and reported.
   */
  'host.install': declare(
    'host.install',
    {
      jobId: z.string().min(1).max(64),
      host: z.string().min(1).max(253),
      port: z.number().int().min(1).max(65535).default(22),
      cluster: z.string().max(128).optional(),
      /** The new node's name; default: the host's own hostname. */
      nodeName: z.string().regex(INSTALL_NAME).optional(),
      hostKey: z.string().max(16 * 1024).optional(),
      /** The control plane as the host must reach it; default: the URL this agent uses. */
      controlPlaneUrl: z.string().url().optional(),
      /** How long to wait for the new agent to register. */
      joinTimeoutSeconds: z.number().int().min(5).max(900).default(120),
    },
    hostInstallOutput,
  ),
} as const;

type Commands = typeof COMMANDS;
export type CommandType = keyof Commands;
/** One command as sent, of type T. */
export type CommandOf<T extends CommandType> = z.infer<Commands[T]['input']>;
/** What a succeeded command of type T reports as its `output`. */
export type CommandOutput<T extends CommandType> = z.input<Commands[T]['output']>;

const [first, ...rest] = Object.values(COMMANDS).map((c) => c.input);
export const command = z.discriminatedUnion('type', [first!, ...rest] as unknown as [
  Commands[CommandType]['input'],
  ...Commands[CommandType]['input'][],
]);
export type Command = { [T in CommandType]: CommandOf<T> }[CommandType];
export const COMMAND_TYPES = Object.keys(COMMANDS) as CommandType[];

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
