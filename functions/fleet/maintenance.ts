import { createHash, randomUUID } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { ConflictError, HttpError, NotFoundError } from '../core/errors.js';
import type { EventHandler } from '../core/events.js';
import { reply } from '../core/http.js';
import { maintenanceKeys } from '../core/keys.js';
import { acquireLease, heldLease, releaseLease, type LeaseSpec } from '../core/lease.js';
import { settle } from '../orchestrator/settle.js';
import {
  allInstances,
  getInstance,
  nodeInstances,
  serviceSlots,
  type InstanceItem,
} from '../orchestrator/model.js';
import { reconcile } from '../orchestrator/reconciler.js';
import { ConditionFailedError, queryAll, type StoreItem } from '../ports/store.js';
import { dispatchCommand, waitForCommands, type CommandItem } from './commands.js';
import { MAINTENANCE_RUN_EVENT, nextMaintenanceRun } from './maintenance-schedule.js';
import { isOnline, listNodes, resolveNode, type NodeItem } from './nodes.js';
import { diskAuditOutput, enginePruneOutput, type DiskAuditOutput } from '../../protocol/agent-api.js';

/**
 * Fleet Commander maintenance over the shared model. Problems are computed from the records on
 * every read (node heartbeats, container instances); what is stored is only when each was first
 * seen, under a stable id (a hash of node and type), so repeated detections never duplicate.
 * A run (the daily schedule, or run-now) detects and applies the automatic fixes through the
 * nodes' agents; one run at a time, through a lock item written with attribute_not_exists.
 */

// ---------------------------------------------------------------- detection (pure)

export const THRESHOLDS = {
  diskWarningPercent: 80,
  diskCriticalPercent: 90,
  memoryPercent: 90,
  gpuTemperatureC: 85,
} as const;

export type ProblemType =
  'node_offline' | 'disk_space' | 'high_memory' | 'gpu_temperature' | 'container_exited';
export type Severity = 'warning' | 'critical';
export const FIX_TYPES = ['docker_cleanup', 'restart_exited'] as const;
export type FixType = (typeof FIX_TYPES)[number];

export interface DetectedProblem {
  id: string;
  nodeId: string;
  nodeName: string;
  type: ProblemType;
  severity: Severity;
  message: string;
  /** The quick fix a run applies for it; none when a person must act. */
  fix?: FixType;
}

export const problemId = (nodeId: string, type: ProblemType) =>
  `prob-${createHash('sha256').update(`${nodeId}#${type}`).digest('hex').slice(0, 24)}`;

const percent = (used: number | null | undefined, total: number | null | undefined) =>
  used != null && total ? (used / total) * 100 : null;

/** GPU readings of the last heartbeat: nvidia-smi's per GPU, and tegrastats' GPU zone on a Jetson. */
function gpuTemperatures(node: NodeItem): { label: string; celsius: number }[] {
  const out = (node.metrics?.gpus ?? []).flatMap((g) =>
    g.temperatureC === null ? [] : [{ label: `GPU ${g.index} (${g.name})`, celsius: g.temperatureC }],
  );
  const zones = (node.metrics?.tegrastats as { temperatures?: Record<string, unknown> } | null | undefined)
    ?.temperatures;
  for (const [zone, value] of Object.entries(zones ?? {})) {
    if (/^gpu\d*$/i.test(zone) && typeof value === 'number')
      out.push({ label: `tegrastats ${zone}`, celsius: value });
  }
  return out;
}

const EXITED: ReadonlySet<string> = new Set(['exited', 'failed']);

/** `, backing off (crash_loop, attempt 3) until <iso>` for a copy waiting out its restart backoff. */
const backoffNote = (i: InstanceItem) =>
  i.backoff
    ? `, backing off (${i.backoff.reason}, attempt ${i.backoff.attempt}) until ${new Date(i.backoff.nextTryAt).toISOString()}`
    : '';
const STOPPED_ENGINE_STATES: ReadonlySet<string> = new Set(['exited', 'dead']);

function listed(names: string[], max = 5): string {
  return names.length > max
    ? `${names.slice(0, max).join(', ')} and ${names.length - max} more`
    : names.join(', ');
}

const SEVERITY_RANK: Record<Severity, number> = { critical: 0, warning: 1 };
const TYPE_RANK: Record<ProblemType, number> = {
  node_offline: 0,
  disk_space: 1,
  high_memory: 2,
  gpu_temperature: 3,
  container_exited: 4,
};

/**
 * What is wrong now, from the records: a node whose heartbeats stopped (nothing else is judged
 * from its stale readings), disk and memory usage and GPU temperatures of its last heartbeat, and
 * managed containers that died: the orchestrator's copies exited or failed (`restart_exited`
 * replaces them), model servers the heartbeat reports stopped. Training runs end by exiting, so
 * their exits are not problems.
 */
export function detectProblems(
  nodes: NodeItem[],
  instances: InstanceItem[],
  online: (node: NodeItem) => boolean,
): DetectedProblem[] {
  const problems: DetectedProblem[] = [];
  for (const node of nodes) {
    const name = node.nodeName;
    const add = (type: ProblemType, severity: Severity, message: string, fix?: FixType) =>
      problems.push({
        id: problemId(node.nodeId, type),
        nodeId: node.nodeId,
        nodeName: name,
        type,
        severity,
        message,
        ...(fix ? { fix } : {}),
      });

    if (!online(node)) {
      add(
        'node_offline',
        'critical',
        `Node ${name} is offline: no heartbeat since ${node.lastHeartbeat ?? 'registration'}`,
      );
      continue;
    }
    const m = node.metrics;
    const disk = percent(m?.diskUsedGb, m?.diskTotalGb ?? node.diskGb);
    if (disk !== null && disk >= THRESHOLDS.diskWarningPercent) {
      add(
        'disk_space',
        disk >= THRESHOLDS.diskCriticalPercent ? 'critical' : 'warning',
        `Disk usage at ${Math.round(disk)}% on ${name} (${m!.diskUsedGb} of ${m!.diskTotalGb ?? node.diskGb} GB)`,
        'docker_cleanup',
      );
    }
    const memory = percent(m?.memoryUsedMb, m?.memoryTotalMb ?? node.memoryMb);
    if (memory !== null && memory >= THRESHOLDS.memoryPercent) {
      add('high_memory', 'warning', `Memory usage at ${Math.round(memory)}% on ${name}`);
    }
    const hot = gpuTemperatures(node).filter((t) => t.celsius >= THRESHOLDS.gpuTemperatureC);
    if (hot.length) {
      const max = Math.max(...hot.map((t) => t.celsius));
      add(
        'gpu_temperature',
        'warning',
        `GPU temperature at ${Math.round(max)} °C on ${name}: ${listed(hot.map((t) => `${t.label} ${Math.round(t.celsius)} °C`))}`,
      );
    }
    const copies = instances.filter((i) => i.nodeId === node.nodeId && EXITED.has(i.status));
    const models = Object.entries(node.containerStats ?? {}).filter(
      ([, c]) => c.kind === 'model' && STOPPED_ENGINE_STATES.has(c.state),
    );
    if (copies.length || models.length) {
      const names = [
        ...copies.map(
          (i) =>
            `${i.name} (${i.imageId}, ${i.status === 'failed' ? 'failed to start' : `exited${i.exitCode != null ? ` with code ${i.exitCode}` : ''}`}${backoffNote(i)})`,
        ),
        ...models.map(([instanceId]) => `model server ${instanceId}`),
      ];
      const n = names.length;
      add(
        'container_exited',
        'warning',
        `${n} managed container${n === 1 ? '' : 's'} ${n === 1 ? 'is' : 'are'} down on ${name}: ${listed(names)}`,
        copies.length ? 'restart_exited' : undefined,
      );
    }
  }
  return problems.sort(
    (a, b) =>
      SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] ||
      (a.nodeName < b.nodeName ? -1 : a.nodeName > b.nodeName ? 1 : 0) ||
      TYPE_RANK[a.type] - TYPE_RANK[b.type],
  );
}

// ---------------------------------------------------------------- problems as stored

interface ProblemRecord extends StoreItem {
  problemId: string;
  nodeId: string;
  type: ProblemType;
  detectedAt: string;
}

export interface ProblemView {
  id: string;
  node_id: string;
  type: ProblemType;
  severity: Severity;
  message: string;
  detected_at: string;
  auto_fixable: boolean;
}

/**
 * Detects, then makes the stored records match: a new problem is recorded with the time it was
 * first seen (a concurrent reader's record wins), a problem gone is forgotten (if it comes back,
 * it is new again). Nothing is written when nothing changed.
 */
export async function currentProblems(
  ctx: AppContext,
): Promise<{ nodes: NodeItem[]; problems: (DetectedProblem & { detectedAt: string })[] }> {
  const [nodes, instances, stored] = await Promise.all([
    listNodes(ctx),
    allInstances(ctx),
    queryAll<ProblemRecord>(ctx.store, maintenanceKeys.pk, { prefix: maintenanceKeys.problemPrefix }),
  ]);
  const now = ctx.now();
  const detected = detectProblems(nodes, instances, (n) => isOnline(n, ctx, now));
  const known = new Map(stored.map((r) => [r.problemId, r]));
  const problems = [];
  for (const p of detected) {
    let record = known.get(p.id);
    if (!record) {
      record = {
        ...maintenanceKeys.problem(p.id),
        problemId: p.id,
        nodeId: p.nodeId,
        type: p.type,
        detectedAt: new Date(now).toISOString(),
      };
      try {
        await ctx.store.put(record, { notExists: true });
      } catch (error) {
        if (!(error instanceof ConditionFailedError)) throw error;
        record = (await ctx.store.get<ProblemRecord>(record.pk, record.sk)) ?? record;
      }
    }
    problems.push({ ...p, detectedAt: record.detectedAt });
  }
  const open = new Set(detected.map((p) => p.id));
  for (const r of stored) {
    if (open.has(r.problemId)) continue;
    await ctx.store.delete(r.pk, r.sk, { equals: { detectedAt: r.detectedAt } }).catch((error: unknown) => {
      if (!(error instanceof ConditionFailedError)) throw error;
    });
  }
  return { nodes, problems };
}

export function problemView(p: DetectedProblem & { detectedAt: string }): ProblemView {
  return {
    id: p.id,
    node_id: p.nodeId,
    type: p.type,
    severity: p.severity,
    message: p.message,
    detected_at: p.detectedAt,
    auto_fixable: p.fix !== undefined,
  };
}

// ---------------------------------------------------------------- switch, lock, status

interface StateItem extends StoreItem {
  enabled: boolean;
  updatedAt: string;
  lastRunId?: string;
  lastRunAt?: string;
  lastRunFinishedAt?: string;
  lastRunTrigger?: 'schedule' | 'manual';
}

/** One run at a time. A run waits COMMAND_WAIT_MS at most for its fixes; a holder silent past the lease died. */
const RUN_LOCK: LeaseSpec = { key: maintenanceKeys.lock(), field: 'runId', leaseMs: 5 * 60_000 };

async function getState(ctx: AppContext): Promise<StateItem | undefined> {
  const k = maintenanceKeys.state();
  return ctx.store.get<StateItem>(k.pk, k.sk);
}

/** Sets fields of the state item, creating it (maintenance stopped) the first time. */
async function saveState(ctx: AppContext, set: Partial<StateItem>): Promise<StateItem> {
  const k = maintenanceKeys.state();
  const at = new Date(ctx.now()).toISOString();
  for (let attempt = 0; ; attempt++) {
    try {
      return await ctx.store.update<StateItem>(k.pk, k.sk, { set: { ...set, updatedAt: at } });
    } catch (error) {
      if (!(error instanceof ConditionFailedError) || attempt > 0) throw error;
    }
    try {
      const item: StateItem = { ...k, enabled: false, ...set, updatedAt: at };
      await ctx.store.put(item, { notExists: true });
      return item;
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error; // created meanwhile: update it
    }
  }
}

export async function maintenanceStatus(ctx: AppContext) {
  const [state, lock, { problems }] = await Promise.all([
    getState(ctx),
    heldLease(ctx, RUN_LOCK),
    currentProblems(ctx),
  ]);
  const enabled = state?.enabled ?? false;
  return {
    enabled,
    running: lock !== undefined,
    last_run: state?.lastRunAt ?? null,
    next_run: enabled ? nextMaintenanceRun(ctx.now()) : null,
    problems_count: problems.length,
  };
}

export async function setMaintenanceEnabled(ctx: AppContext, enabled: boolean) {
  await saveState(ctx, { enabled });
  return maintenanceStatus(ctx);
}

// ---------------------------------------------------------------- fixes

export interface StartedFix {
  commandIds: string[];
  /** The fix's answer once every command is done; throws the HTTP error a quick fix answers with. */
  finish(commands: CommandItem[]): Promise<Record<string, unknown>>;
  /** What a 202 carries besides the pending command ids. */
  pendingExtras: Record<string, unknown>;
}

function requireOnline(ctx: AppContext, node: NodeItem): void {
  if (!isOnline(node, ctx))
    throw new ConflictError(
      `Node ${node.nodeName} is offline (last heartbeat ${node.lastHeartbeat ?? 'never'}): its agent cannot act`,
      'NODE_OFFLINE',
    );
}

/** The agent's answer to a maintenance command, or the HTTP error that says why there is none. */
function agentOutput<T>(
  node: NodeItem,
  what: string,
  command: CommandItem | undefined,
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } },
): T {
  if (!command || command.status === 'failed')
    throw new HttpError(500, `${what} failed on ${node.nodeName}: ${command?.error ?? 'no result'}`);
  const out = schema.safeParse(command.output ?? {});
  if (!out.success) throw new HttpError(500, `${what} on ${node.nodeName}: the agent's result is unreadable`);
  return out.data;
}

async function startCleanup(ctx: AppContext, node: NodeItem): Promise<StartedFix> {
  const head = { node_id: node.nodeId, fix_type: 'docker_cleanup' as const };
  const commandId = await dispatchCommand(ctx, node.nodeId, { type: 'engine.prune' });
  return {
    commandIds: [commandId],
    pendingExtras: head,
    finish: async ([command]) => {
      const out = agentOutput(node, 'docker_cleanup', command, enginePruneOutput);
      return {
        ...head,
        status: 'completed',
        containers_removed: out.containersRemoved.map((c) => ({
          container_id: c.containerId,
          name: c.name,
          instance_id: c.instanceId || null,
          kind: c.kind,
        })),
        containers_skipped: out.containersSkipped.map((c) => ({
          container_id: c.containerId,
          name: c.name,
          reason: c.reason,
        })),
        images_removed: out.imagesDeleted,
        space_reclaimed_bytes: out.spaceReclaimedBytes,
      };
    },
  };
}

interface ExitedCopy {
  inst: InstanceItem;
  outcome: 'replaced' | 'unplaced' | 'released';
  replacement?: InstanceItem;
  reason?: string;
}

/**
 * The orchestrator's copies that exited (or failed) on the node get replaced now: a reconcile of
 * their images, as the sweep would do within the minute. A replacement may land on another node.
 * Whoever placed it (this reconcile or a concurrent one), the copy's slot says who replaced it.
 */
async function startRestartExited(ctx: AppContext, node: NodeItem): Promise<StartedFix> {
  const head = { node_id: node.nodeId, fix_type: 'restart_exited' as const };
  const exited = (await nodeInstances(ctx, node.nodeId)).filter((i) => EXITED.has(i.status));
  const images = [...new Set(exited.map((i) => i.imageId))];
  const copies: ExitedCopy[] = [];
  for (const imageId of images) {
    const mine = exited.filter((i) => i.imageId === imageId);
    const before = await serviceSlots(ctx, imageId);
    const ordinals = new Map(
      mine.map((i) => [i.instanceId, before.find((s) => s.instanceId === i.instanceId)?.ordinal]),
    );
    const { unplaced } = await reconcile(ctx, { imageId, retryNow: true });
    const after = await serviceSlots(ctx, imageId);
    for (const inst of mine) {
      const ordinal = ordinals.get(inst.instanceId);
      const slot = ordinal === undefined ? undefined : after.find((s) => s.ordinal === ordinal);
      if (!slot) {
        copies.push({ inst, outcome: 'released' });
      } else if (slot.instanceId === inst.instanceId) {
        const why = unplaced.find((u) => u.imageId === imageId && u.ordinal === ordinal)?.reason;
        copies.push({ inst, outcome: 'unplaced', reason: why ?? 'not placed yet' });
      } else {
        copies.push({ inst, outcome: 'replaced', replacement: await getInstance(ctx, slot.instanceId) });
      }
    }
  }
  const commandIds = copies.flatMap((c) =>
    c.replacement?.startCommandId ? [c.replacement.startCommandId] : [],
  );
  return {
    commandIds,
    pendingExtras: {
      ...head,
      replacements: copies.flatMap((c) => (c.replacement ? [c.replacement.instanceId] : [])),
    },
    finish: async (commands) => {
      const byId = new Map(commands.map((c) => [c.commandId, c]));
      const replaced = copies.map((c) => {
        const base = { container_id: c.inst.instanceId, name: c.inst.name, image: c.inst.imageId };
        if (c.outcome === 'released') return { ...base, status: 'released' as const };
        if (c.outcome === 'unplaced') return { ...base, status: 'unplaced' as const, error: c.reason! };
        const start = c.replacement?.startCommandId ? byId.get(c.replacement.startCommandId) : undefined;
        return {
          ...base,
          status: start?.status === 'failed' ? ('failed' as const) : ('started' as const),
          replacement_id: c.replacement?.instanceId ?? null,
          replacement_node_id: c.replacement?.nodeId ?? null,
          ...(start?.status === 'failed' ? { error: start.error ?? 'start failed' } : {}),
        };
      });
      const ok = replaced.filter((r) => r.status === 'started' || r.status === 'released').length;
      if (replaced.length && !ok) {
        const first = replaced[0]!;
        const detail = `Cannot replace the exited containers of ${node.nodeName}: ${'error' in first ? first.error : 'unknown'}`;
        if (replaced.every((r) => r.status === 'unplaced')) throw new ConflictError(detail, 'NO_CAPACITY');
        throw new HttpError(500, detail);
      }
      return { ...head, status: ok === replaced.length ? 'completed' : 'partial', replaced };
    },
  };
}

export async function startFix(ctx: AppContext, node: NodeItem, fix: FixType): Promise<StartedFix> {
  requireOnline(ctx, node);
  return fix === 'docker_cleanup' ? startCleanup(ctx, node) : startRestartExited(ctx, node);
}

/** POST /api/maintenance/quick-fix: one fix on one node, answered like the orchestrator's calls (202 past COMMAND_WAIT_MS). */
export async function quickFix(ctx: AppContext, nodeRef: string, fix: FixType): Promise<unknown> {
  const node = await resolveNode(ctx, nodeRef);
  if (!node) throw new NotFoundError(`Node ${nodeRef} not found`);
  const started = await startFix(ctx, node, fix);
  return settle(ctx, started.commandIds, (commands) => started.finish(commands), started.pendingExtras);
}

// ---------------------------------------------------------------- runs

/** One run: detection, then every automatic fix of an online node at once, waited for together. */
export async function runMaintenance(ctx: AppContext, trigger: 'schedule' | 'manual') {
  const runId = randomUUID();
  const startedAt = new Date(ctx.now()).toISOString();
  const holder = await acquireLease(ctx, RUN_LOCK, runId, { trigger, startedAt });
  if (holder)
    throw new ConflictError(`A maintenance run is already in progress (${holder})`, 'MAINTENANCE_RUNNING');
  try {
    const { nodes, problems } = await currentProblems(ctx);
    const byId = new Map(nodes.map((n) => [n.nodeId, n]));
    const wanted = new Map<string, { node: NodeItem; fix: FixType }>();
    for (const p of problems) {
      if (p.fix) wanted.set(`${p.nodeId}#${p.fix}`, { node: byId.get(p.nodeId)!, fix: p.fix });
    }
    const started = await Promise.all(
      [...wanted.values()].map(async ({ node, fix }) => {
        try {
          return { node, fix, started: await startFix(ctx, node, fix) };
        } catch (error) {
          return { node, fix, error: error as Error };
        }
      }),
    );
    const waited = await waitForCommands(
      ctx,
      started.flatMap((s) => s.started?.commandIds ?? []),
    );
    const done = new Map(waited.done.map((c) => [c.commandId, c]));
    const fixes = [];
    for (const s of started) {
      const head = { node_id: s.node.nodeId, fix_type: s.fix };
      if (!s.started) {
        fixes.push({ ...head, status: 'failed', error: s.error!.message });
        continue;
      }
      const pending = s.started.commandIds.filter((id) => !done.has(id));
      if (pending.length) {
        fixes.push({ ...head, status: 'pending', pending_commands: pending });
        continue;
      }
      try {
        fixes.push(await s.started.finish(s.started.commandIds.map((id) => done.get(id)!)));
      } catch (error) {
        fixes.push({ ...head, status: 'failed', error: (error as Error).message });
      }
    }
    const finishedAt = new Date(ctx.now()).toISOString();
    await saveState(ctx, {
      lastRunId: runId,
      lastRunAt: startedAt,
      lastRunFinishedAt: finishedAt,
      lastRunTrigger: trigger,
    });
    return {
      run_id: runId,
      trigger,
      started_at: startedAt,
      finished_at: finishedAt,
      problems: problems.map(problemView),
      fixes,
    };
  } finally {
    await releaseLease(ctx, RUN_LOCK, runId);
  }
}

/** The daily schedule's event: a run when maintenance is started, nothing otherwise. */
export const maintenanceEventHandlers: Record<string, EventHandler> = {
  [MAINTENANCE_RUN_EVENT]: async (_event, ctx) => {
    if (!(await getState(ctx))?.enabled) {
      ctx.logger.info('maintenance is stopped; scheduled run skipped');
      return;
    }
    try {
      const run = await runMaintenance(ctx, 'schedule');
      ctx.logger.info('maintenance run done', {
        runId: run.run_id,
        problems: run.problems.length,
        fixes: run.fixes.length,
      });
    } catch (error) {
      // A run-now holds the lock: that run is today's.
      if (error instanceof ConflictError)
        ctx.logger.info('maintenance run skipped: another run holds the lock');
      else throw error;
    }
  },
};

// ---------------------------------------------------------------- disk audit

function fsView(f: DiskAuditOutput['filesystems'][number]) {
  return {
    role: f.role,
    path: f.path,
    total_bytes: f.totalBytes ?? null,
    used_bytes: f.usedBytes ?? null,
    free_bytes: f.freeBytes ?? null,
    used_percent: f.usedPercent ?? null,
    ...(f.error ? { error: f.error } : {}),
  };
}

function auditView(node: NodeItem, commandId: string, command: CommandItem | undefined) {
  const head = { node_id: node.nodeId, name: node.nodeName, command_id: commandId };
  if (!command) return { ...head, status: 'pending' as const };
  if (command.status === 'failed')
    return { ...head, status: 'failed' as const, error: command.error ?? 'failed' };
  const out = diskAuditOutput.safeParse(command.output ?? {});
  if (!out.success) return { ...head, status: 'failed' as const, error: "the agent's result is unreadable" };
  const e = out.data.engine;
  return {
    ...head,
    status: 'completed' as const,
    filesystems: out.data.filesystems.map(fsView),
    engine: e && {
      name: e.name,
      root_dir: e.rootDir,
      layers_size_bytes: e.layersSizeBytes,
      images: {
        count: e.images.count,
        size_bytes: e.images.sizeBytes,
        reclaimable_bytes: e.images.reclaimableBytes,
      },
      containers: {
        count: e.containers.count,
        size_bytes: e.containers.sizeBytes,
        reclaimable_bytes: e.containers.reclaimableBytes,
      },
      volumes: { count: e.volumes.count, size_bytes: e.volumes.sizeBytes },
      build_cache_bytes: e.buildCacheBytes,
    },
    ...(out.data.engineError ? { engine_error: out.data.engineError } : {}),
  };
}

/** POST /api/maintenance/disk/audit: one node, or every online node; 202 with what is done when some have not answered. */
export async function diskAudit(ctx: AppContext, nodeRef: string | undefined): Promise<unknown> {
  let targets: NodeItem[];
  if (nodeRef !== undefined) {
    const node = await resolveNode(ctx, nodeRef);
    if (!node) throw new NotFoundError(`Node ${nodeRef} not found`);
    requireOnline(ctx, node);
    targets = [node];
  } else {
    const now = ctx.now();
    targets = (await listNodes(ctx)).filter((n) => isOnline(n, ctx, now));
  }
  const sent = await Promise.all(
    targets.map(async (node) => ({
      node,
      commandId: await dispatchCommand(ctx, node.nodeId, { type: 'disk.audit' }),
    })),
  );
  const waited = await waitForCommands(
    ctx,
    sent.map((s) => s.commandId),
  );
  const done = new Map(waited.done.map((c) => [c.commandId, c]));
  const nodes = sent.map((s) => auditView(s.node, s.commandId, done.get(s.commandId)));
  if (waited.pending.length)
    return reply(202, { status: 'pending', pending_commands: waited.pending, nodes });
  return { nodes };
}
