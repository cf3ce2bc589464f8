import * as z from 'zod';

/**
 * Agent HTTP shapes that protocol.ts does not carry yet (the HTTP command channel, heartbeat
 * answer, container.start output). Schemas only, so the agent can import them as well.
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
