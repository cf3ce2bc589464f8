import type { AppContext } from '../core/context.js';
import { isOnline, listNodes } from '../nodes/nodes.js';
import { queuedTasks } from '../cluster/tasks.js';
import { emitFleetGauges, emfEnabled } from './counters.js';

/**
 * Nodes online and offline, mean GPU utilisation and the queue depth as EMF values, once per
 * nodes sweep (every minute): the stack's offline-nodes alarm and its dashboard read them. Only
 * where EMF is on (Lambda), so the embedded runtime does not pay the extra reads.
 */
export async function publishFleetGauges(ctx: AppContext): Promise<void> {
  if (!emfEnabled(ctx)) return;
  const now = ctx.now();
  const [nodes, queued] = await Promise.all([listNodes(ctx), queuedTasks(ctx)]);
  const online = nodes.filter((n) => isOnline(n, ctx, now));
  const utils = online.flatMap((n) =>
    (n.metrics?.gpus ?? []).flatMap((g) => (typeof g.utilizationGpu === 'number' ? [g.utilizationGpu] : [])),
  );
  emitFleetGauges(ctx, {
    online: online.length,
    offline: nodes.length - online.length,
    queueDepth: queued.length,
    ...(utils.length ? { gpuUtilization: utils.reduce((a, b) => a + b, 0) / utils.length } : {}),
  });
}
