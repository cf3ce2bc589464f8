import * as z from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', ''])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** Every setting the control plane reads, validated once. Nothing else reads process.env. */
export const configSchema = z.object({
  /** AWS endpoint (moto, LocalStack). Unset in Lambda (real AWS) and in the embedded local mode. */
  AWS_ENDPOINT_URL: z.string().url().optional(),
  AWS_REGION: z.string().default('us-east-1'),
  TABLE_NAME: z.string().min(1).default('fleet'),
  /** Prefix of every queue name this deployment owns. */
  QUEUE_PREFIX: z.string().default('fleet-'),
  SCHEDULE_GROUP: z.string().min(1).default('fleet'),
  /** Where EventBridge Scheduler delivers firings (SQS ARN) and the role it assumes. */
  SCHEDULE_TARGET_ARN: z.string().optional(),
  SCHEDULE_ROLE_ARN: z.string().optional(),
  ARTIFACTS_BUCKET: z.string().default('fleet-artifacts'),
  /** SSM parameter name prefix for secrets (SecureString). */
  SECRETS_PREFIX: z.string().default('/fleet/'),
  CORS_ORIGINS: z
    .string()
    .default('http://localhost:3000,http://127.0.0.1:3000')
    .transform((s) =>
      s
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean),
    ),
  /** When true every non-public route needs `Authorization: Bearer <api key>`; the key lives in SSM. */
  API_AUTH: bool.default(false),
  LOG_LEVEL: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT']).default('INFO'),
  SERVICE_NAME: z.string().default('gpu-fleet-control-plane'),
  /** A node is offline when its last heartbeat is older than this. */
  NODE_OFFLINE_AFTER_SECONDS: z.coerce.number().int().positive().default(30),
  /** How long a call that changes containers waits for agents before answering 202 (below API Gateway's 29 s). */
  COMMAND_WAIT_MS: z.coerce.number().int().min(0).max(25_000).default(20_000),
  /** Folder holding the Swagger UI and ReDoc files; resolved from node_modules when unset. */
  DOCS_ASSETS_DIR: z.string().optional(),
  MAX_BODY_BYTES: z.coerce.number().int().positive().default(1024 * 1024),
});

export type Config = z.output<typeof configSchema>;

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable means unset, as shells and .env files commonly write it.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = configSchema.safeParse(present);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}
