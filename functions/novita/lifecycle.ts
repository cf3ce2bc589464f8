import type { AppContext } from '../core/context.js';
import { emit } from '../core/events.js';
import { updateIf } from '../ports/store.js';
import type { NovitaInstance } from '../ports/novita-cloud.js';
import { POLL_EVENT } from './model.js';
import { connectionDetails, getInstanceItem, isoNow, statusFields, type NovitaInstanceItem } from './model.js';
import { syncLive } from './live-index.js';
import { novitaCloud } from './settings.js';
import { startupOutcome } from './status.js';
import { failedPayload, migratedPayload, notify, readyPayload } from './webhooks.js';

const STARTING = ['creating', 'starting'];

function timeoutMessage(seconds: number): string {
  return seconds % 60 === 0
    ? `Instance failed to start within ${seconds / 60} minute${seconds === 60 ? '' : 's'}`
    : `Instance failed to start within ${seconds} seconds`;
}

/** Fails a starting instance once; the winner of the conditional write sends instance.failed. */
export async function failInstance(ctx: AppContext, item: NovitaInstanceItem, code: string, message: string): Promise<void> {
  const updated = await updateIf<NovitaInstanceItem>(
    ctx.store,
    item.pk,
    item.sk,
    { set: { ...statusFields(item, 'failed'), failedAt: isoNow(ctx), error: { code, message } } },
    { equals: { status: STARTING } },
  );
  if (!updated) return;
  await syncLive(ctx, updated);
  ctx.logger.warn('novita instance failed', { instanceId: item.instanceId, code });
  await notify(ctx, updated, failedPayload(updated));
}

async function markReady(ctx: AppContext, item: NovitaInstanceItem, novita: NovitaInstance): Promise<void> {
  const updated = await updateIf<NovitaInstanceItem>(
    ctx.store,
    item.pk,
    item.sk,
    {
      set: {
        ...statusFields(item, 'running'),
        novitaStatus: novita.status,
        readyAt: isoNow(ctx),
        lastPolledAt: isoNow(ctx),
        portMappings: novita.portMappings,
        connectionDetails: connectionDetails(novita),
      },
    },
    { equals: { status: STARTING } },
  );
  if (!updated) return;
  await syncLive(ctx, updated);
  ctx.logger.info('novita instance ready', { instanceId: item.instanceId });
  await notify(ctx, updated, updated.originalInstanceId ? migratedPayload(updated) : readyPayload(updated));
}

const nextPoll = (ctx: AppContext, instanceId: string) =>
  emit(ctx, { type: POLL_EVENT, instanceId }, ctx.config.NOVITA_POLL_SECONDS);

/**
 * One status read of a starting instance, then the next one queued. Idempotent: a repeat finds
 * the instance already running or failed and stops. If queuing the next read fails the event
 * fails and SQS redelivers it; the migration sweep re-queues any watch that still goes quiet.
 */
export async function pollInstance(ctx: AppContext, instanceId: string): Promise<void> {
  const item = await getInstanceItem(ctx, instanceId);
  // Given back while starting: its status stays as counted when it retired (live-index.ts).
  if (!item || !STARTING.includes(item.status) || item.retiredAt || item.terminatedAt) return;
  const limitS = ctx.config.NOVITA_STARTUP_TIMEOUT_SECONDS;
  const timedOut = ctx.now() - Date.parse(item.createdAt) >= limitS * 1000;
  if (!item.novitaInstanceId) {
    // Novita's create never answered into the record (a crash in between).
    if (timedOut) await failInstance(ctx, item, 'STARTUP_TIMEOUT', timeoutMessage(limitS));
    return;
  }
  let novita: NovitaInstance | undefined;
  try {
    novita = await novitaCloud(ctx).getInstance(item.novitaInstanceId);
  } catch (error) {
    ctx.logger.warn('novita status read failed; will read again', { instanceId, error: (error as Error).message });
  }
  const outcome = novita ? startupOutcome(novita, item.status as 'creating' | 'starting') : undefined;
  if (novita && outcome?.kind === 'ready') return markReady(ctx, item, novita);
  if (outcome?.kind === 'failed') return failInstance(ctx, item, outcome.code, outcome.message);
  if (timedOut) return failInstance(ctx, item, 'STARTUP_TIMEOUT', timeoutMessage(limitS));
  const status = outcome?.kind === 'waiting' ? outcome.status : item.status;
  const written = await updateIf<NovitaInstanceItem>(
    ctx.store,
    item.pk,
    item.sk,
    {
      set: {
        ...statusFields(item, status),
        lastPolledAt: isoNow(ctx),
        ...(novita ? { novitaStatus: novita.status } : {}),
      },
    },
    { equals: { status: STARTING } },
  );
  if (!written) return;
  if (written.status !== item.status) await syncLive(ctx, written);
  await nextPoll(ctx, instanceId);
}

/** Safety net for the sweep: starting instances whose watch went quiet get a read queued. */
export async function revivePolls(ctx: AppContext, instances: NovitaInstanceItem[]): Promise<number> {
  const quietMs = (ctx.config.NOVITA_POLL_SECONDS * 3 + 60) * 1000;
  let revived = 0;
  for (const i of instances) {
    if (!STARTING.includes(i.status)) continue;
    const last = Date.parse(i.lastPolledAt ?? i.createdAt);
    if (ctx.now() - last < quietMs) continue;
    await nextPoll(ctx, i.instanceId);
    revived++;
  }
  return revived;
}
