import type { AppContext } from '../core/context.js';
import { emit } from '../core/events.js';
import { ConflictError, HttpError, NotFoundError, ValidationError } from '../core/errors.js';
import { keys } from '../core/keys.js';
import { reply } from '../core/http.js';
import { dispatchCommand, waitForCommands, type CommandItem } from '../fleet/commands.js';
import {
  getNode,
  heartbeatIntervalSeconds,
  isOnline,
  listNodes,
  resolveNode,
  type NodeItem,
} from '../fleet/nodes.js';
import type { AgentEvent, ContainerState } from '../../protocol/messages.js';
import { containerStartOutput } from '../../protocol/agent-api.js';
import { ConditionFailedError } from '../ports/store.js';
import {
  adjustDesired,
  allInstances,
  getInstance,
  getService,
  imageInstances,
  instanceName,
  isUpdating,
  listServices,
  nodeInstances,
  releaseSlotsOf,
  serviceSlots,
  transitionInstance,
  type InstanceItem,
  type PortBinding,
  type ServiceItem,
} from './model.js';
import { isPullFailure } from './backoff.js';
import { BACKING_OFF, LIVE, planReconcile, type InstanceStatus } from './plan.js';
import { loadState, planInput, reconcile, toPlanService, type Placed } from './reconciler.js';
import { deleteInstanceEndpoints, instanceEndpointsDown, registerInstanceEndpoints } from './registry.js';
import { resourcesView, toReservation, type InstanceResources } from './resources.js';

// ---------------------------------------------------------------- views

/** Docker's words for our states, since the documented clients test for `running`. */
const ENGINE_STATUS: Record<InstanceStatus, string> = {
  pending: 'created',
  running: 'running',
  stopping: 'running',
  stopped: 'exited',
  exited: 'exited',
  failed: 'dead',
  orphaned: 'unknown',
  removing: 'removing',
  removed: 'removed',
};
export const engineStatus = (s: InstanceStatus) => ENGINE_STATUS[s];

/** `{"80/tcp": "8080"}` */
export function portsView(ports: PortBinding[]): Record<string, string> {
  return Object.fromEntries(
    ports
      .filter((p) => p.hostPort)
      .map((p) => [`${p.containerPort}/${p.protocol || 'tcp'}`, String(p.hostPort)]),
  );
}

const resourcesOut = resourcesView;

/** A dead copy waiting out its restart backoff: why, how many failures in a row, when it is tried again. */
export function backoffView(i: InstanceItem) {
  return i.backoff && BACKING_OFF.has(i.status)
    ? {
        reason: i.backoff.reason,
        attempt: i.backoff.attempt,
        next_try_at: new Date(i.backoff.nextTryAt).toISOString(),
      }
    : undefined;
}

export function containerView(i: InstanceItem) {
  const backoff = backoffView(i);
  return {
    id: i.instanceId,
    name: i.name,
    image: i.imageId,
    status: backoff ? 'backoff' : engineStatus(i.status),
    ...(backoff ? { backoff } : {}),
    ports: portsView(i.ports),
    created_at: i.createdAt,
    resources: resourcesOut(i.resources),
    node_id: i.nodeId,
  };
}

export function endpointUrl(i: InstanceItem, node: NodeItem | undefined): string | null {
  const p = i.ports.find((b) => b.hostPort);
  if (!p || !node) return null;
  const host = node.addresses[0] ?? node.hostname;
  return `http://${host.includes(':') ? `[${host}]` : host}:${p.hostPort}`;
}

export async function listContainers(ctx: AppContext) {
  const instances = await allInstances(ctx);
  instances.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
  return { containers: instances.map(containerView), total: instances.length };
}

export async function listImageInstances(ctx: AppContext, imageId: string) {
  const instances = await imageInstances(ctx, imageId);
  const nodes = new Map<string, NodeItem | undefined>();
  for (const id of new Set(instances.map((i) => i.nodeId))) nodes.set(id, await getNode(ctx, id));
  return {
    instances: instances.map((i) => ({
      id: i.instanceId,
      status: engineStatus(i.status),
      endpoint: endpointUrl(i, nodes.get(i.nodeId)),
      resources: resourcesOut(i.resources),
      node_id: i.nodeId,
    })),
  };
}

export async function listImages(ctx: AppContext) {
  const [nodes, services] = await Promise.all([listNodes(ctx), listServices(ctx)]);
  const state = { nodes, services, instances: await allInstances(ctx, services) };
  const now = ctx.now();
  const online = new Set(state.nodes.filter((n) => isOnline(n, ctx, now)).map((n) => n.nodeId));
  return {
    images: state.services
      .map((s) => {
        const mine = state.instances.filter((i) => i.imageId === s.imageId);
        return {
          image: s.imageId,
          desired_count: s.desiredCount,
          current_running: mine.filter((i) => i.status === 'running' && online.has(i.nodeId)).length,
          total_instances: mine.length,
          resources: resourcesOut(s.resources),
        };
      })
      .sort((a, b) => (a.image < b.image ? -1 : 1)),
  };
}

/** Health thresholds of the documented HealthResponse. */
export function healthLevel(cpu: number, memory: number): 'healthy' | 'warning' | 'critical' {
  const worst = Math.max(cpu, memory);
  if (worst > 90) return 'critical';
  if (worst >= 75) return 'warning';
  return 'healthy';
}

const round = (n: number) => Math.round(n * 100) / 100;

export async function instanceHealth(ctx: AppContext, instanceId: string) {
  const inst = await getInstance(ctx, instanceId);
  if (!inst || inst.status === 'removed') throw new NotFoundError(`Instance ${instanceId} not found`);
  const node = await getNode(ctx, inst.nodeId);
  const sample = node?.containerStats?.[instanceId];
  const cpu = round(sample?.cpuPercent ?? 0);
  const memory = round(sample?.memoryPercent ?? 0);
  if (inst.status !== 'running') {
    const why =
      inst.status === 'exited'
        ? [
            `Container exited${inst.exitCode !== undefined && inst.exitCode !== null ? ` with code ${inst.exitCode}` : ''}${inst.lastError ? `: ${inst.lastError}` : ''}`,
          ]
        : inst.status === 'failed'
          ? [`Container failed to start${inst.lastError ? `: ${inst.lastError}` : ''}`]
          : null;
    return { cpu_usage: 0.0, memory_usage: 0.0, disk_usage: 0.0, status: 'stopped' as const, errors: why };
  }
  if (!node || !isOnline(node, ctx)) {
    return {
      cpu_usage: cpu,
      memory_usage: memory,
      disk_usage: 0.0,
      status: 'critical' as const,
      errors: [`Node ${inst.nodeId} is offline (last heartbeat ${node?.lastHeartbeat ?? 'never'})`],
    };
  }
  const status = healthLevel(cpu, memory);
  const errors: string[] = [];
  if (cpu >= 75) errors.push(`High CPU usage: ${cpu}%`);
  if (memory >= 75) errors.push(`High memory usage: ${memory}%`);
  return {
    cpu_usage: cpu,
    memory_usage: memory,
    disk_usage: 0.0,
    status,
    errors: errors.length ? errors : null,
  };
}

// ---------------------------------------------------------------- waiting

/** 200 with the body once every command is done; past COMMAND_WAIT_MS, 202 with what is still pending. */
export async function settle(
  ctx: AppContext,
  commandIds: string[],
  done: (commands: CommandItem[]) => Promise<unknown>,
  pendingExtras: Record<string, unknown> = {},
): Promise<unknown> {
  const outcome = await waitForCommands(ctx, commandIds);
  if (outcome.pending.length)
    return reply(202, { status: 'pending', pending_commands: outcome.pending, ...pendingExtras });
  return done(outcome.done);
}

export function failures(commands: CommandItem[]) {
  return commands
    .filter((c) => c.status === 'failed')
    .map((c) => ({ id: c.instanceId ?? c.commandId, error: c.error ?? 'failed' }));
}

// ---------------------------------------------------------------- starting

export interface StartInput {
  count: number;
  resources?: InstanceResources;
  ports?: number[];
  env?: Record<string, string>;
  command?: string[];
  node_id?: string;
}

async function nodeIdFor(
  ctx: AppContext,
  nodeRef: string | undefined,
  loc: (string | number)[],
): Promise<string | undefined> {
  if (nodeRef === undefined) return undefined;
  const node = await resolveNode(ctx, nodeRef);
  if (!node) throw new ValidationError([{ loc, msg: `Unknown node: ${nodeRef}`, type: 'value_error' }]);
  return node.nodeId;
}

/** The service as it will be after this request; not written yet. */
export function nextService(
  ctx: AppContext,
  imageId: string,
  current: ServiceItem | undefined,
  desiredCount: number,
  input: Omit<StartInput, 'count'>,
  nodeId?: string,
): ServiceItem {
  const at = new Date(ctx.now()).toISOString();
  return {
    ...keys.service(imageId),
    ...keys.servicesIndex(imageId),
    imageId,
    desiredCount,
    resources: { ...(current?.resources ?? {}), ...(input.resources ?? {}) },
    ports: input.ports ?? current?.ports ?? [],
    env: input.env ?? current?.env ?? {},
    ...((input.command ?? current?.command) ? { command: input.command ?? current?.command } : {}),
    ...((nodeId ?? current?.nodeId) ? { nodeId: nodeId ?? current?.nodeId } : {}),
    // What the Swarm API set stays with the image whichever API changes its count.
    ...(current?.constraints ? { constraints: current.constraints } : {}),
    ...(current?.volumes ? { volumes: current.volumes } : {}),
    ...(current?.hostPorts ? { hostPorts: current.hostPorts } : {}),
    ...(current?.serviceName ? { serviceName: current.serviceName } : {}),
    createdAt: current?.createdAt ?? at,
    updatedAt: at,
    ...(current?.version !== undefined ? { version: current.version } : {}),
  };
}

/** Refuses a start nothing can run, before anything is written (the request changes nothing). */
async function preflight(ctx: AppContext, next: ServiceItem, wanted: number): Promise<void> {
  if (wanted <= 0) return;
  const state = await loadState(ctx, next.imageId);
  const plan = planReconcile(planInput(ctx, state, [toPlanService(next)]));
  const places = plan.actions.filter((a) => a.type === 'place').length;
  if (places === 0) {
    const why = plan.unplaced[0]?.reason ?? 'no online node';
    throw new ConflictError(`Cannot start ${next.imageId}: ${why}`, 'NO_CAPACITY');
  }
}

/** Writes the service: created if new, else replaced if nobody changed it since it was read. False when someone did. */
async function saveService(ctx: AppContext, next: ServiceItem, existed: boolean): Promise<boolean> {
  const { version, ...item } = next;
  try {
    if (existed) await ctx.store.put({ ...item, version: (version ?? 1) + 1 }, { version: version ?? 1 });
    else await ctx.store.put(item, { notExists: true });
    return true;
  } catch (error) {
    if (error instanceof ConditionFailedError) return false;
    throw error;
  }
}

/** Read, check, write the service; concurrent requests for the same image retry on the version. */
export async function changeService(
  ctx: AppContext,
  imageId: string,
  decide: (current: ServiceItem | undefined) => Promise<{ next: ServiceItem; wanted: number } | undefined>,
): Promise<ServiceItem | undefined> {
  for (let attempt = 0; attempt < 8; attempt++) {
    const current = await getService(ctx, imageId);
    const change = await decide(current);
    if (!change) return undefined;
    await preflight(ctx, change.next, change.wanted);
    if (await saveService(ctx, change.next, current !== undefined)) return change.next;
  }
  throw new ConflictError(`Image ${imageId} is changing concurrently; retry`);
}

/**
 * Every copy a start asked for failed. An image no node could pull is the request's to fix (422);
 * any other failure is the engine's (502). Either way the desired count stays: the copies are
 * retried with backoff (orchestrator/backoff.ts) until the image is scaled down or deleted.
 */
async function startFailed(ctx: AppContext, imageId: string, errors: string[]): Promise<HttpError> {
  const desired = (await getService(ctx, imageId))?.desiredCount ?? 0;
  const pull = errors.every(isPullFailure);
  return new HttpError(
    pull ? 422 : 502,
    `Failed to start ${imageId}: ${errors.join('; ')}. The desired count stays ${desired}: the copies are retried with backoff (10 s doubling to 5 min); scale the image down or delete it to stop them`,
    pull ? 'IMAGE_PULL_FAILED' : 'START_FAILED',
    { reason: pull ? 'image_pull_failed' : 'start_failed', desired_count: desired },
  );
}

/** POST /containers/{imageId}/start: `count` more copies. */
export async function startContainers(ctx: AppContext, imageId: string, input: StartInput): Promise<unknown> {
  const nodeId = await nodeIdFor(ctx, input.node_id, ['body', 'node_id']);
  await changeService(ctx, imageId, async (current) => ({
    next: nextService(ctx, imageId, current, (current?.desiredCount ?? 0) + input.count, input, nodeId),
    wanted: input.count,
  }));
  const placed = (await reconcile(ctx, { imageId })).placed.filter((p) => p.imageId === imageId);
  const started = placed.map((p) => p.instanceId);
  return settle(
    ctx,
    placed.map((p) => p.commandId),
    async (commands) => {
      const failed = failures(commands);
      const ok = started.filter((id) => !failed.some((f) => f.id === id));
      if (!ok.length && failed.length) throw await startFailed(ctx, imageId, failed.map((f) => f.error));
      return {
        started: ok,
        ...(failed.length ? { failed } : {}),
        ...(input.count > placed.length ? { pending_placement: input.count - placed.length } : {}),
      };
    },
    { started },
  );
}

/** POST /start/container: at least `count` copies of the image; reuse one when they already run. */
export async function startOrReuse(ctx: AppContext, imageId: string, input: StartInput): Promise<unknown> {
  const nodeId = await nodeIdFor(ctx, input.node_id, ['body', 'node_id']);
  let reuse: InstanceItem | undefined;
  await changeService(ctx, imageId, async (current) => {
    const live = current ? (await imageInstances(ctx, imageId)).filter((i) => LIVE.has(i.status)) : [];
    if (current && live.length >= input.count) {
      reuse = live.find((i) => i.status === 'running') ?? live[0]!;
      return undefined;
    }
    return {
      next: nextService(
        ctx,
        imageId,
        current,
        Math.max(current?.desiredCount ?? 0, input.count),
        input,
        nodeId,
      ),
      wanted: input.count - live.length,
    };
  });
  if (reuse) {
    const r = reuse;
    return {
      ok: true,
      action: 'reused',
      image: imageId,
      container_id: r.instanceId,
      name: r.name,
      status: engineStatus(r.status),
      ports: portsView(r.ports),
    };
  }
  const placed = (await reconcile(ctx, { imageId })).placed.filter((p) => p.imageId === imageId);
  const first: Placed | undefined = placed[0];
  if (!first) throw new ConflictError(`Cannot start ${imageId}: no copy could be placed`, 'NO_CAPACITY');
  return settle(
    ctx,
    placed.map((p) => p.commandId),
    async (commands) => {
      const mine = commands.find((c) => c.commandId === first.commandId);
      if (mine?.status === 'failed') throw await startFailed(ctx, imageId, [mine.error ?? 'unknown error']);
      const inst = (await getInstance(ctx, first.instanceId))!;
      return {
        ok: true,
        action: 'created',
        image: imageId,
        container_id: inst.instanceId,
        name: inst.name,
        status: engineStatus(inst.status),
        ports: portsView(inst.ports),
      };
    },
    {
      ok: true,
      action: 'created',
      image: imageId,
      container_id: first.instanceId,
      name: instanceName(first.instanceId),
    },
  );
}

// ---------------------------------------------------------------- stopping, deleting

/** The slot goes with the user's intent: one copy fewer wanted, this one's ordinal free. */
async function giveUpSlot(ctx: AppContext, inst: InstanceItem): Promise<void> {
  const held = (await serviceSlots(ctx, inst.imageId)).some((s) => s.instanceId === inst.instanceId);
  if (!held) return;
  // Desired first: a reconciler in between sees one slot too many and releases the locked one.
  await adjustDesired(ctx, inst.imageId, -1);
  await releaseSlotsOf(ctx, inst.imageId, inst.instanceId);
}

const STOPPABLE: InstanceStatus[] = ['pending', 'running', 'exited', 'failed', 'orphaned'];

/** POST /containers/{imageId}/stop */
export async function stopInstance(ctx: AppContext, imageId: string, instanceId: string): Promise<unknown> {
  let inst = await getInstance(ctx, instanceId);
  if (!inst || inst.imageId !== imageId || inst.status === 'removed') {
    throw new NotFoundError(`Instance ${instanceId} not found for image ${imageId}`);
  }
  if (inst.status === 'stopped') return { stopped: true };
  if (inst.status === 'removing') throw new ConflictError(`Instance ${instanceId} is being removed`);
  if (inst.status !== 'stopping') {
    const locked = await transitionInstance(ctx, instanceId, STOPPABLE, 'stopping');
    if (!locked) throw new ConflictError(`Instance ${instanceId} changed concurrently; retry`);
    inst = locked;
    await giveUpSlot(ctx, inst);
    await instanceEndpointsDown(ctx, inst);
    const commandId = await dispatchCommand(
      ctx,
      inst.nodeId,
      { type: 'container.stop', instanceId, timeoutSeconds: 10 },
      { instanceId },
    );
    inst =
      (await transitionInstance(ctx, instanceId, ['stopping'], 'stopping', { lastCommandId: commandId })) ??
      inst;
  }
  return settle(ctx, [inst.lastCommandId!], async (commands) => {
    const failed = failures(commands);
    if (failed.length) throw new HttpError(500, `Failed to stop ${instanceId}: ${failed[0]!.error}`);
    return { stopped: true };
  });
}

/** By instance id, by name (`container-<id>`), or by the engine's container id (12+ characters of it). */
export async function findContainer(ctx: AppContext, idOrName: string): Promise<InstanceItem | undefined> {
  const direct = await getInstance(ctx, idOrName);
  if (direct) return direct;
  const named = /^container-([0-9a-f]+)$/.exec(idOrName);
  if (named) {
    const byName = await getInstance(ctx, named[1]!);
    if (byName) return byName;
  }
  if (idOrName.length < 12) return undefined;
  return (await allInstances(ctx)).find(
    (i) => i.containerId && (i.containerId === idOrName || i.containerId.startsWith(idOrName)),
  );
}

/** DELETE /containers/{idOrName}?force= */
export async function deleteContainer(ctx: AppContext, idOrName: string, force: boolean): Promise<unknown> {
  const inst = await findContainer(ctx, idOrName);
  if (!inst || inst.status === 'removed') throw new NotFoundError(`Container ${idOrName} not found`);
  if (!force && (inst.status === 'pending' || inst.status === 'running' || inst.status === 'stopping')) {
    throw new ConflictError(`Container ${inst.name} is running: stop it first or delete with force=true`);
  }
  const locked = await transitionInstance(ctx, inst.instanceId, [inst.status], 'removing');
  if (!locked) throw new ConflictError(`Container ${inst.name} changed concurrently; retry`);
  await giveUpSlot(ctx, locked);
  await instanceEndpointsDown(ctx, locked);
  const commandId = await dispatchCommand(
    ctx,
    inst.nodeId,
    { type: 'container.remove', instanceId: inst.instanceId, force },
    { instanceId: inst.instanceId },
  );
  await transitionInstance(ctx, inst.instanceId, ['removing'], 'removing', { lastCommandId: commandId });
  return settle(
    ctx,
    [commandId],
    async (commands) => {
      const failed = failures(commands);
      if (failed.length) throw new HttpError(500, `Failed to delete ${inst.name}: ${failed[0]!.error}`);
      return { deleted: true, container_id: inst.instanceId, name: inst.name };
    },
    { container_id: inst.instanceId, name: inst.name },
  );
}

/** Restarts a running copy in place (same container, same slot); heartbeats meanwhile are not a death. */
export async function restartContainer(ctx: AppContext, idOrName: string): Promise<unknown> {
  const inst = await findContainer(ctx, idOrName);
  if (!inst || inst.status === 'removed') throw new NotFoundError(`Container ${idOrName} not found`);
  if (inst.status !== 'running')
    throw new ConflictError(`Container ${inst.name} is ${engineStatus(inst.status)}: only a running container restarts`);
  await setInstance(ctx, inst.instanceId, { updatingSince: ctx.now() });
  const commandId = await dispatchCommand(
    ctx,
    inst.nodeId,
    { type: 'container.restart', instanceId: inst.instanceId, timeoutSeconds: 10 },
    { instanceId: inst.instanceId },
  );
  return settle(
    ctx,
    [commandId],
    async (commands) => {
      const failed = failures(commands);
      if (failed.length) throw new HttpError(500, `Failed to restart ${inst.name}: ${failed[0]!.error}`);
      return { restarted: true, container_id: inst.instanceId, name: inst.name };
    },
    { container_id: inst.instanceId, name: inst.name },
  );
}

// ---------------------------------------------------------------- resources

/** PUT /containers/{imageId}/resources: new limits for the image and every running copy. */
export async function updateResources(
  ctx: AppContext,
  imageId: string,
  changes: InstanceResources,
): Promise<unknown> {
  let resources: InstanceResources = {};
  await changeService(ctx, imageId, async (current) => {
    if (!current) throw new NotFoundError(`Image ${imageId} not found`);
    resources = { ...current.resources, ...changes };
    // Limits only: nothing new is placed, so nothing to check against capacity.
    return { next: { ...current, resources, updatedAt: new Date(ctx.now()).toISOString() }, wanted: 0 };
  });
  const r = toReservation(resources);
  const running = (await imageInstances(ctx, imageId)).filter((i) => i.status === 'running');
  const dispatched: { instanceId: string; commandId: string }[] = [];
  for (const inst of running) {
    // Shield first: a fast agent may recreate the container before the dispatch call returns.
    await setInstance(ctx, inst.instanceId, { updatingSince: ctx.now() });
    const commandId = await dispatchCommand(
      ctx,
      inst.nodeId,
      {
        type: 'container.update',
        instanceId: inst.instanceId,
        ...(r.cpu ? { cpuLimit: r.cpu } : {}),
        ...(r.memoryMb ? { memoryLimitMb: r.memoryMb } : {}),
        ...(r.diskGb ? { diskLimitGb: r.diskGb } : {}),
      },
      { instanceId: inst.instanceId },
    );
    dispatched.push({ instanceId: inst.instanceId, commandId });
  }
  const all = dispatched.map((d) => d.instanceId);
  return settle(
    ctx,
    dispatched.map((d) => d.commandId),
    async (commands) => {
      const failed = failures(commands);
      return {
        updated: all.filter((id) => !failed.some((f) => f.id === id)),
        ...(failed.length ? { failed } : {}),
      };
    },
    { updated: all },
  );
}

// ---------------------------------------------------------------- what agents report

/** The instance side of a command's first result. */
export async function applyCommandResult(ctx: AppContext, command: CommandItem): Promise<void> {
  const instanceId = command.instanceId;
  if (!instanceId) return;
  const ok = command.status === 'succeeded';
  switch (command.type) {
    case 'container.start': {
      if (!ok) {
        const failed = await transitionInstance(ctx, instanceId, ['pending'], 'failed', {
          lastError: command.error ?? 'start failed',
        });
        if (failed) await emit(ctx, { type: 'reconcile', imageId: failed.imageId });
        return;
      }
      const out = engineFacts(command.output);
      if (out.state === 'exited' || out.state === 'dead') {
        // Started and died at once: dead now, replaced by the next reconcile.
        const dead = await transitionInstance(ctx, instanceId, ['pending'], 'exited', {
          ...out.set,
          exitCode: out.exitCode ?? null,
        });
        if (dead) await emit(ctx, { type: 'reconcile', imageId: dead.imageId });
        return;
      }
      const inst = await transitionInstance(ctx, instanceId, ['pending'], 'running', {
        ...out.set,
        runningSince: ctx.now(),
      });
      const node = inst && (await getNode(ctx, inst.nodeId));
      if (inst && node) await registerInstanceEndpoints(ctx, inst, node);
      return;
    }
    case 'container.stop': {
      if (ok) {
        const inst = await transitionInstance(ctx, instanceId, ['stopping'], 'stopped');
        if (inst) await instanceEndpointsDown(ctx, inst);
      } else {
        // It gave up its slot already; as an unreferenced dead copy the reconciler removes it.
        const inst = await transitionInstance(ctx, instanceId, ['stopping'], 'exited', {
          lastError: command.error ?? 'stop failed',
        });
        if (inst) await emit(ctx, { type: 'reconcile', imageId: inst.imageId });
      }
      return;
    }
    case 'container.remove': {
      if (ok) {
        const inst = await transitionInstance(ctx, instanceId, ['removing'], 'removed');
        if (inst) await deleteInstanceEndpoints(ctx, inst);
      } else {
        await transitionInstance(ctx, instanceId, ['removing'], 'removing', {
          lastError: command.error ?? 'remove failed',
        });
      }
      return;
    }
    case 'container.update': {
      if (!ok) {
        await setInstance(ctx, instanceId, { lastError: command.error ?? 'update failed' }, [
          'updatingSince',
        ]);
        return;
      }
      const inst = await getInstance(ctx, instanceId);
      const service = inst && (await getService(ctx, inst.imageId));
      if (!inst || !service) return;
      // Engines without in-place update (Podman) recreate the container: new id, maybe new ports.
      const updated = await setInstance(
        ctx,
        instanceId,
        {
          ...engineFacts(command.output).set,
          resources: service.resources,
          reserve: toReservation(service.resources),
        },
        ['updatingSince'],
      );
      const node = updated?.status === 'running' ? await getNode(ctx, updated.nodeId) : undefined;
      if (updated && node) await registerInstanceEndpoints(ctx, updated, node);
      return;
    }
    case 'container.restart': {
      const set = ok ? engineFacts(command.output).set : { lastError: command.error ?? 'restart failed' };
      await setInstance(ctx, instanceId, set, ['updatingSince']);
      return;
    }
    default:
      return;
  }
}

async function setInstance(
  ctx: AppContext,
  instanceId: string,
  set: Partial<InstanceItem>,
  remove: string[] = [],
): Promise<InstanceItem | undefined> {
  const k = keys.instance(instanceId);
  try {
    return await ctx.store.update<InstanceItem>(k.pk, k.sk, {
      set: { ...set, updatedAt: new Date(ctx.now()).toISOString() },
      remove,
    });
  } catch (error) {
    if (!(error instanceof ConditionFailedError)) throw error;
    return undefined;
  }
}

/** Container id, ports and state from a start or update result's output (the agent's `describe`). */
function engineFacts(output: Record<string, unknown> | undefined): {
  set: Partial<InstanceItem>;
  state?: string;
  exitCode?: number | null;
} {
  const out = containerStartOutput.safeParse(output ?? {});
  if (!out.success) return { set: {} };
  const set: Partial<InstanceItem> = {};
  if (out.data.containerId) set.containerId = out.data.containerId;
  if (out.data.ports)
    set.ports = out.data.ports.map((p) => ({
      containerPort: p.containerPort,
      hostPort: p.hostPort,
      protocol: p.protocol,
    }));
  return { set, state: out.data.state, exitCode: out.data.exitCode };
}

const samePorts = (a: PortBinding[], b: PortBinding[]) =>
  a.length === b.length &&
  a.every((p, i) => p.containerPort === b[i]!.containerPort && p.hostPort === b[i]!.hostPort);

/**
 * Reconciles instance records with the containers a heartbeat reports. Returns true when a copy
 * died (the caller asks for a reconcile). Only `service` containers are the orchestrator's.
 */
export async function applyContainerStates(
  ctx: AppContext,
  node: NodeItem,
  containers: ContainerState[],
  cameOnline: boolean,
): Promise<boolean> {
  const now = ctx.now();
  // A start's result can overtake the heartbeat that would have listed the container.
  const missingGraceMs = Math.max(10_000, 2 * heartbeatIntervalSeconds(ctx) * 1000);
  const reported = new Map(containers.filter((c) => c.kind === 'service').map((c) => [c.instanceId, c]));
  let died = false;
  const known = new Set<string>();
  for (const inst of await nodeInstances(ctx, node.nodeId, true)) {
    known.add(inst.instanceId);
    const c = reported.get(inst.instanceId);
    if (!LIVE.has(inst.status)) {
      if (c) await chaseStray(ctx, inst, c, now - missingGraceMs);
      continue;
    }
    if (c?.state === 'running') {
      const ports = c.ports.map((p) => ({
        containerPort: p.containerPort,
        hostPort: p.hostPort,
        protocol: p.protocol,
      }));
      if (inst.status === 'pending' || inst.containerId !== c.containerId || !samePorts(inst.ports, ports)) {
        const updated = await transitionInstance(ctx, inst.instanceId, [inst.status], 'running', {
          containerId: c.containerId,
          ports,
          runningSince: inst.runningSince ?? now,
        });
        if (updated) await registerInstanceEndpoints(ctx, updated, node);
      } else if (cameOnline) {
        await registerInstanceEndpoints(ctx, inst, node);
      }
    } else if (isUpdating(inst, now)) {
      // Being recreated with new limits: exited or missing is expected until the result comes.
      continue;
    } else if (c && (c.state === 'exited' || c.state === 'dead')) {
      const updated = await transitionInstance(ctx, inst.instanceId, [inst.status], 'exited', {
        containerId: c.containerId,
        exitCode: c.exitCode ?? null,
      });
      if (updated) {
        await instanceEndpointsDown(ctx, updated);
        died = true;
      }
    } else if (!c && inst.status === 'running' && now - (inst.runningSince ?? 0) > missingGraceMs) {
      const updated = await transitionInstance(ctx, inst.instanceId, ['running'], 'exited', {
        lastError: 'container no longer reported by its node',
      });
      if (updated) {
        await instanceEndpointsDown(ctx, updated);
        died = true;
      }
    }
  }
  // Labelled service containers nobody tracks (state lost, or placed by a reconciler that lost): remove them once.
  for (const c of reported.values()) {
    if (known.has(c.instanceId) || (await getInstance(ctx, c.instanceId))) continue;
    const at = new Date(now).toISOString();
    const tombstone: InstanceItem = {
      ...keys.instance(c.instanceId),
      ...keys.instanceIndexes(c.imageId, node.nodeId, c.instanceId),
      instanceId: c.instanceId,
      imageId: c.imageId,
      nodeId: node.nodeId,
      name: c.name,
      status: 'removing',
      ordinal: -1,
      resources: {},
      reserve: { cpu: 0, memoryMb: 0, diskGb: 0, gpus: 0 },
      containerPorts: [],
      ports: [],
      containerId: c.containerId,
      createdAt: at,
      updatedAt: at,
      lastError: 'unknown to the control plane',
    };
    try {
      await ctx.store.put(tombstone, { notExists: true });
    } catch (error) {
      if (error instanceof ConditionFailedError) continue;
      throw error;
    }
    await dispatchCommand(
      ctx,
      node.nodeId,
      { type: 'container.remove', instanceId: c.instanceId, force: true },
      { instanceId: c.instanceId },
    );
  }
  return died;
}

/**
 * A container still there after its stop or removal was confirmed: a start that overtook the stop
 * on the (unordered) queue, or an engine that lied. Asked again, at most once per grace period.
 */
async function chaseStray(
  ctx: AppContext,
  inst: InstanceItem,
  c: ContainerState,
  settledBefore: number,
): Promise<void> {
  if (Date.parse(inst.updatedAt) > settledBefore) return;
  if (inst.status === 'stopped' && (c.state === 'running' || c.state === 'restarting')) {
    if (await transitionInstance(ctx, inst.instanceId, ['stopped'], 'stopping')) {
      const commandId = await dispatchCommand(
        ctx,
        inst.nodeId,
        { type: 'container.stop', instanceId: inst.instanceId, timeoutSeconds: 10 },
        { instanceId: inst.instanceId },
      );
      await transitionInstance(ctx, inst.instanceId, ['stopping'], 'stopping', { lastCommandId: commandId });
    }
  } else if (inst.status === 'removed') {
    if (await transitionInstance(ctx, inst.instanceId, ['removed'], 'removing')) {
      const commandId = await dispatchCommand(
        ctx,
        inst.nodeId,
        { type: 'container.remove', instanceId: inst.instanceId, force: true },
        { instanceId: inst.instanceId },
      );
      await transitionInstance(ctx, inst.instanceId, ['removing'], 'removing', { lastCommandId: commandId });
    }
  }
}

/** container.exited for a service copy: dead now, replaced by the next reconcile. */
export async function containerExited(
  ctx: AppContext,
  nodeId: string,
  event: Extract<AgentEvent, { type: 'container.exited' }>,
): Promise<boolean> {
  if (event.kind !== 'service') return false;
  const inst = await getInstance(ctx, event.instanceId);
  if (!inst || inst.nodeId !== nodeId || !LIVE.has(inst.status) || isUpdating(inst, ctx.now())) return false;
  const tail = event.logTail.trim().split('\n').slice(-1)[0];
  const updated = await transitionInstance(ctx, inst.instanceId, [inst.status], 'exited', {
    exitCode: event.exitCode,
    ...(tail ? { lastError: tail } : {}),
  });
  if (!updated) return false;
  await instanceEndpointsDown(ctx, updated);
  await emit(ctx, { type: 'reconcile', imageId: inst.imageId });
  return true;
}
