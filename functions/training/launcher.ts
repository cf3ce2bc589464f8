import type { AppContext } from '../core/context.js';
import type { RunAsk, RunLauncher } from '../ports/run-launcher.js';
import { dispatchCommand, getCommand, type CommandItem } from '../nodes/commands.js';
import {
  getNode,
  heartbeatIntervalSeconds,
  isOnline,
  canRun,
  isSchedulable,
  nodeQueue,
  resolveNode,
  eligibleGroups,
  type NodeItem,
} from '../nodes/nodes.js';
import type { CommandEnvelope } from '../../protocol/commands.js';
import { conditional } from '../ports/store.js';
import { activeRuns } from './model.js';
import { nodeInstances } from '../orchestrator/model.js';
import { OCCUPYING } from '../orchestrator/plan.js';
import { policyRefusalOn, refusalAcross } from '../nodes/node-policy.js';

const EPS = 1e-9;

/** The fleet behind the interface: node registry, heartbeats, command queues. */
export function fleetLauncher(ctx: AppContext): RunLauncher {
  return {
    async choose(ask, avoid, start = {}) {
      const runs = await activeRuns(ctx);
      const seen = { schedulable: 0, runnable: 0, allowed: 0 };
      const fitting: { n: NodeItem; u: RunAsk & { runs: number } }[] = [];
      const spec = start.spec;
      const groups =
        start.onlyNodeName === undefined ? eligibleGroups(ctx) : onlyNode(ctx, start.onlyNodeName);
      for await (const group of groups) {
        seen.schedulable += group.length;
        const runnable = group.filter((n) => canRun(n, start));
        seen.runnable += runnable.length;
        const nodes = spec ? runnable.filter((n) => !policyRefusalOn(n, spec)) : runnable;
        seen.allowed += nodes.length;
        const used = new Map<string, RunAsk & { runs: number }>();
        const hold = (nodeId: string, r: RunAsk, count: number) => {
          const u = used.get(nodeId) ?? { gpus: 0, cpu: 0, memoryMb: 0, diskGb: 0, runs: 0 };
          used.set(nodeId, {
            gpus: u.gpus + r.gpus,
            cpu: u.cpu + r.cpu,
            memoryMb: u.memoryMb + r.memoryMb,
            diskGb: u.diskGb + r.diskGb,
            runs: u.runs + count,
          });
        };
        const ids = new Set(nodes.map((n) => n.nodeId));
        for (const run of runs)
          if (run.nodeId && ids.has(run.nodeId))
            hold(run.nodeId, run.reserve ?? { gpus: 0, cpu: 0, memoryMb: 0, diskGb: 0 }, 1);
        // The orchestrator's copies hold capacity on the same nodes: one capacity model for both.
        for (const copies of await Promise.all(nodes.map((n) => nodeInstances(ctx, n.nodeId))))
          for (const inst of copies) if (OCCUPYING.has(inst.status)) hold(inst.nodeId, inst.reserve, 0);
        const fits = (asked: number, usedNow: number, total: number) =>
          asked <= 0 || usedNow + asked <= total + EPS;
        fitting.push(
          ...nodes
            .map((n) => ({
              n,
              u: used.get(n.nodeId) ?? { gpus: 0, cpu: 0, memoryMb: 0, diskGb: 0, runs: 0 },
            }))
            .filter(
              ({ n, u }) =>
                fits(ask.gpus, u.gpus, n.gpus.length) &&
                fits(ask.cpu, u.cpu, n.cpuCount) &&
                fits(ask.memoryMb, u.memoryMb, n.memoryMb) &&
                fits(ask.diskGb, u.diskGb, n.diskGb),
            ),
        );
        fitting.sort(
          (a, b) =>
            Number(avoid.includes(a.n.nodeId)) - Number(avoid.includes(b.n.nodeId)) ||
            a.u.runs - b.u.runs ||
            b.n.gpus.length - b.u.gpus - (a.n.gpus.length - a.u.gpus) ||
            a.n.nodeId.localeCompare(b.n.nodeId),
        );
        // A node it need not avoid: no further group is read. An avoided one waits for the index's end.
        const best = fitting[0];
        if (best && !avoid.includes(best.n.nodeId)) return { nodeId: best.n.nodeId };
      }
      if (fitting[0]) return { nodeId: fitting[0].n.nodeId };
      if (!seen.schedulable && start.onlyNodeName === undefined)
        return { reason: 'no online node that is not cordoned' };
      if (!seen.runnable)
        return {
          reason:
            start.onlyNodeName !== undefined
              ? 'it runs on its own rented node only (cloud.always)'
              : 'no online node can run it: process nodes (no container engine) run only jobs that give a command',
        };
      if (!seen.allowed) return { reason: "every online node's own policy refuses the run's container" };
      return { reason: `no online node has the free capacity asked (${describeAsk(ask)})` };
    },

    async refusal(spec) {
      // Read until a node allows it: a refusal (the rare case) has read every eligible node.
      const refusing: NodeItem[] = [];
      for await (const group of eligibleGroups(ctx)) {
        if (group.some((n) => !policyRefusalOn(n, spec))) return undefined;
        refusing.push(...group);
      }
      return refusalAcross(refusing, spec, 'its runs');
    },

    async start(nodeId, spec, commandId, resendPendingOlderThanMs) {
      const existing = await getCommand(ctx, commandId);
      if (!existing) {
        // dispatched concurrently
        await conditional(
          dispatchCommand(
            ctx,
            nodeId,
            { type: 'container.start', spec },
            { commandId, instanceId: spec.instanceId },
          ),
        );
        return;
      }
      const age = ctx.now() - Date.parse(existing.issuedAt);
      if (
        existing.status !== 'pending' ||
        resendPendingOlderThanMs === undefined ||
        age < resendPendingOlderThanMs
      )
        return;
      const envelope: CommandEnvelope = {
        commandId,
        nodeId,
        issuedAt: existing.issuedAt,
        command: existing.command,
      };
      await ctx.queue.send(nodeQueue(nodeId), JSON.stringify(envelope));
    },

    async remove(nodeId, instanceId) {
      await dispatchCommand(
        ctx,
        nodeId,
        { type: 'container.remove', instanceId, force: true },
        { instanceId },
      );
    },

    async alive(nodeId) {
      const node = await getNode(ctx, nodeId);
      return node !== undefined && isOnline(node, ctx);
    },

    async gone(nodeId, instanceId, commandId) {
      const start = await getCommand(ctx, commandId);
      const node = start?.status === 'succeeded' ? await getNode(ctx, nodeId) : undefined;
      return containerGone(start, node, instanceId, heartbeatIntervalSeconds(ctx));
    },
  };
}

/**
 * The decision behind `gone`, pure: the start succeeded, the node's last heartbeat was sent well
 * after that (one sampled before the start may arrive after its result), and it lists no
 * container of the instance. Exited containers are listed until the control plane removes them,
 * so absent means gone.
 */
export function containerGone(
  start: Pick<CommandItem, 'status' | 'completedAt'> | undefined,
  node: Pick<NodeItem, 'lastHeartbeatMs' | 'containerStats'> | undefined,
  instanceId: string,
  heartbeatSeconds: number,
): boolean {
  if (start?.status !== 'succeeded' || !start.completedAt) return false;
  if (!node?.lastHeartbeatMs) return false;
  const graceMs = Math.max(10_000, 2 * heartbeatSeconds * 1000);
  if (node.lastHeartbeatMs < Date.parse(start.completedAt) + graceMs) return false;
  return !Object.hasOwn(node.containerStats ?? {}, instanceId);
}

export function describeAsk(ask: RunAsk): string {
  const parts = [`${ask.gpus} GPU${ask.gpus === 1 ? '' : 's'}`];
  if (ask.cpu) parts.push(`${ask.cpu} CPUs`);
  if (ask.memoryMb) parts.push(`${ask.memoryMb} MB memory`);
  if (ask.diskGb) parts.push(`${ask.diskGb} GB disk`);
  return parts.join(', ');
}

/** A run pinned to its rented node: that node alone, by its name, when it may take work. */
async function* onlyNode(ctx: AppContext, name: string): AsyncGenerator<NodeItem[]> {
  const node = await resolveNode(ctx, name);
  yield node && node.nodeName === name && isSchedulable(node, ctx) ? [node] : [];
}

/** This context's launcher: the fleet, unless the context carries another (tests, the bench). */
export const launcherFor = (ctx: AppContext): RunLauncher => (ctx.launcher ??= fleetLauncher(ctx));
