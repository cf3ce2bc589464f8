import { describe, expect, it } from 'vitest';
import type { HeartbeatRequest, NodeMetrics } from '../../../protocol/messages.js';
import { LABELS } from '../../../protocol/messages.js';
import { Heartbeat } from '../../../agent/heartbeat.js';
import { silentLogger } from '../../../agent/log.js';
import { FakeEngine } from './fake-engine.js';

const metrics: NodeMetrics = {
  cpuPercent: 5,
  memoryUsedMb: 1,
  memoryTotalMb: 2,
  diskUsedGb: 3,
  diskTotalGb: 4,
  gpus: [],
};

describe('Heartbeat', () => {
  it('reports containers with stats and the models loaded', async () => {
    const engine = new FakeEngine();
    engine.add({ instanceId: 'm-1', kind: 'model', labels: { [LABELS.model]: 'sdxl' } });
    engine.add({ instanceId: 'svc-1', state: 'exited', running: false, exitCode: 1 });
    const hb = new Heartbeat({
      send: async () => undefined,
      engine,
      metrics: async () => metrics,
      logger: silentLogger,
      intervalMs: () => 1000,
    });
    const req = await hb.build();
    expect(req.loadedModels).toEqual(['sdxl']);
    expect(req.containers.map((c) => [c.instanceId, c.state, c.stats?.cpuPercent ?? null])).toEqual([
      ['m-1', 'running', 1],
      ['svc-1', 'exited', null],
    ]);
  });

  it('keeps beating through a control-plane outage, backing off, and touches no container', async () => {
    const engine = new FakeEngine();
    engine.add({ instanceId: 'svc-1' });
    const sent: HeartbeatRequest[] = [];
    let failures = 3;
    const hb = new Heartbeat({
      send: async (r) => {
        if (failures-- > 0) throw new Error('503');
        sent.push(r);
      },
      engine,
      metrics: async () => metrics,
      logger: silentLogger,
      intervalMs: () => 10,
      backoff: { baseMs: 1, maxMs: 5 },
    });
    const controller = new AbortController();
    const running = hb.run(controller.signal);
    await expect.poll(() => sent.length).toBeGreaterThanOrEqual(2);
    controller.abort();
    await running;
    expect(engine.calls.filter((c) => !c.startsWith('findByInstance'))).toEqual([]);
  });

  it('sends the last known containers when the engine does not answer, not an empty list', async () => {
    const engine = new FakeEngine();
    engine.add({ instanceId: 'svc-1' });
    const hb = new Heartbeat({
      send: async () => undefined,
      engine,
      metrics: async () => metrics,
      logger: silentLogger,
      intervalMs: () => 1000,
    });
    await hb.build();
    engine.list = async () => {
      throw new Error('engine down');
    };
    expect((await hb.build()).containers.map((c) => c.instanceId)).toEqual(['svc-1']);
  });
});
