import * as z from 'zod';
import { parseAllowlist, staticUrlRefusal } from './outbound.js';

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
  /**
   * Signed-in users (functions/core/jwt.ts): a bearer JWT whose `iss` is this issuer (Cognito's
   * `https://cognito-idp.<region>.amazonaws.com/<pool id>`, or any OIDC issuer), signed by a key
   * of its JWKS, is let in with the role JWT_ROLE_CLAIM maps to. Unset: API keys only.
   */
  JWT_ISSUER: z.string().url().optional(),
  /** The `aud` (or Cognito access tokens' `client_id`) a token must carry; unset: not checked. */
  JWT_AUDIENCE: z.string().min(1).optional(),
  /** Where the issuer's keys are: a JWKS URL (default `<issuer>/.well-known/jwks.json`), outbound-checked like webhooks. */
  JWT_JWKS_URL: z.string().url().optional(),
  /** Or a JWKS file on this machine (read instead of the URL). */
  JWT_JWKS_FILE: z.string().min(1).optional(),
  /** The claim holding the caller's role or groups (a string or a list). */
  JWT_ROLE_CLAIM: z.string().min(1).default('cognito:groups'),
  /** `group=role` pairs (`fleet-admins=admin,fleet-ops=operator`); a claim value that is a role's own name maps to it. */
  JWT_ROLE_MAP: z
    .string()
    .default('')
    .refine(
      (text) =>
        text
          .split(',')
          .every((pair) => !pair.trim() || /^[^=]+=\s*(viewer|operator|admin)\s*$/.test(pair.trim())),
      'value=viewer|operator|admin pairs, comma-separated',
    ),
  LOG_LEVEL: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT']).default('INFO'),
  SERVICE_NAME: z.string().default('gpu-fleet-control-plane'),
  /**
   * Stored counters (/metrics) are flushed when this much time passed since the process's last
   * flush (0: every event); a read of /metrics or /api/metrics flushes the reading process first.
   */
  METRICS_FLUSH_SECONDS: z.coerce.number().min(0).max(300).default(10),
  /** Emit the counters as CloudWatch EMF lines (always on in Lambda). */
  METRICS_EMF: bool.default(false),
  /** A node is offline when its last heartbeat is older than this. */
  NODE_OFFLINE_AFTER_SECONDS: z.coerce.number().int().positive().default(90),
  /** The nodes sweep retires a node silent longer than this (default 7 days); 0: never. */
  NODE_RETIRE_AFTER_SECONDS: z.coerce
    .number()
    .int()
    .min(0)
    .default(7 * 24 * 3600),
  /** How often agents heartbeat; never more than a third of NODE_OFFLINE_AFTER_SECONDS (two beats may be lost). */
  NODE_HEARTBEAT_SECONDS: z.coerce.number().int().positive().default(30),
  /**
   * Node metrics are stored apart from liveness: a sample that moved at all is stored at most this
   * often; one that moved past NODE_METRICS_THRESHOLD_PERCENT, or whose containers or models changed, at once.
   */
  NODE_METRICS_INTERVAL_SECONDS: z.coerce.number().int().min(0).default(60),
  NODE_METRICS_THRESHOLD_PERCENT: z.coerce.number().min(0).max(100).default(10),
  /** How long a call that changes containers waits for agents before answering 202 (below API Gateway's 29 s). */
  COMMAND_WAIT_MS: z.coerce.number().int().min(0).max(25_000).default(20_000),
  /** Folder holding the Swagger UI and ReDoc files; resolved from node_modules when unset. */
  DOCS_ASSETS_DIR: z.string().optional(),
  /** Folder of what install.sh downloads (agent.mjs, node-<arch>.tar.gz, agent-image-<arch>.tar); `dist` when unset. */
  INSTALL_ASSETS_DIR: z.string().optional(),
  /** Where the install files live on AWS (objects `install/<file>`); GET /install/{file} redirects there. */
  INSTALL_ASSETS_BUCKET: z.string().optional(),
  MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  /** First wait before a copy that failed or exited is replaced; doubles per failure in a row, up to 5 minutes; 0: at once. */
  RESTART_BACKOFF_SECONDS: z.coerce.number().min(0).max(300).default(10),
  /**
   * Hosts, addresses and CIDR ranges outbound requests (webhooks) may reach although they are
   * loopback, private, link-local, metadata or multicast: `127.0.0.1,10.0.0.0/8,hooks.lan`.
   */
  OUTBOUND_ALLOWLIST: z
    .string()
    .default('')
    .superRefine((list, ctx) => {
      try {
        parseAllowlist(list);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
      }
    }),

  // Training jobs (functions/training/settings.ts turns these into its settings).
  /** Comma-separated receivers of job status notifications; `slack+https://…` (or hooks.slack.com) gets Slack's `{text}`. */
  TRAINING_WEBHOOK_URLS: z
    .string()
    .default('')
    .refine(
      (list) =>
        list
          .split(',')
          .map((e) => e.trim().replace(/^slack\+/, ''))
          .filter(Boolean)
          .every((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol)),
      'every entry must be an http(s) URL, optionally prefixed slack+',
    ),
  /** Host folder under which each job gets `<root>/<job_id>`, mounted at its checkpoint_path. */
  TRAINING_CHECKPOINT_ROOT: z.string().startsWith('/').default('/var/lib/fleet/checkpoints'),
  /** How often the agent uploads a running job's changed checkpoint files to the artifacts store. */
  TRAINING_CHECKPOINT_SYNC_SECONDS: z.coerce.number().int().positive().default(60),
  /** Largest checkpoint stored per job (sum of its files); a bigger one is refused and the listing says why. */
  TRAINING_CHECKPOINT_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(20 * 1024 ** 3),
  /** Lifetime of the presigned URLs a node gets for its run's checkpoint chunks (S3). */
  TRAINING_CHECKPOINT_URL_SECONDS: z.coerce.number().int().min(60).max(3600).default(900),
  /** First retry delay of a failed run; doubles per retry up to the maximum. */
  TRAINING_RETRY_BASE_SECONDS: z.coerce.number().positive().default(30),
  TRAINING_RETRY_MAX_SECONDS: z.coerce
    .number()
    .positive()
    .default(6 * 3600),
  /** How soon a run no node has room for is tried again. */
  TRAINING_PLACEMENT_RETRY_SECONDS: z.coerce.number().int().positive().default(30),

  // Novita GPU instances (functions/novita). The API key is the `novita-api-key` secret, never a variable.
  /** Base URL of the Novita GPU instance API (a test double on loopback in the suites). */
  NOVITA_BASE_URL: z.string().url().default('https://api.novita.ai/gpu-instance/openapi/v1'),
  /** Per call to Novita; a slow upstream must not hold a request near API Gateway's 29 s. */
  NOVITA_TIMEOUT_MS: z.coerce.number().int().positive().max(25_000).default(10_000),
  /** `onDemand` or `spot`: which price the product choice compares and the billing mode asked. */
  NOVITA_BILLING_MODE: z.enum(['onDemand', 'spot']).default('onDemand'),
  /** An instance not running this long after creation is failed with STARTUP_TIMEOUT. */
  NOVITA_STARTUP_TIMEOUT_SECONDS: z.coerce.number().int().positive().default(600),
  /** Delay between two status reads of a starting instance. */
  NOVITA_POLL_SECONDS: z.coerce.number().int().positive().max(900).default(10),
  /** How long product lists and templates are reused before Novita is asked again. */
  NOVITA_CACHE_SECONDS: z.coerce.number().int().min(0).default(300),
  NOVITA_MIGRATION_ENABLED: bool.default(true),
  /** The spot migration schedule's period (the CDK stack and the local runtime read it at start). */
  NOVITA_MIGRATION_INTERVAL_MINUTES: z.coerce.number().int().positive().max(1440).default(15),
  /** Scheduled runs only plan (a trigger can still ask for dryRun: false). */
  NOVITA_MIGRATION_DRY_RUN: bool.default(false),
  NOVITA_MIGRATION_MAX_CONCURRENT: z.coerce.number().int().positive().max(50).default(5),
  /** Try an instance whose migration failed again on the next run. */
  NOVITA_MIGRATION_RETRY_FAILED: bool.default(true),
  /** First webhook retry delay; doubles per attempt (SQS caps a delay at 900 s). */
  NOVITA_WEBHOOK_RETRY_BASE_SECONDS: z.coerce.number().int().positive().default(5),
  NOVITA_WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().positive().max(20).default(6),
  /** Per-IP limits of the Novita routes: creation and status queries per minute, the rest per hour. */
  NOVITA_RATE_LIMIT_CREATE_PER_MINUTE: z.coerce.number().int().positive().default(10),
  NOVITA_RATE_LIMIT_STATUS_PER_MINUTE: z.coerce.number().int().positive().default(100),
  NOVITA_RATE_LIMIT_GENERAL_PER_HOUR: z.coerce.number().int().positive().default(1000),

  // Swarm join tokens (functions/nodes/join-tokens.ts).
  /** How long a join token from GET /api/swarm/join-token lets nodes register. */
  JOIN_TOKEN_TTL_SECONDS: z.coerce
    .number()
    .int()
    .positive()
    .max(30 * 24 * 3600)
    .default(24 * 3600),

  // AI assistant (functions/commander/ai*.ts): Amazon Bedrock Runtime's Converse API.
  AI_ENABLED: bool.default(true),
  /** Bedrock model (or inference profile) id the assistant converses with. */
  AI_MODEL_ID: z.string().min(1).default('anthropic.claude-3-haiku-20240307-v1:0'),
  /** Bedrock's region; AWS_REGION when unset. */
  AI_REGION: z.string().optional(),
  /** Bedrock Runtime endpoint override (a test double); emulators (AWS_ENDPOINT_URL) do not serve Bedrock. */
  AI_ENDPOINT_URL: z.string().url().optional(),
  /** Per model call, below API Gateway's 29 s. */
  AI_TIMEOUT_MS: z.coerce.number().int().positive().max(25_000).default(20_000),
  AI_MAX_TOKENS: z.coerce.number().int().positive().max(8192).default(1024),
  /** Derived by loadConfig, not a setting: the environment names AWS credentials (keys, a profile, a role). */
  AWS_CREDENTIALS_IN_ENV: bool.default(false),

  // WebSocket API (functions/realtime).
  /** Local runtime: how often /ws/metrics and /ws/doctor push (on AWS the `minute` schedule pushes every minute). */
  WS_PUSH_INTERVAL_SECONDS: z.coerce.number().int().positive().max(3600).default(5),
  /** Local runtime: a socket is closed after this long, as API Gateway does at 2 h (its record expires 10 min later). */
  WS_MAX_CONNECTION_SECONDS: z.coerce.number().int().positive().max(7200).default(7200),
  /** Node-state records (two a node) of one per-node page of `GET /metrics?shard=&page=`, as the sweep cuts them. */
  METRICS_PAGE_RECORDS: z.coerce.number().int().min(2).max(10_000).default(500),
  /** API Gateway Management API endpoint of the WebSocket stage (`https://<api>.execute-api.<region>.amazonaws.com/<stage>`); set by the stack. */
  WS_CALLBACK_URL: z.string().url().optional(),

  // Build API (functions/commander/build): images built by node agents, pushed to and listed from this registry.
  /** Docker Registry HTTP API v2 base (`http://127.0.0.1:5000`); http:// means an insecure (plain HTTP) registry. Credentials: the `registry-auth` secret (`user:password`). */
  REGISTRY_URL: z
    .string()
    .url()
    .refine(
      (u) => /^https?:$/.test(new URL(u).protocol) && new URL(u).pathname === '/',
      'an http(s) URL of the registry host, no path (http://host:5000)',
    )
    .optional(),
  /** Per registry call, below API Gateway's 29 s. */
  REGISTRY_TIMEOUT_MS: z.coerce.number().int().positive().max(25_000).default(10_000),

  // Node identity (functions/agent-api/queue-credentials.ts): agents hold no AWS keys of their own.
  /** Role whose short-lived credentials, narrowed to one node's queue, POST /agent/credentials vends. Created on an emulator when unset; required on AWS for the SQS channel. */
  AGENT_ROLE_ARN: z
    .string()
    .regex(
      /^arn:[\w-]+:iam::\d{12}:role\/[\w+=,.@/-]+$/,
      'an IAM role ARN (arn:aws:iam::<account>:role/<name>)',
    )
    .optional(),
  /** Lifetime of vended node credentials: STS's minimum is 900 s, and a Lambda role assuming another (role chaining) gets at most 1 h. */
  AGENT_CREDENTIALS_SECONDS: z.coerce.number().int().min(900).max(3600).default(3600),

  // Network API (functions/commander/network.ts): LAN scans run by a node's agent.
  /** GET /api/network/scan?refresh=false answers the stored scan of the subnet while it is younger than this. */
  NETWORK_SCAN_CACHE_SECONDS: z.coerce.number().int().min(0).default(600),

  // Install Queue (functions/commander/install-queue.ts): hosts onboarded over SSH by a node's agent.
  /** Installs one node's agent runs at once; further jobs for it wait `queued`. */
  INSTALL_CONCURRENCY_PER_NODE: z.coerce.number().int().min(1).max(32).default(2),
  /** How long the installing agent waits for the new agent to register. */
  INSTALL_JOIN_TIMEOUT_SECONDS: z.coerce.number().int().min(5).max(900).default(120),
  /** The vault credential (id or name) POST /api/network/auto-join-all uses when the request names none. */
  AUTO_JOIN_CREDENTIAL: z.string().min(1).optional(),
  /** Burst (training jobs with `cloud`): the Novita template rented instances start from; unset: no bursts. */
  CLOUD_BURST_TEMPLATE_ID: z.string().min(1).optional(),
  /** At most this many rented burst instances at a time. */
  CLOUD_BURST_MAX_INSTANCES: z.coerce.number().int().min(0).default(2),
  /** Spend cap per UTC day for bursts, in Novita's price units; each instance counts at least one hour. */
  CLOUD_BURST_MAX_SPEND_PER_DAY: z.coerce.number().min(0).default(1_000_000),
  /**
   * SSM parameter holding the secret CloudFront adds as `x-fleet-origin` (functions/core/origin.ts);
   * set by the stack when the WAF fronts the API (`/aws/reference/secretsmanager/<name>`). When set,
   * HTTP requests without it are refused with 403.
   */
  ORIGIN_SECRET_PARAMETER: z.string().startsWith('/').optional(),
  /** A model burst's instance is given back once its model had nothing queued or running this long. */
  CLOUD_BURST_MODEL_IDLE_SECONDS: z.coerce.number().int().min(1).default(600),
  /** The control plane URL new hosts are given; default: the URL the installing agent uses. */
  INSTALL_CONTROL_PLANE_URL: z.string().url().optional(),
});

/**
 * Outbound URLs from settings (webhook receivers, the registry, the JWT issuer's keys) named by address (or `localhost`)
 * are checked at start, against OUTBOUND_ALLOWLIST; names are resolved at delivery.
 */
const checkedConfigSchema = configSchema.superRefine((c, ctx) => {
  try {
    parseAllowlist(c.OUTBOUND_ALLOWLIST);
  } catch {
    return; // reported on the field itself
  }
  for (const entry of c.TRAINING_WEBHOOK_URLS.split(',')) {
    const url = entry.trim().replace(/^slack\+/, '');
    const why = url ? staticUrlRefusal(url, c.OUTBOUND_ALLOWLIST) : undefined;
    if (why) ctx.addIssue({ code: 'custom', path: ['TRAINING_WEBHOOK_URLS'], message: `${url}: ${why}` });
  }
  // The JWT issuer's keys, when read over the network (a JWKS file is read instead when given).
  const jwks = c.JWT_JWKS_FILE ? undefined : (c.JWT_JWKS_URL ?? c.JWT_ISSUER);
  const jwksRefusal = jwks && staticUrlRefusal(jwks, c.OUTBOUND_ALLOWLIST);
  if (jwksRefusal)
    ctx.addIssue({
      code: 'custom',
      path: [c.JWT_JWKS_URL ? 'JWT_JWKS_URL' : 'JWT_ISSUER'],
      message: `${jwks} is refused: ${jwksRefusal}`,
    });
  const registryRefusal = c.REGISTRY_URL && staticUrlRefusal(c.REGISTRY_URL, c.OUTBOUND_ALLOWLIST);
  if (registryRefusal)
    ctx.addIssue({
      code: 'custom',
      path: ['REGISTRY_URL'],
      message: `${c.REGISTRY_URL} is refused: ${registryRefusal}`,
    });
});

export type Config = z.output<typeof configSchema>;

/** Variables by which the AWS SDK's credential chain finds credentials without asking the network. */
const CREDENTIAL_VARIABLES = [
  'AWS_ACCESS_KEY_ID',
  'AWS_PROFILE',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
];

export const awsCredentialsInEnv = (env: Record<string, string | undefined>): boolean =>
  CREDENTIAL_VARIABLES.some((v) => !!env[v]);

/** A setting that does not validate: the message names each variable and why. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable means unset, as shells and .env files commonly write it.
  const present: Record<string, string | undefined> = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ''),
  );
  present.AWS_CREDENTIALS_IN_ENV = String(awsCredentialsInEnv(env));
  const result = checkedConfigSchema.safeParse(present);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}
