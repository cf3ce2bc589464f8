import { randomBytes } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { novitaKeys } from '../core/keys.js';
import { isCordoned } from '../nodes/nodes.js';
import { conditional, updateIf, type StoreItem } from '../ports/store.js';
import { listModels, type ModelSpec } from '../cluster/catalogue.js';
import { slotsOfNodes } from '../cluster/slots.js';
import { toSchedNode, type Worker } from '../cluster/workers.js';
import {
  isTimedOut,
  planPlacements,
  type PlacementPlan,
  type SchedModel,
  type SchedTask,
} from '../task-planner/index.js';
import { burstLost, burstRefusal, rentNow } from './burst.js';
import { liveBurstInstances } from './burst-index.js';
import { terminateInstance } from './join.js';
import { getInstanceItem, isoNow, type NovitaInstanceItem } from './model.js';

/**
 * Model bursts: a catalogue model with `cloud` (and a `command`, how its server runs as a process)
 * whose queued tasks no fleet node takes (or always, with `cloud.always`) rents a Novita instance
 * that joins the fleet. The rented node serves that model only: the fleet's placement pass leaves
 * process nodes out, and a second pass places the model's tasks on its rented nodes. The instance
 * goes back once the model had nothing queued or running there for CLOUD_BURST_MODEL_IDLE_SECONDS
 * (checked on every placement run, at least once a minute). Caps are the training bursts' own
 * (functions/novita/burst.ts). At most one rented instance per model at a time.
 */

interface ModelBurstItem extends StoreItem {
  modelId: string;
  /** The instance rented for the model's queue; absent when none is. */
  instanceId?: string;
  /** Why the last burst was refused. */
  reason?: string;
  /** A run is renting for the model since then. */
  claimedAt?: string;
  updatedAt: string;
}

export interface ModelBursts {
  /** Model bursts' instances not given back. */
  instances: NovitaInstanceItem[];
  /** Their joined nodes: node id → the model it serves. */
  nodes: Map<string, string>;
}

/** Read once per placement run, and only when a catalogue model has `cloud`. */
export async function loadModelBursts(ctx: AppContext, catalogue: ModelSpec[]): Promise<ModelBursts | null> {
  const cloud = cloudModels(catalogue);
  if (!cloud.size) return null;
  const instances = (await liveBurstInstances(ctx)).filter((i) => i.burstModel);
  const nodes = new Map<string, string>();
  // Only for a model still declared with `cloud` (and so a `command`): its server can start there.
  for (const i of instances) if (i.nodeId && cloud.has(i.burstModel!)) nodes.set(i.nodeId, i.burstModel!);
  return { instances, nodes };
}

const cloudModels = (catalogue: ModelSpec[]) => new Set(catalogue.filter((m) => m.cloud).map((m) => m.id));

/** Models whose tasks only rented nodes take (`cloud.always`). */
export const cloudOnlyModels = (catalogue: ModelSpec[]): Set<string> =>
  new Set(catalogue.filter((m) => m.cloud?.always).map((m) => m.id));

/**
 * The fleet's plan, plus a pass per model over its rented nodes for the tasks the fleet left
 * queued (and the cloud-only models' tasks, which the fleet pass did not see).
 */
export function withRentedNodes(
  plan: PlacementPlan,
  input: {
    bursts: ModelBursts;
    workers: Worker[];
    models: SchedModel[];
    /** The cloud-only models' tasks. */
    cloudOnly: SchedTask[];
    tasks: Map<string, SchedTask>;
    now: number;
  },
): PlacementPlan {
  const left = [...plan.stillQueued.map((id) => input.tasks.get(id)!), ...input.cloudOnly];
  const byModel = new Map<string, Worker[]>();
  for (const w of input.workers) {
    const model = input.bursts.nodes.get(w.id);
    if (model) byModel.set(model, [...(byModel.get(model) ?? []), w]);
  }
  const placements = [...plan.placements];
  const timedOut = new Set(plan.timedOut);
  const placed = new Set<string>();
  for (const [model, workers] of byModel) {
    const queue = left.filter((t) => t.model === model);
    if (!queue.length) continue;
    const rented = planPlacements({
      nodes: workers.map((w) => ({ ...toSchedNode(w), online: w.online && !isCordoned(w.node) })),
      models: input.models,
      queue,
      now: input.now,
    });
    placements.push(...rented.placements);
    for (const p of rented.placements) placed.add(p.taskId);
    for (const id of rented.timedOut) timedOut.add(id);
  }
  // The fleet pass never saw the cloud-only tasks: their queue timeouts are enforced here.
  for (const t of input.cloudOnly) if (isTimedOut(t, input.now)) timedOut.add(t.id);
  return {
    ...plan,
    placements,
    timedOut: [...timedOut],
    stillQueued: left.map((t) => t.id).filter((id) => !placed.has(id) && !timedOut.has(id)),
  };
}

/**
 * After a placement run: rents an instance for each cloud model with tasks still queued (none
 * rented yet, or the one rented was lost), and gives back the rented instances whose model had
 * nothing queued and nothing running on their node for the idle setting.
 */
export async function modelBursts(
  ctx: AppContext,
  bursts: ModelBursts | null,
  input: { catalogue: ModelSpec[]; waiting: Map<string, number>; busyNodes: Set<string> },
): Promise<void> {
  if (!bursts) return;
  const cloud = cloudModels(input.catalogue);
  const waiting = (model: string) => (cloud.has(model) ? (input.waiting.get(model) ?? 0) : 0);
  const serving = await keepOrGiveBack(ctx, bursts.instances, waiting, input.busyNodes);
  for (const model of input.catalogue) {
    if (!model.cloud || (input.waiting.get(model.id) ?? 0) === 0 || serving.has(model.id)) continue;
    await rentForModel(ctx, model, input.waiting.get(model.id)!);
  }
}

/**
 * From the Novita schedule: instances rented for a model no longer declared with `cloud` (placement
 * runs do not read them then) go back once nothing runs on their node for the idle setting.
 */
export async function sweepModelBursts(ctx: AppContext): Promise<void> {
  const cloud = cloudModels(await listModels(ctx));
  const orphans = (await liveBurstInstances(ctx)).filter(
    (i) => i.burstModel && !cloud.has(i.burstModel),
  );
  if (!orphans.length) return;
  // Only the rented nodes' own slots: what the rest of the fleet runs does not matter here.
  const rentedNodes = orphans.flatMap((i) => (i.nodeId ? [i.nodeId] : []));
  const busyNodes = new Set((await slotsOfNodes(ctx, rentedNodes)).map((s) => s.nodeId));
  await keepOrGiveBack(ctx, orphans, () => 0, busyNodes);
}

/** Gives back the lost and the idle; the rest, by model, serve on. */
async function keepOrGiveBack(
  ctx: AppContext,
  instances: NovitaInstanceItem[],
  waiting: (model: string) => number,
  busyNodes: Set<string>,
): Promise<Map<string, NovitaInstanceItem>> {
  const now = ctx.now();
  const idleMs = ctx.config.CLOUD_BURST_MODEL_IDLE_SECONDS * 1000;
  const serving = new Map<string, NovitaInstanceItem>();
  for (const item of instances) {
    const model = item.burstModel!;
    if (await burstLost(ctx, item)) {
      await terminateInstance(ctx, item, 'its node was lost');
      continue;
    }
    const busy = waiting(model) > 0 || (item.nodeId !== undefined && busyNodes.has(item.nodeId));
    const since = Date.parse(item.lastActiveAt ?? item.joinedAt ?? item.createdAt);
    if (busy) {
      serving.set(model, item);
      // Written now and then, not on every run: the idle clock needs no finer grain.
      if (!item.lastActiveAt || now - since >= Math.min(idleMs / 10, 30_000))
        await updateIf(ctx.store, item.pk, item.sk, { set: { lastActiveAt: isoNow(ctx) } }, { exists: true });
      continue;
    }
    if (now - since >= idleMs) {
      await terminateInstance(ctx, item, `model ${model} idle for ${Math.round((now - since) / 1000)} s`);
      continue;
    }
    serving.set(model, item);
  }
  return serving;
}

/** A claim to rent older than this was left by a run that died: another run may rent. */
const CLAIM_MS = 5 * 60_000;

async function rentForModel(ctx: AppContext, model: ModelSpec, waiting: number): Promise<void> {
  const k = novitaKeys.modelBurst(model.id);
  const record = await ctx.store.get<ModelBurstItem>(k.pk, k.sk);
  if (record?.instanceId) {
    const current = await getInstanceItem(ctx, record.instanceId);
    // Rented by a run that raced this one, not yet in the list it read.
    if (current && !current.terminatedAt && !(await burstLost(ctx, current))) return;
  }
  // Another run is renting for this model now.
  if (record?.claimedAt && ctx.now() - Date.parse(record.claimedAt) < CLAIM_MS) return;
  const fleetReason = `${waiting} task${waiting === 1 ? '' : 's'} of model ${model.id} queued and no fleet node takes ${waiting === 1 ? 'it' : 'them'}`;
  const refused = await burstRefusal(ctx, model.cloud!, fleetReason);
  if (refused) {
    // The same refusal again: nothing new to record or say.
    if (record?.reason === refused && !record.instanceId) return;
    await conditional(putRecord(ctx, { modelId: model.id, reason: refused }, record));
    ctx.logger.warn('model burst refused', { model: model.id, reason: refused });
    return;
  }
  // Claimed first (a conditional write), so two placement runs never rent twice for one model.
  const claim = await conditional(putRecord(ctx, { modelId: model.id, claimedAt: isoNow(ctx) }, record));
  if (!claim) return;
  const outcome = await rentNow(
    ctx,
    {
      cloud: model.cloud!,
      name: `burst-model-${model.id}`.slice(0, 64),
      gpus: 1,
      labels: { 'fleet.burst-model': model.id },
      burstModel: model.id,
    },
    fleetReason,
  );
  await conditional(
    putRecord(
      ctx,
      'instanceId' in outcome
        ? { modelId: model.id, instanceId: outcome.instanceId }
        : { modelId: model.id, reason: outcome.refused },
      claim,
    ),
  );
  if ('instanceId' in outcome)
    ctx.logger.info('burst: rented an instance for a model', {
      model: model.id,
      instanceId: outcome.instanceId,
    });
  else ctx.logger.warn('model burst failed', { model: model.id, reason: outcome.refused });
}

/** Replaces the model's burst record, only if it is still `previous` (or there was none). */
async function putRecord(
  ctx: AppContext,
  fields: { modelId: string; instanceId?: string; reason?: string; claimedAt?: string },
  previous: ModelBurstItem | undefined,
): Promise<ModelBurstItem> {
  const next: ModelBurstItem = {
    ...novitaKeys.modelBurst(fields.modelId),
    ...fields,
    // Distinct per write, so the condition tells two writers apart.
    updatedAt: `${isoNow(ctx)}#${randomBytes(4).toString('hex')}`,
  };
  await ctx.store.put(next, previous ? { equals: { updatedAt: previous.updatedAt } } : { notExists: true });
  return next;
}

/** Why the model's last burst was refused, and the instance rented for it (the catalogue view). */
export async function modelBurstState(
  ctx: AppContext,
  modelId: string,
): Promise<{ instanceId: string | null; reason: string | null } | null> {
  const k = novitaKeys.modelBurst(modelId);
  const record = await ctx.store.get<ModelBurstItem>(k.pk, k.sk);
  return record ? { instanceId: record.instanceId ?? null, reason: record.reason ?? null } : null;
}
