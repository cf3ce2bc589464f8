/** Placement for the plan (plan.ts): what each node holds, which nodes a service may go to, the best one, and why none. */
import { satisfies } from './constraints.js';
import type { PlanNode, PlanService } from './plan-model.js';
import type { Reservation } from './resources.js';

export interface NodeLoad {
  node: PlanNode;
  used: Reservation;
  containers: number;
  perImage: Map<string, number>;
}

const add = (a: Reservation, b: Reservation): Reservation => ({
  cpu: a.cpu + b.cpu,
  memoryMb: a.memoryMb + b.memoryMb,
  diskGb: a.diskGb + b.diskGb,
  gpus: a.gpus + b.gpus,
});

export const ZERO: Reservation = { cpu: 0, memoryMb: 0, diskGb: 0, gpus: 0 };
// Float sums of "0.1"-style limits must not make an exact fit look over capacity.
const EPS = 1e-9;

function fits(load: NodeLoad, want: Reservation): boolean {
  const cap = load.node.capacity;
  const fitsOne = (used: number, asked: number, total: number) => asked <= 0 || used + asked <= total + EPS;
  return (
    fitsOne(load.used.cpu, want.cpu, cap.cpu) &&
    fitsOne(load.used.memoryMb, want.memoryMb, cap.memoryMb) &&
    fitsOne(load.used.diskGb, want.diskGb, cap.diskGb) &&
    fitsOne(load.used.gpus, want.gpus, cap.gpus)
  );
}

function loadFraction(load: NodeLoad): number {
  const cap = load.node.capacity;
  const cpu = cap.cpu > 0 ? load.used.cpu / cap.cpu : 0;
  const mem = cap.memoryMb > 0 ? load.used.memoryMb / cap.memoryMb : 0;
  return Math.max(cpu, mem);
}

/** A node with no recorded facts satisfies no constraint. */
export const eligible = (node: PlanNode, service: PlanService) =>
  (!node.processOnly || service.hasCommand === true) &&
  (!service.constraints?.length || (node.facts !== undefined && satisfies(node.facts, service.constraints)));

export function unplacedReason(service: PlanService, loads: Map<string, NodeLoad>): string {
  if (service.nodeId) {
    const pinned = loads.get(service.nodeId);
    if (!pinned) return `node ${service.nodeId} is unknown`;
    if (!pinned.node.online) return `node ${service.nodeId} is offline`;
    if (pinned.node.cordoned || pinned.node.draining) return `node ${service.nodeId} is cordoned`;
    return `node ${service.nodeId} lacks free resources`;
  }
  const up = [...loads.values()].filter((l) => l.node.online);
  if (!up.length) return 'no online node';
  const online = up.filter((l) => !l.node.cordoned && !l.node.draining);
  if (!online.length) return 'every online node is cordoned';
  if (service.constraints?.length && !online.some((l) => eligible(l.node, service)))
    return 'no online node satisfies the placement constraints';
  if (
    service.refusedBy?.size &&
    online.every((l) => !eligible(l.node, service) || service.refusedBy?.has(l.node.id))
  )
    return "every online node's own policy refuses its containers";
  if (!online.some((l) => eligible(l.node, service)))
    return 'no online node can run it: process nodes (no container engine) run only services that give a command';
  return 'no online node has enough free resources';
}

/** Nodes a global service runs on: online, taking work, meeting its pin and constraints, and whose policy allows it. */
export function globalCount(nodes: readonly PlanNode[], service: PlanService): number {
  return nodes.filter(
    (n) =>
      n.online &&
      !n.cordoned &&
      !n.draining &&
      (!service.nodeId || n.id === service.nodeId) &&
      eligible(n, service) &&
      !service.refusedBy?.has(n.id),
  ).length;
}

/** Counts a copy against its node. */
export function occupy(
  loads: Map<string, NodeLoad>,
  nodeId: string,
  imageId: string,
  reserve: Reservation,
): void {
  const load = loads.get(nodeId);
  if (!load) return;
  load.used = add(load.used, reserve);
  load.containers += 1;
  load.perImage.set(imageId, (load.perImage.get(imageId) ?? 0) + 1);
}

/** The node a new copy goes to: the least loaded that may take it, then fewest of this image, fewest containers, by id. */
export function chooseNode(loads: Map<string, NodeLoad>, service: PlanService): NodeLoad | undefined {
  let best: NodeLoad | undefined;
  let bestKey: [number, number, number, string] | undefined;
  for (const load of loads.values()) {
    if (!load.node.online || load.node.cordoned || load.node.draining) continue;
    if (service.nodeId && load.node.id !== service.nodeId) continue;
    if (!eligible(load.node, service)) continue;
    if (service.refusedBy?.has(load.node.id)) continue;
    if (service.onePerNode && (load.perImage.get(service.imageId) ?? 0) > 0) continue;
    if (!fits(load, service.reserve)) continue;
    const key: [number, number, number, string] = [
      loadFraction(load),
      load.perImage.get(service.imageId) ?? 0,
      load.containers,
      load.node.id,
    ];
    if (!bestKey || compareKeys(key, bestKey) < 0) {
      best = load;
      bestKey = key;
    }
  }
  return best;
}

function compareKeys(a: [number, number, number, string], b: [number, number, number, string]): number {
  for (let i = 0; i < 3; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (Math.abs(d) > EPS) return d;
  }
  return a[3] < b[3] ? -1 : a[3] > b[3] ? 1 : 0;
}
