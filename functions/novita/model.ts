import type { AppContext } from '../core/context.js';
import { HttpError, UnauthenticatedError } from '../core/errors.js';
import { novitaKeys } from '../core/keys.js';
import type { StoreItem } from '../ports/store.js';
import { NovitaApiError, type NovitaInstance, type NovitaPortMapping } from '../ports/novita-cloud.js';
import type { InstanceStatus } from './status.js';

/** The self-re-queuing event that follows a new instance until it runs or fails. */
export const POLL_EVENT = 'novita.instance.poll';

export interface ConnectionDetails {
  ssh?: string;
  jupyter?: string;
  webTerminal?: string;
}

export interface MigrationInfo {
  jobId: string;
  reason: 'spot_reclaim';
  triggeredBy: 'automatic_migration' | 'manual_trigger';
  startedAt: string;
}

/** A managed instance: our id, Novita's id, what was asked and what Novita last said. */
export interface NovitaInstanceItem extends StoreItem {
  instanceId: string;
  name: string;
  status: InstanceStatus;
  /** Absent until Novita's create answered (a crash before that is failed by the poller). */
  novitaInstanceId?: string;
  novitaStatus?: string;
  productId: string;
  productName: string;
  templateId: string;
  gpuNum: number;
  rootfsSize: number;
  region: string;
  billingMode: 'onDemand' | 'spot';
  price: number;
  webhookUrl?: string;
  createdAt: string;
  readyAt?: string;
  failedAt?: string;
  error?: { code: string; message: string };
  portMappings?: NovitaPortMapping[];
  connectionDetails?: ConnectionDetails;
  lastPolledAt?: string;
  /** Set on the instance a migration produced. */
  originalInstanceId?: string;
  migration?: MigrationInfo;
  /** Set on a migrated-away instance: it is never migrated twice. */
  migratedTo?: string;
  /** A migration in progress: `{jobId, at}`, so two runs never migrate it twice. */
  migrationClaim?: { jobId: string; at: string };
  migrationFailedAt?: string;
  /** join_fleet: the node name it registers as, and the node once it has. */
  joinFleet?: boolean;
  nodeName?: string;
  nodeId?: string;
  joinedAt?: string;
  cluster?: string;
  labels?: Record<string, string>;
  joinTokenId?: string;
  /** Rented by a burst for this training job (functions/training/burst.ts). */
  burstFor?: string;
  /** Rented by a model burst to serve this model's queue (functions/novita/model-burst.ts). */
  burstModel?: string;
  /** A model burst's: when its node last had a task of the model queued or running. */
  lastActiveAt?: string;
  terminatedAt?: string;
  /** Terminated, migrated away or gone from Novita: no longer live (functions/novita/live-index.ts). */
  retiredAt?: string;
  /** Its spot reclaim was reported (once) to what ran on its node. */
  reclaimedAt?: string;
}

export const isoNow = (ctx: AppContext) => new Date(ctx.now()).toISOString();

/** The fields that move an instance to a status, its gsi2 entry included. */
export function statusFields(item: Pick<NovitaInstanceItem, 'createdAt' | 'instanceId'>, status: InstanceStatus) {
  const { gsi2pk, gsi2sk } = novitaKeys.instanceIndexes(item.createdAt, item.instanceId, status);
  return { status, gsi2pk, gsi2sk };
}

export async function getInstanceItem(ctx: AppContext, instanceId: string): Promise<NovitaInstanceItem | undefined> {
  const k = novitaKeys.instance(instanceId);
  return ctx.store.get<NovitaInstanceItem>(k.pk, k.sk);
}

/** Connection strings from Novita's components, falling back to the port mappings. */
export function connectionDetails(i: NovitaInstance): ConnectionDetails {
  const byPort = (port: number) => i.portMappings.find((m) => m.port === port)?.endpoint || undefined;
  const out: ConnectionDetails = {};
  const ssh = i.connectComponentSSH?.command || (byPort(22) ? `ssh root@${hostOf(byPort(22)!)}` : undefined);
  const jupyter = i.connectComponentJupyter?.url || byPort(8888);
  const webTerminal = i.connectComponentWebTerminal?.url || byPort(7681);
  if (ssh) out.ssh = ssh;
  if (jupyter) out.jupyter = jupyter;
  if (webTerminal) out.webTerminal = webTerminal;
  return out;
}

function hostOf(endpoint: string): string {
  try {
    return new URL(endpoint).hostname;
  } catch {
    return endpoint.replace(/^[a-z]+:\/\//, '').split(':')[0]!;
  }
}

export function instanceView(item: NovitaInstanceItem) {
  return {
    id: item.instanceId,
    name: item.name,
    status: item.status,
    gpuNum: item.gpuNum,
    region: item.region,
    productName: item.productName,
    templateId: item.templateId,
    portMappings: item.portMappings ?? [],
    connectionDetails: item.connectionDetails ?? {},
    createdAt: item.createdAt,
    ...(item.readyAt ? { readyAt: item.readyAt } : {}),
    ...(item.failedAt ? { failedAt: item.failedAt } : {}),
    ...(item.error ? { error: item.error } : {}),
    ...(item.originalInstanceId ? { originalInstanceId: item.originalInstanceId } : {}),
    ...(item.migratedTo ? { migratedTo: item.migratedTo } : {}),
    ...(item.joinFleet ? { joinFleet: true } : {}),
    pricePerHour: item.price,
    spot: item.billingMode === 'spot',
    ...(item.burstFor ? { burstFor: item.burstFor } : {}),
    ...(item.burstModel ? { burstModel: item.burstModel } : {}),
    ...(item.terminatedAt ? { terminatedAt: item.terminatedAt } : {}),
  };
}

export function instanceSummary(item: NovitaInstanceItem) {
  return {
    id: item.instanceId,
    name: item.name,
    status: item.status,
    gpuNum: item.gpuNum,
    region: item.region,
    createdAt: item.createdAt,
    ...(item.readyAt ? { readyAt: item.readyAt } : {}),
    // What the console's cost columns need: the product's price (Novita's units, per GPU hour) and when billing stopped.
    pricePerHour: item.price,
    spot: item.billingMode === 'spot',
    ...(item.failedAt ? { failedAt: item.failedAt } : {}),
    ...(item.terminatedAt ? { terminatedAt: item.terminatedAt } : {}),
  };
}

/**
 * A Novita failure as this API answers it: the configured key refused → 401
 * AUTHENTICATION_ERROR (as documented); no answer, throttling or no capacity → 503; anything
 * else Novita got wrong → 502. Never a 500, never the key.
 */
export function novitaHttpError(error: NovitaApiError): HttpError {
  const details = { novitaStatus: error.status, ...(error.code ? { novitaCode: error.code } : {}) };
  if (error.status === 401 || error.status === 403) {
    const message =
      error.code === 'KEY_MISSING' ? error.message : 'The Novita API rejected the configured API key';
    return new UnauthenticatedError(message, 'AUTHENTICATION_ERROR', details);
  }
  const unavailable =
    error.status === 0 ||
    error.status === 429 ||
    error.status === 503 ||
    error.status === 504 ||
    error.code === 'INSUFFICIENT_RESOURCE';
  const headers: Record<string, string> = error.retryAfterSeconds ? { 'retry-after': String(error.retryAfterSeconds) } : {};
  return new HttpError(unavailable ? 503 : 502, error.message, 'NOVITA_API_ERROR', details, headers);
}

/** Rethrows Novita failures as HTTP errors; everything else unchanged. */
export function asHttp(error: unknown): unknown {
  return error instanceof NovitaApiError ? novitaHttpError(error) : error;
}
