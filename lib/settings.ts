import type { Construct } from 'constructs';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { loadConfig } from '../functions/core/config.js';
import { ROUTE_GROUPS } from '../functions/groups/index.js';
import { parseLambdaMemory, parseReservedConcurrency } from './lambda-settings.js';

/** Deployment settings, read from CDK context (cdk.json or `-c key=value`). */
export interface Settings {
  /** Origins the browser may call from; API Gateway answers preflight for them. */
  corsOrigins: string[];
  /** When true, user routes need `Authorization: Bearer <key>` (the key is SSM `<ssmPrefix>api-key`). */
  apiAuth: boolean;
  /** Prefix of every SQS queue this deployment owns, the events queue and agents' command queues. */
  queuePrefix: string;
  scheduleGroup: string;
  /** SSM hierarchy the functions read: secrets and config. Must start and end with `/`. */
  ssmPrefix: string;
  logLevel: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  logRetention: RetentionDays;
  /** Memory (MB) per function, `-c lambdaMemory=agent=512,events=768`; the rest get LAMBDA_MEMORY_MB. */
  lambdaMemory: Record<string, number>;
  /** Alarm when more nodes than this are offline, `-c offlineNodesAlarm=2`. */
  offlineNodesAlarm: number;
  /** Alarm when the oldest event is older than this (seconds), `-c eventsQueueAgeAlarm=300`. */
  eventsQueueAgeAlarm: number;
  /** Existing SNS topic the alarms notify, `-c alarmTopicArn=arn:...`. */
  alarmTopicArn?: string;
  /** Or an address: the stack creates an encrypted topic and subscribes it, `-c alarmEmail=ops@example.com`. */
  alarmEmail?: string;
  /** Stored counters (/metrics) flushed at most this often per function instance, `-c metricsFlushSeconds=10`. */
  metricsFlushSeconds: number;
  /** HTTP API stage throttling: steady requests per second, `-c apiThrottleRate=500`. */
  apiThrottleRate: number;
  /** HTTP API stage throttling: the burst above the steady rate, `-c apiThrottleBurst=1000`. */
  apiThrottleBurst: number;
  /** Concurrency reserved for (and capped at) named functions, `-c reservedConcurrency=agent=50,events=10`. */
  reservedConcurrency: Record<string, number>;
  /**
   * `-c apiWaf=true`: a WAF web ACL with a rate-based rule in front of the HTTP API. WAF cannot be
   * attached to an HTTP API, so the API is served through a CloudFront distribution that carries it.
   */
  apiWaf: boolean;
  /** Requests one client address may make in any 5 minutes before the web ACL blocks it, `-c wafRateLimit=2000`. */
  wafRateLimit: number;
  /** An existing web ACL (CLOUDFRONT scope, us-east-1) to use instead of creating one, `-c wafWebAclArn=arn:...`. */
  wafWebAclArn?: string;
  /**
   * Signed-in users beside API keys (functions/core/jwt.ts): `-c jwtIssuer=https://cognito-idp.<region>.amazonaws.com/<pool>`
   * (or any OIDC issuer), with `jwtAudience`, `jwtRoleClaim`, `jwtRoleMap`, `jwtJwksUrl` as the
   * JWT_* settings of the functions.
   */
  jwt?: { issuer: string; audience?: string; roleClaim?: string; roleMap?: string; jwksUrl?: string };
  /** The Build API's registry, `-c registryUrl=https://registry.example.com` (the functions' REGISTRY_URL). */
  registryUrl?: string;
  /**
   * `-c outboundAllowlist=10.0.0.0/8,hooks.lan` (OUTBOUND_ALLOWLIST): what outbound URLs may reach
   * although loopback, private, link-local, metadata or multicast. `registryUrl` is checked against it at synth.
   */
  outboundAllowlist?: string;
}

const DEFAULTS: Settings = {
  corsOrigins: ['http://localhost:3000', 'http://127.0.0.1:3000'],
  apiAuth: true,
  queuePrefix: 'fleet-',
  scheduleGroup: 'fleet',
  ssmPrefix: '/fleet/',
  logLevel: 'INFO',
  logRetention: RetentionDays.ONE_MONTH,
  lambdaMemory: {},
  offlineNodesAlarm: 0,
  eventsQueueAgeAlarm: 300,
  metricsFlushSeconds: 10,
  // About 5000 nodes heartbeating every 10 s, with room for users; API Gateway's account default is 10000/5000.
  apiThrottleRate: 500,
  apiThrottleBurst: 1000,
  reservedConcurrency: {},
  apiWaf: false,
  wafRateLimit: 2000,
};

function nonNegative(value: unknown, key: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0)
    throw new Error(`context ${key} must be a number >= 0, got ${String(value)}`);
  return n;
}

function wholeNumber(value: unknown, key: string, fallback: number): number {
  const n = nonNegative(value, key, fallback);
  if (!Number.isInteger(n)) throw new Error(`context ${key} must be a whole number, got ${String(value)}`);
  return n;
}

/** WAF's rate-based rules count 10 to 2,000,000,000 requests per evaluation window. */
function wafRateLimit(value: unknown): number {
  const n = wholeNumber(value, 'wafRateLimit', DEFAULTS.wafRateLimit);
  if (n < 10 || n > 2_000_000_000)
    throw new Error(`context wafRateLimit must be from 10 to 2000000000, got ${String(value)}`);
  return n;
}

function jwtSettings(ctx: (key: string) => unknown): NonNullable<Settings['jwt']> {
  const issuer = String(ctx('jwtIssuer'));
  if (!/^https:\/\/[^/]/.test(issuer))
    throw new Error(`context jwtIssuer must be an https URL, got ${issuer}`);
  const opt = (key: string, name: keyof NonNullable<Settings['jwt']>) =>
    ctx(key) ? { [name]: String(ctx(key)) } : {};
  return {
    issuer,
    ...opt('jwtAudience', 'audience'),
    ...opt('jwtRoleClaim', 'roleClaim'),
    ...opt('jwtRoleMap', 'roleMap'),
    ...opt('jwtJwksUrl', 'jwksUrl'),
  };
}

/** registryUrl and outboundAllowlist, checked as the functions check them at start (functions/core/config.ts). */
function outboundSettings(
  ctx: (key: string) => unknown,
): Pick<Settings, 'registryUrl' | 'outboundAllowlist'> {
  const text = (key: string) => (ctx(key) ? String(ctx(key)) : undefined);
  const registryUrl = text('registryUrl');
  const outboundAllowlist = text('outboundAllowlist');
  try {
    // With the JWT issuer's keys URL, which the functions check at start the same way.
    loadConfig({
      REGISTRY_URL: registryUrl,
      OUTBOUND_ALLOWLIST: outboundAllowlist,
      JWT_ISSUER: text('jwtIssuer'),
      JWT_JWKS_URL: text('jwtJwksUrl'),
    });
  } catch (error) {
    const issues = (error as Error).message.replace(/^Invalid configuration:\n/, '');
    throw new Error(
      `context registryUrl / outboundAllowlist / jwt* (the functions' REGISTRY_URL, OUTBOUND_ALLOWLIST, JWT_*): ${issues}`,
    );
  }
  return {
    ...(registryUrl ? { registryUrl } : {}),
    ...(outboundAllowlist ? { outboundAllowlist } : {}),
  };
}

/** The functions a deployment may size: every route group, the events worker and the WebSocket function. */
export const SIZABLE_FUNCTIONS = [...ROUTE_GROUPS, 'events', 'websocket'] as const;

const LOG_LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'] as const;

/** `-c corsOrigins=a,b` arrives as a string, cdk.json gives an array: accept both. */
function list(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  const items = Array.isArray(value) ? value.map(String) : String(value).split(',');
  return items.map((s) => s.trim()).filter(Boolean);
}

function bool(value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  return value === true || value === 'true' || value === '1';
}

export function readSettings(scope: Construct): Settings {
  const ctx = (key: string): unknown => scope.node.tryGetContext(key);
  const logLevel = ctx('logLevel') ?? DEFAULTS.logLevel;
  if (!LOG_LEVELS.includes(logLevel as Settings['logLevel'])) {
    throw new Error(`context logLevel must be one of ${LOG_LEVELS.join(', ')}, got ${String(logLevel)}`);
  }
  const ssmPrefix = String(ctx('ssmPrefix') ?? DEFAULTS.ssmPrefix);
  if (!/^\/([\w.-]+\/)+$/.test(ssmPrefix))
    throw new Error(`context ssmPrefix must look like /name/, got ${ssmPrefix}`);
  const retentionDays = ctx('logRetentionDays');
  return {
    corsOrigins: list(ctx('corsOrigins')) ?? DEFAULTS.corsOrigins,
    apiAuth: bool(ctx('apiAuth')) ?? DEFAULTS.apiAuth,
    queuePrefix: String(ctx('queuePrefix') ?? DEFAULTS.queuePrefix),
    scheduleGroup: String(ctx('scheduleGroup') ?? DEFAULTS.scheduleGroup),
    ssmPrefix,
    logLevel: logLevel as Settings['logLevel'],
    logRetention:
      retentionDays === undefined ? DEFAULTS.logRetention : (Number(retentionDays) as RetentionDays),
    lambdaMemory: parseLambdaMemory(ctx('lambdaMemory'), SIZABLE_FUNCTIONS),
    offlineNodesAlarm: nonNegative(ctx('offlineNodesAlarm'), 'offlineNodesAlarm', DEFAULTS.offlineNodesAlarm),
    eventsQueueAgeAlarm: nonNegative(
      ctx('eventsQueueAgeAlarm'),
      'eventsQueueAgeAlarm',
      DEFAULTS.eventsQueueAgeAlarm,
    ),
    metricsFlushSeconds: nonNegative(
      ctx('metricsFlushSeconds'),
      'metricsFlushSeconds',
      DEFAULTS.metricsFlushSeconds,
    ),
    apiThrottleRate: nonNegative(ctx('apiThrottleRate'), 'apiThrottleRate', DEFAULTS.apiThrottleRate),
    apiThrottleBurst: wholeNumber(ctx('apiThrottleBurst'), 'apiThrottleBurst', DEFAULTS.apiThrottleBurst),
    reservedConcurrency: parseReservedConcurrency(ctx('reservedConcurrency'), SIZABLE_FUNCTIONS),
    apiWaf: bool(ctx('apiWaf')) ?? DEFAULTS.apiWaf,
    wafRateLimit: wafRateLimit(ctx('wafRateLimit')),
    ...(ctx('wafWebAclArn') ? { wafWebAclArn: String(ctx('wafWebAclArn')) } : {}),
    ...(ctx('jwtIssuer') ? { jwt: jwtSettings(ctx) } : {}),
    ...outboundSettings(ctx),
    ...(ctx('alarmTopicArn') ? { alarmTopicArn: String(ctx('alarmTopicArn')) } : {}),
    ...(ctx('alarmEmail') ? { alarmEmail: String(ctx('alarmEmail')) } : {}),
  };
}
