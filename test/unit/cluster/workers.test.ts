import { describe, expect, it } from 'vitest';
import {
  maxConcurrencyOf,
  MODEL_SETTLE_MS,
  residentModels,
  type NodeModelsItem,
} from '../../../functions/cluster/workers.js';
import type { NodeItem } from '../../../functions/nodes/nodes.js';

const node = (over: Partial<NodeItem>): NodeItem => ({ labels: {}, loadedModels: [], ...over }) as NodeItem;

describe('workers', () => {
  it("trusts the control plane's record until a heartbeat after the settle time", () => {
    const record: NodeModelsItem = { pk: 'p', sk: 's', nodeId: 'n', models: ['B'], updatedAtMs: 1_000 };
    expect(residentModels(node({ loadedModels: ['A'] }), undefined)).toEqual(['A']);
    expect(residentModels(node({ loadedModels: ['A'], lastHeartbeatMs: 1_500 }), record)).toEqual(['B']);
    expect(
      residentModels(node({ loadedModels: ['C'], lastHeartbeatMs: 1_000 + MODEL_SETTLE_MS }), record),
    ).toEqual(['C']);
  });

  it('reads max concurrency from the node label, default 1', () => {
    expect(maxConcurrencyOf(node({}))).toBe(1);
    expect(maxConcurrencyOf(node({ labels: { 'max-concurrency': '4' } }))).toBe(4);
    expect(maxConcurrencyOf(node({ labels: { 'max-concurrency': '0' } }))).toBe(0);
    expect(maxConcurrencyOf(node({ labels: { 'max-concurrency': 'lots' } }))).toBe(1);
  });
});
