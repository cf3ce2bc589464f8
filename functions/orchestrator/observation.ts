import type { AppContext } from '../core/context.js';
import { emit } from '../core/events.js';
import { keys } from '../core/keys.js';
import { dispatchCommand, type CommandItem } from '../nodes/commands.js';
import { getNode, heartbeatIntervalSeconds, type NodeItem } from '../nodes/nodes.js';
import type { AgentEvent, ContainerState } from '../../protocol/messages.js';
import { containerStartOutput, START_REFUSALS } from '../../protocol/agent-api.js';
import { updateIf } from '../ports/store.js';
import {
  adjustDesired,
  getInstance,
  getService,
  isUpdating,
  keyContainer,
  nodeInstances,
  putInstance,
  releaseSlotsOf,
  setInstance,
  slotsHolding,
  transitionInstance,
  type InstanceItem,
  type PortBinding,
} from './model.js';
import { LIVE } from './plan.js';
import { deleteInstanceEndpoints, instanceEndpointsDown, registerInstanceEndpoints } from './registry.js';
import { engineLimits, sameLimits, toReservation, type EngineLimits } from './resources.js';

/** What agents report about service copies (command results, heartbeats, exit events), applied to instance records. */

/** The instance side of a command's first result. */
export async function applyCommandResult(ctx: AppContext, command: CommandItem): Promise<void> {
  const instanceId = command.instanceId;
  if (!instanceId) return;
  const ok = command.status === 'succeeded';
  switch (command.type) {
    case 'container.start': {
      if (!ok && START_REFUSALS.includes(String(command.output?.['errorType']))) {
        await startRefused(ctx, instanceId, command.error ?? 'start refused');
        return;
      }
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
      // The image's limits only when this command set them: an update overtaken by a later change
      // leaves the copy to that change's rollout (rollout.ts), which sees it differ.
      const current = sameLimits(command.command as EngineLimits, engineLimits(service.resources));
      // Engines without in-place update (Podman) recreate the container: new id, maybe new ports.
      const updated = await setInstance(
        ctx,
        instanceId,
        {
          ...engineFacts(command.output).set,
          ...(current ? { resources: service.resources, reserve: toReservation(service.resources) } : {}),
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
      else if (
        inst.status === 'removing' &&
        inst.lastError &&
        Date.parse(inst.updatedAt) <= now - missingGraceMs
      ) {
        // Its remove failed (or was given up on), yet the container is gone after all: removed.
        const removed = await transitionInstance(ctx, inst.instanceId, ['removing'], 'removed');
        if (removed) await deleteInstanceEndpoints(ctx, removed);
      }
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
      } else {
        if (cameOnline) await registerInstanceEndpoints(ctx, inst, node);
        // A copy from before the container-id lookup: keyed once.
        const k = keys.instance(inst.instanceId);
        if (
          !inst.containerKeyed &&
          (await updateIf(ctx.store, k.pk, k.sk, { set: { containerKeyed: true } }, { exists: true }))
        )
          await keyContainer(ctx, c.containerId, inst.instanceId);
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
    if (!(await putInstance(ctx, tombstone))) continue;
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
  } else if (inst.status === 'removing' && inst.lastError) {
    // Its remove failed (or was given up on after the agent died running it): asked again, once a grace period.
    const commandId = await dispatchCommand(
      ctx,
      inst.nodeId,
      { type: 'container.remove', instanceId: inst.instanceId, force: true },
      { instanceId: inst.instanceId },
    );
    await transitionInstance(ctx, inst.instanceId, ['removing'], 'removing', { lastCommandId: commandId });
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

/**
 * The node refused the start for what was asked: a retry would fail the same way, so the copy is
 * not kept as a dead one to replace. It gives its place back (one copy fewer wanted), and an image
 * that no start wants any more shows no service.
 */
/** Every failed command of these was refused by its node (START_REFUSALS), and one did fail. */
export function allRefused(commands: CommandItem[]): boolean {
  const failed = commands.filter((c) => c.status === 'failed');
  return failed.length > 0 && failed.every((c) => START_REFUSALS.includes(String(c.output?.['errorType'])));
}

export async function startRefused(ctx: AppContext, instanceId: string, error: string): Promise<void> {
  const gone = await transitionInstance(ctx, instanceId, ['pending'], 'removed', { lastError: error });
  if (!gone) return;
  const held = (await slotsHolding(ctx, gone)).length > 0;
  if (held) {
    // Desired first: a reconciler in between sees one slot too many and releases the locked one.
    await adjustDesired(ctx, gone.imageId, -1);
    await releaseSlotsOf(ctx, gone);
  }
  await deleteInstanceEndpoints(ctx, gone).catch(() => undefined);
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
