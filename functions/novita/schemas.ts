import * as z from 'zod';
import { displayName } from '../core/validation.js';
import { INSTANCE_STATUSES } from './status.js';

const required = (what: string, type: string) => ({
  error: (issue: { input?: unknown }) => (issue.input === undefined ? `${what} is required` : `${what} must be a ${type}`),
});

export const createBody = z.object({
  name: displayName(z.string(required('Instance name', 'string')).trim().min(1, 'Instance name must not be empty').max(255)),
  productName: z.string(required('Product name', 'string')).trim().min(1, 'Product name must not be empty').max(255),
  templateId: z.string(required('Template ID', 'string')).trim().min(1, 'Template ID must not be empty').max(255),
  gpuNum: z.number(required('gpuNum', 'number')).int().min(1, 'gpuNum must be between 1 and 8').max(8, 'gpuNum must be between 1 and 8').default(1),
  rootfsSize: z.number(required('rootfsSize', 'number')).int().min(10, 'rootfsSize must be at least 10 GB').max(6144, 'rootfsSize must be at most 6144 GB').default(60),
  region: z.string(required('region', 'string')).trim().min(1).max(64).default('CN-HK-01'),
  webhookUrl: z.url({ protocol: /^https?$/, error: 'webhookUrl must be an http(s) URL' }).max(2048).optional(),
  /** The instance runs the agent (process driver) and registers as a node named after the instance. */
  join_fleet: z.boolean({ error: 'join_fleet must be a boolean' }).optional(),
  cluster: z.string().trim().min(1).max(128).optional(),
  labels: z
    .record(z.string().regex(/^[A-Za-z0-9._/-]{1,63}$/, 'label keys: letters, digits, . _ / -'), z.string().max(256).regex(/^[^,=]*$/, 'label values may not hold , or ='))
    .refine((l) => Object.keys(l).length <= 32, 'at most 32 labels')
    .optional(),
  /** Spot billing for this instance (default: NOVITA_BILLING_MODE). */
  spot: z.boolean({ error: 'spot must be a boolean' }).optional(),
});

export const createResponse = z.object({
  instanceId: z.string(),
  status: z.literal('creating'),
  message: z.string(),
  estimatedReadyTime: z.string(),
});

export const instanceParams = z.object({ instanceId: z.string().min(1).max(128) });

const portMapping = z.object({ port: z.number(), endpoint: z.string(), type: z.string() });
const connection = z.object({ ssh: z.string().optional(), jupyter: z.string().optional(), webTerminal: z.string().optional() });
const statusEnum = z.enum(INSTANCE_STATUSES);

export const instanceResponse = z.object({
  id: z.string(),
  name: z.string(),
  status: statusEnum,
  gpuNum: z.number(),
  region: z.string(),
  productName: z.string(),
  templateId: z.string(),
  portMappings: z.array(portMapping),
  connectionDetails: connection,
  createdAt: z.string(),
  readyAt: z.string().optional(),
  failedAt: z.string().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  originalInstanceId: z.string().optional(),
  migratedTo: z.string().optional(),
  joinFleet: z.boolean().optional(),
  /** The product's price per GPU hour, in Novita's units (its products list's `price`, or `spotPrice` for spot). */
  pricePerHour: z.number(),
  spot: z.boolean(),
  /** The training job a burst rented it for. */
  burstFor: z.string().optional(),
  /** The model whose queue a model burst rented it for. */
  burstModel: z.string().optional(),
  /** When the control plane gave it back (burst: the job ended or its node was lost). */
  terminatedAt: z.string().optional(),
  /** The node it registered as (join_fleet); null until it has. */
  node: z.object({ id: z.string(), name: z.string(), status: z.string() }).nullable().optional(),
});

const page = (max: number, def: number) => ({
  limit: z.coerce.number().int().min(1).max(max).default(def),
  offset: z.coerce.number().int().min(0).default(0),
});

export const listQuery = z.object({
  status: statusEnum.optional(),
  ...page(1000, 50),
  /** The `cursor` of the page before: the next page without reading the instances skipped. */
  cursor: z.string().min(1).max(1024).optional(),
});

export const listResponse = z.object({
  instances: z.array(
    z.object({
      id: z.string(),
      name: z.string(),
      status: statusEnum,
      gpuNum: z.number(),
      region: z.string(),
      createdAt: z.string(),
      readyAt: z.string().optional(),
      /** The product's price per GPU hour, in Novita's units (its products list's `price`, or `spotPrice` for spot). */
      pricePerHour: z.number(),
      spot: z.boolean(),
      failedAt: z.string().optional(),
      terminatedAt: z.string().optional(),
    }),
  ),
  total: z.number(),
  limit: z.number(),
  offset: z.number(),
  /** Pass as ?cursor= for the next page; null on the last. */
  cursor: z.string().nullable(),
});

export const triggerBody = z
  .object({
    dryRun: z.boolean({ error: 'dryRun must be a boolean' }).optional(),
    maxMigrations: z.number({ error: 'maxMigrations must be a number' }).int().min(1, 'maxMigrations must be at least 1').max(1000).optional(),
  })
  .strict()
  .optional();

export const triggerResponse = z.object({
  jobId: z.string(),
  status: z.literal('queued'),
  message: z.string(),
  estimatedStartTime: z.string(),
  dryRun: z.boolean(),
});

export const historyQuery = z.object({
  status: z.enum(['queued', 'running', 'completed', 'failed']).optional(),
  ...page(100, 20),
});

const summary = z.object({
  totalInstances: z.number(),
  exitedInstances: z.number(),
  eligibleInstances: z.number(),
  migratedInstances: z.number(),
  skippedInstances: z.number(),
  errorCount: z.number(),
});

export const executionResponse = z.object({
  jobId: z.string(),
  status: z.enum(['queued', 'running', 'completed', 'failed']),
  triggeredBy: z.enum(['schedule', 'manual']),
  dryRun: z.boolean(),
  queuedAt: z.string(),
  startedAt: z.string().nullable(),
  completedAt: z.string().nullable(),
  duration: z.number().nullable(),
  summary,
  errors: z.array(z.object({ instanceId: z.string().optional(), code: z.string(), message: z.string() })),
  plan: z.array(z.object({ instanceId: z.string(), novitaInstanceId: z.string(), name: z.string() })).optional(),
  migrations: z.array(z.object({ instanceId: z.string(), newInstanceId: z.string() })).optional(),
});

export const historyResponse = z.object({
  executions: z.array(executionResponse),
  total: z.number(),
  limit: z.number(),
  offset: z.number(),
});

export const statusResponse = z.object({
  enabled: z.boolean(),
  lastExecution: z
    .object({
      jobId: z.string(),
      startedAt: z.string().nullable(),
      completedAt: z.string().nullable(),
      duration: z.number().nullable(),
      status: z.string(),
    })
    .nullable(),
  nextExecution: z.string().nullable(),
  statistics: z.object({
    totalExecutions: z.number(),
    successfulExecutions: z.number(),
    failedExecutions: z.number(),
    totalInstancesProcessed: z.number(),
    totalMigrations: z.number(),
    averageExecutionTime: z.number(),
  }),
  configuration: z.object({
    intervalMinutes: z.number(),
    maxConcurrent: z.number(),
    dryRunMode: z.boolean(),
    retryFailed: z.boolean(),
  }),
});

export const metricsResponse = z.object({
  requests: z.object({ total: z.number(), successful: z.number(), failed: z.number(), averageResponseTime: z.number() }),
  instances: z.record(z.string(), z.number()),
  jobs: z.object({ pending: z.number(), processing: z.number(), completed: z.number(), failed: z.number() }),
  cache: z.object({ hits: z.number(), misses: z.number(), hitRate: z.number() }),
  system: z.object({
    uptime: z.number(),
    memoryUsage: z.object({ used: z.number(), total: z.number(), percentage: z.number() }),
  }),
});
