import {
  BACKING_OFF,
  DEFAULT_INFLIGHT_GRACE_MS,
  LIVE,
  LOCKED,
  OCCUPYING,
  SETTLED,
  type Plan,
  type PlanAction,
  type PlanInput,
  type PlanService,
  type PlanSlot,
  type Unplaced,
} from './plan-model.js';
import {
  chooseNode,
  eligible,
  globalCount,
  occupy,
  unplacedReason,
  ZERO,
  type NodeLoad,
} from './plan-nodes.js';

/**
 * The reconciler's planning step. Pure: the plan depends only on the input, so it is tested
 * without a table, a queue or a clock.
 *
 * Desired state is a count per image. Each running copy holds a *slot* (image + ordinal); a slot
 * is claimed with a conditional write (a new ordinal with notExists, a replacement with
 * "still points at the old instance"), so two reconcilers that plan the same change at once
 * place it once: the second write fails and its action is dropped.
 *
 * Per service, in image order:
 *   1. more slots than desired → release the surplus: slots whose instance a user is stopping
 *      first, then dead, then just-claimed, then healthy; the highest ordinal first within a rank;
 *   2. every remaining dead slot (instance exited, failed, gone, or its node offline) → place a
 *      replacement, the slot keeps its ordinal; a copy that failed or exited waits out its
 *      slot's backoff first;
 *   3. fewer slots than desired → place new ones at the lowest free ordinals;
 *   2b. a running copy on a draining node → a replacement on another node (the old copy is then
 *      unreferenced and retired by step 4); with nowhere to go it stays and is reported unplaced;
 *   4. instances no slot points at any more → retire (remove the container) when their node is
 *      online, else mark them orphaned so they are removed when the node returns.
 * Placement: online, uncordoned nodes (the pinned node only, when it has one; those meeting its constraints) with enough free
 * CPU, memory, disk and GPUs; the least loaded first (highest reserved fraction of CPU or memory),
 * then the one running fewest copies of this image, then fewest containers, then by id.
 */

export * from './plan-model.js';
export { globalCount } from './plan-nodes.js';

type SlotState = 'healthy' | 'inflight' | 'locked' | 'dead' | 'draining';
const RELEASE_RANK: Record<SlotState, number> = { locked: 0, dead: 1, draining: 2, inflight: 3, healthy: 4 };

export function planReconcile(input: PlanInput): Plan {
  const grace = input.inflightGraceMs ?? DEFAULT_INFLIGHT_GRACE_MS;
  const actions: PlanAction[] = [];
  const unplaced: Unplaced[] = [];

  const loads = new Map<string, NodeLoad>();
  for (const node of input.nodes)
    loads.set(node.id, { node, used: { ...ZERO }, containers: 0, perImage: new Map() });

  const instances = new Map(input.instances.map((i) => [i.instanceId, i]));
  for (const i of input.instances) if (OCCUPYING.has(i.status)) occupy(loads, i.nodeId, i.imageId, i.reserve);
  for (const h of input.held ?? []) occupy(loads, h.nodeId, '', h.reserve);
  const services = [...input.services]
    .map((s) => (s.global ? { ...s, onePerNode: true, desiredCount: globalCount(input.nodes, s) } : s))
    .sort((a, b) => (a.imageId < b.imageId ? -1 : a.imageId > b.imageId ? 1 : 0));
  const byService = new Map<string, PlanSlot[]>();
  for (const s of input.slots) {
    const list = byService.get(s.imageId) ?? [];
    list.push(s);
    byService.set(s.imageId, list);
  }
  // A claimed slot whose instance is not written yet still reserves on its node.
  const serviceReserve = new Map(services.map((s) => [s.imageId, s.reserve]));
  for (const s of input.slots) {
    if (!instances.has(s.instanceId) && input.now - s.claimedAt < grace) {
      occupy(loads, s.nodeId, s.imageId, serviceReserve.get(s.imageId) ?? ZERO);
    }
  }

  const stateOf = (slot: PlanSlot, service: PlanService): SlotState => {
    const inst = instances.get(slot.instanceId);
    if (!inst) return input.now - slot.claimedAt < grace ? 'inflight' : 'dead';
    if (LOCKED.has(inst.status)) return 'locked';
    const node = loads.get(inst.nodeId)?.node;
    // A copy on a node that no longer meets the constraints (its labels changed) moves.
    if (LIVE.has(inst.status) && node?.online && eligible(node, service))
      return node.draining ? 'draining' : 'healthy';
    return 'dead';
  };

  for (const service of services) {
    const slots = [...(byService.get(service.imageId) ?? [])].sort((a, b) => a.ordinal - b.ordinal);
    const states = new Map(slots.map((s) => [s.ordinal, stateOf(s, service)]));
    const referenced = new Set<string>();

    let kept = slots;
    const surplus = slots.length - Math.max(0, service.desiredCount);
    if (surplus > 0) {
      const order = [...slots].sort(
        (a, b) =>
          RELEASE_RANK[states.get(a.ordinal)!] - RELEASE_RANK[states.get(b.ordinal)!] ||
          b.ordinal - a.ordinal,
      );
      const released = new Set(order.slice(0, surplus).map((s) => s.ordinal));
      for (const s of slots) {
        if (released.has(s.ordinal))
          actions.push({
            type: 'release',
            imageId: service.imageId,
            ordinal: s.ordinal,
            instanceId: s.instanceId,
          });
      }
      kept = slots.filter((s) => !released.has(s.ordinal));
    }

    for (const slot of kept) {
      const state = states.get(slot.ordinal);
      if (state === 'draining') {
        // A running copy on a draining node moves only where a replacement can go; else it stays.
        const target = chooseNode(loads, service);
        if (!target) {
          referenced.add(slot.instanceId);
          unplaced.push({
            imageId: service.imageId,
            ordinal: slot.ordinal,
            reason: `draining: ${unplacedReason(service, loads)}`,
          });
          continue;
        }
        occupy(loads, target.node.id, service.imageId, service.reserve);
        actions.push({
          type: 'place',
          imageId: service.imageId,
          ordinal: slot.ordinal,
          nodeId: target.node.id,
          replaces: slot.instanceId,
        });
        continue;
      }
      if (state !== 'dead') {
        referenced.add(slot.instanceId);
        continue;
      }
      const dead = instances.get(slot.instanceId);
      if (
        slot.backoffUntil !== undefined &&
        slot.backoffUntil > input.now &&
        dead &&
        BACKING_OFF.has(dead.status)
      ) {
        // The copy failed or exited: it stays in its slot until its backoff ends.
        referenced.add(slot.instanceId);
        unplaced.push({
          imageId: service.imageId,
          ordinal: slot.ordinal,
          reason: `backing off until ${new Date(slot.backoffUntil).toISOString()}`,
        });
        continue;
      }
      const target = chooseNode(loads, service);
      if (!target) {
        // Nowhere to go: the slot keeps its dead instance until capacity appears.
        referenced.add(slot.instanceId);
        unplaced.push({
          imageId: service.imageId,
          ordinal: slot.ordinal,
          reason: unplacedReason(service, loads),
        });
        continue;
      }
      occupy(loads, target.node.id, service.imageId, service.reserve);
      actions.push({
        type: 'place',
        imageId: service.imageId,
        ordinal: slot.ordinal,
        nodeId: target.node.id,
        replaces: slot.instanceId,
      });
    }

    const used = new Set(slots.map((s) => s.ordinal));
    let next = 0;
    for (let missing = service.desiredCount - kept.length; missing > 0; missing--) {
      while (used.has(next)) next++;
      const ordinal = next++;
      const target = chooseNode(loads, service);
      if (!target) {
        unplaced.push({ imageId: service.imageId, ordinal, reason: unplacedReason(service, loads) });
        continue;
      }
      occupy(loads, target.node.id, service.imageId, service.reserve);
      actions.push({ type: 'place', imageId: service.imageId, ordinal, nodeId: target.node.id });
    }

    for (const inst of input.instances) {
      if (inst.imageId !== service.imageId || referenced.has(inst.instanceId) || SETTLED.has(inst.status))
        continue;
      const online = loads.get(inst.nodeId)?.node.online ?? false;
      if (online)
        actions.push({
          type: 'retire',
          imageId: inst.imageId,
          instanceId: inst.instanceId,
          nodeId: inst.nodeId,
          from: inst.status,
        });
      else if (inst.status !== 'orphaned') {
        actions.push({
          type: 'orphan',
          imageId: inst.imageId,
          instanceId: inst.instanceId,
          nodeId: inst.nodeId,
          from: inst.status,
        });
      }
    }
  }
  return { actions, unplaced };
}
