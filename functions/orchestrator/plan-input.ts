import type { AppContext } from '../core/context.js';
import { isCordoned, isDraining, isOnline, nodeLabels, type NodeItem } from '../nodes/nodes.js';
import type { ContainerSpec } from '../../protocol/commands.js';
import { instanceName, type ServiceItem } from './model.js';
import { planReconcile, type PlanInput, type PlanService } from './plan.js';
import { parseConstraint } from './constraints.js';
import { toReservation } from './resources.js';
import { policyRefusalOn } from '../nodes/node-policy.js';
import type { FleetState, ImageState } from './fleet-state.js';

/** From stored state to the planner's input, and a service's container spec. */

/** `nodes`: those whose own policy refuses the service's containers are left out of its placement. */
export const toPlanService = (s: ServiceItem, nodes: readonly NodeItem[] = []): PlanService => ({
  ...refusedBy(s, nodes),
  imageId: s.imageId,
  desiredCount: s.desiredCount,
  reserve: toReservation(s.resources),
  ...(s.nodeId ? { nodeId: s.nodeId } : {}),
  ...(Object.keys(s.hostPorts ?? {}).length ? { onePerNode: true } : {}),
  ...(s.global ? { global: true } : {}),
  ...(s.command?.length ? { hasCommand: true } : {}),
  // Stored constraints were validated when written; one that no longer parses matches nothing.
  ...(s.constraints?.length
    ? {
        constraints: s.constraints.map((c) => {
          const parsed = parseConstraint(c);
          return typeof parsed === 'string' ? { field: 'id', op: '==' as const, value: '' } : parsed;
        }),
      }
    : {}),
});

function refusedBy(s: ServiceItem, nodes: readonly NodeItem[]): { refusedBy?: Set<string> } {
  if (!s.volumes?.length) return {}; // nothing else a service asks is ruled on by a policy
  const spec = startSpec(s, 'policy-check');
  const refused = new Set(nodes.filter((n) => policyRefusalOn(n, spec)).map((n) => n.nodeId));
  return refused.size ? { refusedBy: refused } : {};
}

export function planInput(
  ctx: AppContext,
  state: FleetState,
  planned: PlanService[],
  options: { retryNow?: boolean } = {},
): PlanInput {
  const now = ctx.now();
  return {
    now,
    nodes: state.nodes.map((n) => ({
      id: n.nodeId,
      online: isOnline(n, ctx, now),
      ...(isCordoned(n) ? { cordoned: true } : {}),
      ...(isDraining(n) ? { draining: true } : {}),
      ...(n.driver === 'process' ? { processOnly: true } : {}),
      capacity: { cpu: n.cpuCount, memoryMb: n.memoryMb, diskGb: n.diskGb, gpus: n.gpus.length },
      facts: { id: n.nodeId, hostname: n.hostname, labels: nodeLabels(n), arch: n.arch, os: n.os },
    })),
    services: planned,
    slots: state.slots.map((s) => ({
      imageId: s.imageId,
      ordinal: s.ordinal,
      instanceId: s.instanceId,
      nodeId: s.nodeId,
      claimedAt: s.claimedAt,
      ...(!options.retryNow && s.backoffFor === s.instanceId && s.backoffUntil !== undefined
        ? { backoffUntil: s.backoffUntil }
        : {}),
    })),
    instances: state.instances.map((i) => ({
      instanceId: i.instanceId,
      imageId: i.imageId,
      nodeId: i.nodeId,
      status: i.status,
      reserve: i.reserve,
    })),
    held: state.held,
  };
}

export function startSpec(service: ServiceItem, instanceId: string): ContainerSpec {
  const r = toReservation(service.resources);
  return {
    instanceId,
    imageId: service.imageId,
    name: instanceName(instanceId),
    kind: 'service',
    ...(service.command?.length ? { command: service.command } : {}),
    env: service.env ?? {},
    ports: (service.ports ?? []).map((containerPort) => ({
      containerPort,
      hostPort: service.hostPorts?.[String(containerPort)] ?? 0,
      protocol: 'tcp' as const,
      ...(service.hostIp ? { hostIp: service.hostIp } : {}),
    })),
    volumes: service.volumes ?? [],
    ...(r.cpu ? { cpuLimit: r.cpu } : {}),
    ...(r.memoryMb ? { memoryLimitMb: r.memoryMb } : {}),
    ...(r.diskGb ? { diskLimitGb: r.diskGb } : {}),
    ...(r.gpus ? { gpus: r.gpus } : {}),
    labels: {},
    // The control plane replaces dead containers (maybe elsewhere); the engine must not restart them behind its back.
    restart: 'no',
  };
}

/**
 * Plans `planned` over the state, reading more pages of eligible nodes while copies are left
 * unplaced for want of a node (not for a backoff) and the index has more.
 */
export async function planPaged(
  ctx: AppContext,
  image: ImageState | undefined,
  state: FleetState,
  planned: ServiceItem[],
  options: { retryNow?: boolean } = {},
): Promise<{ input: PlanInput; plan: ReturnType<typeof planReconcile> }> {
  const planFor = () => {
    const input = planInput(
      ctx,
      state,
      planned.map((s) => toPlanService(s, state.nodes)),
      options,
    );
    return { input, plan: planReconcile(input) };
  };
  let out = planFor();
  while (image && out.plan.unplaced.some((u) => !u.reason.startsWith('backing off')) && (await image.more()))
    out = planFor();
  return out;
}
