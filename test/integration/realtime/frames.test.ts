/**
 * /ws/metrics frames stay under API Gateway's 128 KB message limit: a fleet too large for one
 * frame is sent as consecutive frames of the same shape that name every node once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_FRAME_BYTES, metricsFrames } from '../../../functions/realtime/messages.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { ScriptedAgent } from '../../harness/scripted-agent.js';

describe('/ws/metrics frames', () => {
  let rt: Runtime;
  const names = ['f-a', 'f-b', 'f-c', 'f-d', 'f-e', 'f-f', 'f-g'];
  beforeAll(async () => {
    rt = await startRuntime({ port: 0, env: { LOG_LEVEL: 'SILENT' } });
    for (const name of names) {
      const agent = new ScriptedAgent(rt.url, name);
      await agent.register();
      expect(await agent.heartbeat()).toMatchObject({ status: 200 });
    }
  });
  afterAll(async () => {
    await rt?.stop();
  });

  it('one frame, without part fields, while the fleet fits', async () => {
    const frames = await metricsFrames(rt.ctx);
    expect(frames).toHaveLength(1);
    expect(Object.keys(frames[0]!.nodes).sort()).toEqual(names);
    expect(frames[0]).not.toHaveProperty('part');
    expect(Buffer.byteLength(JSON.stringify(frames[0]))).toBeLessThanOrEqual(MAX_FRAME_BYTES);
  });

  it('consecutive frames under the limit, each node once, numbered part of parts', async () => {
    const limit = 400;
    const frames = await metricsFrames(rt.ctx, limit);
    expect(frames.length).toBeGreaterThan(1);
    for (const [i, f] of frames.entries()) {
      expect(Buffer.byteLength(JSON.stringify(f))).toBeLessThanOrEqual(limit);
      expect(f).toMatchObject({
        type: 'metrics',
        part: i + 1,
        parts: frames.length,
        timestamp: frames[0]!.timestamp,
      });
    }
    const seen = frames.flatMap((f) => Object.keys(f.nodes));
    expect(seen.sort()).toEqual(names);
  });
});
