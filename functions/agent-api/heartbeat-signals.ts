import type { AppContext } from '../core/context.js';
import { emit } from '../core/events.js';
import type { HeartbeatRequest } from '../../protocol/messages.js';
import { gpuTemperatures, THRESHOLDS } from '../nodes/node-problems.js';
import type { NodeItem } from '../nodes/nodes.js';

/**
 * What a heartbeat changed that others watch: a GPU that crossed the temperature threshold, a
 * model server that came up. Compared with the node as stored before the beat, so each
 * crossing gives one event, not one every beat.
 */
export function heartbeatSignals(before: NodeItem, hb: HeartbeatRequest) {
  const threshold = THRESHOLDS.gpuTemperatureC;
  const wasHot = new Set(
    gpuTemperatures(before.metrics)
      .filter((t) => t.celsius >= threshold)
      .map((t) => t.label),
  );
  const hot = gpuTemperatures(hb.metrics).filter((t) => t.celsius >= threshold && !wasHot.has(t.label));
  const had = new Set(before.loadedModels ?? []);
  const loaded = hb.loadedModels.filter((m) => !had.has(m));
  return { hot, threshold, loaded };
}

export type HeartbeatSignals = ReturnType<typeof heartbeatSignals>;

/** The events of a beat's signals (computed once, when the beat was stored). */
export async function emitHeartbeatSignals(
  ctx: AppContext,
  nodeId: string,
  { hot, threshold, loaded }: HeartbeatSignals,
): Promise<void> {
  if (hot.length)
    await emit(ctx, {
      type: 'node.gpu.alert',
      nodeId,
      thresholdC: threshold,
      gpus: hot.map((t) => ({
        label: t.label,
        temperatureC: t.celsius,
        ...(t.index !== undefined ? { index: t.index } : {}),
      })),
    });
  for (const model of loaded) await emit(ctx, { type: 'node.model.loaded', nodeId, model });
}
