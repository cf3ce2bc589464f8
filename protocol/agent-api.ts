import * as z from 'zod';

/**
 * Agent HTTP shapes that protocol.ts does not carry yet (the HTTP command channel, heartbeat
 * answer, the outputs of container.start, engine.prune, disk.audit and host.exec). Schemas only,
 * so the agent can import them as well.
 */

/** GET /agent/commands?wait=&max= */
export const pollQuery = z.object({
  /** Long-poll seconds, like SQS WaitTimeSeconds. */
  wait: z.coerce.number().int().min(0).max(20).default(20),
  max: z.coerce.number().int().min(1).max(10).default(10),
});

/** `body` is the message exactly as on the queue (a JSON CommandEnvelope), as SQS would hand it over. */
export const pollResponse = z.object({
  messages: z.array(z.object({ receiptHandle: z.string(), body: z.string() })),
});
export type PollResponse = z.infer<typeof pollResponse>;

/** POST /agent/commands/ack: deletes delivered messages from the node's queue. */
export const ackRequest = z.object({ receiptHandles: z.array(z.string().min(1)).min(1).max(10) });

export const heartbeatResponse = z.object({
  ok: z.literal(true),
  nodeId: z.string(),
  status: z.literal('online'),
  heartbeatIntervalSeconds: z.number().int().positive(),
});

/**
 * What the control plane reads from a succeeded container.start or container.update result's
 * `output` (the agent's container description; all optional: the next heartbeat fills gaps).
 */
export const containerStartOutput = z.looseObject({
  containerId: z.string().optional(),
  state: z.string().optional(),
  exitCode: z.number().int().nullable().optional(),
  ports: z
    .array(
      z.object({
        containerPort: z.number().int(),
        hostPort: z.number().int(),
        protocol: z.string().default('tcp'),
      }),
    )
    .optional(),
  startedAt: z.string().optional(),
});

/** A succeeded engine.prune's `output`. */
export const enginePruneOutput = z.object({
  containersRemoved: z.array(
    z.object({
      containerId: z.string(),
      name: z.string(),
      instanceId: z.string(),
      kind: z.string(),
      state: z.string(),
    }),
  ),
  /** Stopped managed containers left alone, and why (an exit not reported yet, a refusal by the engine). */
  containersSkipped: z.array(z.object({ containerId: z.string(), name: z.string(), reason: z.string() })),
  imagesDeleted: z.array(z.string()),
  spaceReclaimedBytes: z.number(),
});
export type EnginePruneOutput = z.infer<typeof enginePruneOutput>;

/** A succeeded disk.audit's `output`. */
export const diskAuditOutput = z.object({
  /** statfs of the engine's root folder and of the agent's state folder; `error` when one cannot be read. */
  filesystems: z.array(
    z.object({
      role: z.enum(['engine_root', 'state_dir']),
      path: z.string().nullable(),
      totalBytes: z.number().optional(),
      usedBytes: z.number().optional(),
      /** Free to unprivileged users (f_bavail). */
      freeBytes: z.number().optional(),
      usedPercent: z.number().optional(),
      error: z.string().optional(),
    }),
  ),
  /** The engine's own accounting (docker system df); null with `engineError` when it failed. */
  engine: z
    .object({
      name: z.string(),
      rootDir: z.string().nullable(),
      layersSizeBytes: z.number(),
      images: z.object({ count: z.number(), sizeBytes: z.number(), reclaimableBytes: z.number() }),
      containers: z.object({ count: z.number(), sizeBytes: z.number(), reclaimableBytes: z.number() }),
      volumes: z.object({ count: z.number(), sizeBytes: z.number() }),
      buildCacheBytes: z.number(),
    })
    .nullable(),
  engineError: z.string().optional(),
});
export type DiskAuditOutput = z.infer<typeof diskAuditOutput>;

/**
 * A host.exec's `output`. The command ran (whatever its exit status, or killed at its timeout):
 * the result is `succeeded`; `failed` means it never ran (refused, or the shell could not start).
 */
export const hostExecOutput = z.object({
  stdout: z.string(),
  stderr: z.string(),
  /** The exit code, or 128 + the signal number when a signal ended it (as a shell reports it). */
  exitStatus: z.number().int().nullable(),
  signal: z.string().nullable(),
  timedOut: z.boolean(),
  /** Output beyond HOST_EXEC.maxOutputBytes was dropped from the start of that stream. */
  truncated: z.object({ stdout: z.boolean(), stderr: z.boolean() }),
  durationMs: z.number(),
});
export type HostExecOutput = z.infer<typeof hostExecOutput>;

/** `output.errorType` of a host.exec the agent refused because it was not started with --allow-exec. */
export const EXEC_DISABLED = 'ExecDisabledError';

/**
 * `output.errorType` of a container.start the node refused for what was asked, not for a passing
 * fault: retrying the same request there can only fail again (a disk limit the storage driver
 * cannot enforce, GPUs without a GPU runtime, the node's own policy).
 */
export const START_REFUSALS: readonly string[] = [
  'DiskLimitUnsupportedError',
  'GpuUnsupportedError',
  'NodePolicyError',
  'ProcessDriverRefusal',
];

/** POST /agent/stopping: the node reads offline until its agent registers again. */
export const stoppingResponse = z.object({
  ok: z.literal(true),
  nodeId: z.string(),
  status: z.literal('offline'),
});
