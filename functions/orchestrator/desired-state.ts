import type { AppContext } from '../core/context.js';
import { ConflictError } from '../core/errors.js';
import { keys } from '../core/keys.js';
import { putIf, putIfAbsent } from '../ports/store.js';
import { getService, type ServiceItem } from './model.js';
import { imageState } from './fleet-state.js';
import { planInput, planPaged, startSpec, toPlanService } from './plan-input.js';
import { satisfies } from './constraints.js';
import { refuseUnlessAllowed } from '../nodes/node-policy.js';
import type { InstanceResources } from './resources.js';

/** Desired state of an image (its ServiceItem): computed, checked against capacity, written on its version. */

export interface StartInput {
  count: number;
  resources?: InstanceResources;
  ports?: number[];
  env?: Record<string, string>;
  command?: string[];
  node_id?: string;
  /** Host address the copies' published ports bind to (default 127.0.0.1, chosen by the agent). */
  host_ip?: string;
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
  // Settings come from the copies still wanted; an image nothing wants starts afresh, so a later
  // start never picks up the ports, limits or env of one that was stopped.
  const base = current && current.desiredCount > 0 ? current : undefined;
  return {
    ...keys.service(imageId),
    ...keys.servicesIndex(imageId),
    imageId,
    desiredCount,
    resources: { ...(base?.resources ?? {}), ...(input.resources ?? {}) },
    ports: input.ports ?? base?.ports ?? [],
    env: input.env ?? base?.env ?? {},
    ...((input.command ?? base?.command) ? { command: input.command ?? base?.command } : {}),
    ...((nodeId ?? base?.nodeId) ? { nodeId: nodeId ?? base?.nodeId } : {}),
    ...((input.host_ip ?? base?.hostIp) ? { hostIp: input.host_ip ?? base?.hostIp } : {}),
    // What the Swarm API set stays with the image whichever API changes its count.
    ...(current?.constraints ? { constraints: current.constraints } : {}),
    ...(current?.volumes ? { volumes: current.volumes } : {}),
    ...(current?.hostPorts ? { hostPorts: current.hostPorts } : {}),
    ...(current?.serviceName ? { serviceName: current.serviceName } : {}),
    // A change of count leaves a limits rollout under way going.
    ...(base?.rollout ? { rollout: base.rollout } : {}),
    // Stopping a global service (count 0) ends its global mode; any other change keeps it.
    ...(current?.global && desiredCount > 0 ? { global: true } : {}),
    createdAt: current?.createdAt ?? at,
    updatedAt: at,
    ...(current?.version !== undefined ? { version: current.version } : {}),
  };
}

/** Refuses a start nothing can run, before anything is written (the request changes nothing). */
async function preflight(ctx: AppContext, next: ServiceItem, wanted: number): Promise<void> {
  if (wanted <= 0) return;
  // One image: its nodes and pages of eligible ones until a copy can be placed. A global service
  // is read as a replicated one (any eligible node will do for the check), never the fleet.
  const image = (await imageState(ctx, next.global ? { ...next, global: false } : next))!;
  const state = image.state;
  let { plan: paged } = await planPaged(ctx, image, state, [next]);
  // A page of nodes none of which is eligible leaves nothing unplaced for a global service: the next page may have one.
  while (next.global && !paged.actions.some((a) => a.type === 'place') && (await image.more()))
    ({ plan: paged } = await planPaged(ctx, image, state, [next]));
  const service = toPlanService(next, state.nodes);
  const input = planInput(ctx, state, [service]);
  if (service.refusedBy && !paged.actions.some((a) => a.type === 'place')) {
    // Nodes that could take it by state and constraints, but whose owners do not allow it: a 422.
    const candidates = new Set(
      input.nodes
        .filter(
          (n) =>
            n.online &&
            !n.cordoned &&
            !n.draining &&
            (!service.nodeId || n.id === service.nodeId) &&
            (!service.constraints?.length || (n.facts && satisfies(n.facts, service.constraints))),
        )
        .map((n) => n.id),
    );
    refuseUnlessAllowed(
      state.nodes.filter((n) => candidates.has(n.nodeId)),
      startSpec(next, 'policy-check'),
      next.serviceName ?? next.imageId,
    );
  }
  const places = paged.actions.filter((a) => a.type === 'place').length;
  if (places === 0) {
    const why = paged.unplaced[0]?.reason ?? 'no online node';
    throw new ConflictError(`Cannot start ${next.imageId}: ${why}`, 'NO_CAPACITY');
  }
}

/**
 * Writes the service: created if new, else replaced if nobody changed it since it was read. The
 * item as stored (its new version), or undefined when someone did.
 */
async function saveService(
  ctx: AppContext,
  next: ServiceItem,
  existed: boolean,
): Promise<ServiceItem | undefined> {
  const { version, ...item } = next;
  const stored = { ...item, version: existed ? (version ?? 1) + 1 : 1 };
  const saved = existed
    ? await putIf(ctx.store, stored, { version: version ?? 1 })
    : await putIfAbsent(ctx.store, item);
  return saved ? stored : undefined;
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
    try {
      await preflight(ctx, change.next, change.wanted);
    } catch (error) {
      // Planned from a service another request changed meanwhile (its copies already hold the
      // slots this plan counted on): read it again rather than refuse.
      const now = await getService(ctx, imageId);
      if (error instanceof ConflictError && now?.version !== current?.version) continue;
      throw error;
    }
    const saved = await saveService(ctx, change.next, current !== undefined);
    if (saved) return saved;
  }
  throw new ConflictError(`Image ${imageId} is changing concurrently; retry`);
}
