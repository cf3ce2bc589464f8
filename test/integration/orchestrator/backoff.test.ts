import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandEnvelope } from '../../../protocol/commands.js';
import { getInstance } from '../../../functions/orchestrator/model.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call, eventually, ScriptedAgent } from '../../harness/scripted-agent.js';

/**
 * Restart and pull backoff instead of hot loops: a copy that failed to pull or exited waits
 * RESTART_BACKOFF_SECONDS (1 s here, 10 s by default), doubling per failure in a row, before its
 * replacement; the wait shows as `backoff` in the views and in a maintenance problem.
 */
const env = {
  ...process.env,
  LOG_LEVEL: 'SILENT',
  AWS_ENDPOINT_URL: undefined,
  COMMAND_WAIT_MS: '5000',
  RESTART_BACKOFF_SECONDS: '1',
};

interface ContainerOut {
  id: string;
  image: string;
  status: string;
  node_id: string;
  backoff?: { reason: string; attempt: number; next_try_at: string };
}

describe('restart and pull backoff (embedded runtime, scripted agents)', () => {
  let rt: Runtime;
  let pullFails: ScriptedAgent;
  let good: ScriptedAgent;
  beforeAll(async () => {
    rt = await startRuntime({ port: 0, env });
    pullFails = new ScriptedAgent(rt.url, 'pull-fails', { failStarts: true });
    good = new ScriptedAgent(rt.url, 'good-node');
    for (const a of [pullFails, good]) {
      await a.register();
      await a.heartbeat();
      a.start(100);
    }
  });
  afterAll(async () => {
    for (const a of [pullFails, good]) await a?.stop();
    await rt?.stop();
  });

  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
  const containersOf = async (image: string) =>
    ((await api('GET', '/containers')).body.containers as ContainerOut[]).filter((c) => c.image === image);
  const startsOf = (agent: ScriptedAgent, image: string) =>
    agent.seen.filter(
      (e): e is CommandEnvelope & { command: { type: 'container.start' } } =>
        e.command.type === 'container.start' && e.command.spec.imageId === image,
    ).length;
  /** The wait recorded for a copy: from the time it died to its next try. */
  const recordedWaitMs = async (instanceId: string) => {
    const { backoff } = (await getInstance(rt.ctx, instanceId))!;
    return backoff!.nextTryAt - backoff!.since;
  };

  it('a start whose image cannot be pulled answers 422 naming the pull failure; the copy backs off, doubling', async () => {
    const res = await api('POST', '/containers/ghost:1/start', { count: 1, node_id: pullFails.nodeId });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ reason: 'image_pull_failed', desired_count: 1 });
    expect(res.body.detail).toMatch(/^Failed to start ghost:1: image not found\. The desired count stays 1/);

    const first = await eventually(async () => {
      const [c] = await containersOf('ghost:1');
      expect(c).toMatchObject({ status: 'backoff', backoff: { reason: 'image_pull_failed', attempt: 1 } });
      return c!;
    });
    expect(await recordedWaitMs(first.id)).toBe(1000);
    const swarm = (await api('GET', '/api/swarm/containers')).body.containers as ContainerOut[];
    expect(swarm.find((c) => c.id === first.id)).toMatchObject({ status: 'backoff', backoff: first.backoff });
    const problem = (
      (await api('GET', '/api/maintenance/problems')).body.problems as {
        node_id: string;
        type: string;
        message: string;
      }[]
    ).find((p) => p.node_id === pullFails.nodeId && p.type === 'container_exited');
    expect(problem?.message).toContain(
      `(ghost:1, failed to start, backing off (image_pull_failed, attempt 1) until ${first.backoff!.next_try_at})`,
    );

    // Each replacement fails too: the wait doubles, one start per attempt (no hot loop).
    const third = await eventually(async () => {
      const c = (await containersOf('ghost:1')).find((x) => x.backoff?.attempt === 3);
      expect(c).toBeDefined();
      return c!;
    }, 20_000);
    expect(await recordedWaitMs(third.id)).toBe(4000);
    expect(startsOf(pullFails, 'ghost:1')).toBeGreaterThanOrEqual(3);
    expect(startsOf(pullFails, 'ghost:1')).toBeLessThanOrEqual(4);

    // Deleting the copy lowers the desired count: the retries end.
    const del = await api('DELETE', `/containers/${third.id}?force=true`);
    expect(del.status, JSON.stringify(del.body)).toBe(200);
    const image = (
      (await api('GET', '/images')).body.images as { image: string; desired_count: number }[]
    ).find((i) => i.image === 'ghost:1');
    expect(image?.desired_count).toBe(0);
  }, 40_000);

  it('a copy that keeps exiting backs off as crash_loop, 1 s then 2 s, and is replaced after each wait', async () => {
    const res = await api('POST', '/containers/crashy:3/start', { count: 1, node_id: good.nodeId });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    let current = res.body.started[0] as string;
    for (const attempt of [1, 2]) {
      const c = good.containers.get(current)!;
      Object.assign(c, { state: 'exited', exitCode: 3 });
      const posted = await good.events([
        {
          type: 'container.exited',
          instanceId: current,
          kind: 'service',
          exitCode: 3,
          logTail: 'boom',
          at: new Date().toISOString(),
        },
      ]);
      expect(posted.status).toBe(200);
      const dead = await eventually(async () => {
        const found = (await containersOf('crashy:3')).find((x) => x.id === current);
        expect(found).toMatchObject({ status: 'backoff', backoff: { reason: 'crash_loop', attempt } });
        return found!;
      });
      expect(await recordedWaitMs(dead.id)).toBe(1000 * 2 ** (attempt - 1));
      current = await eventually(async () => {
        const running = (await containersOf('crashy:3')).filter((x) => x.status === 'running');
        expect(running).toHaveLength(1);
        return running[0]!.id;
      }, 15_000);
      expect(current).not.toBe(dead.id);
    }
    expect(startsOf(good, 'crashy:3')).toBe(3);
  }, 40_000);

  it('a quick fix replaces a backing-off copy at once', async () => {
    const res = await api('POST', '/containers/later:1/start', { count: 1, node_id: good.nodeId });
    const id = res.body.started[0] as string;
    Object.assign(good.containers.get(id)!, { state: 'exited', exitCode: 1 });
    await good.events([
      {
        type: 'container.exited',
        instanceId: id,
        kind: 'service',
        exitCode: 1,
        logTail: '',
        at: new Date().toISOString(),
      },
    ]);
    await eventually(async () =>
      expect((await containersOf('later:1')).find((x) => x.id === id)?.status).toBe('backoff'),
    );
    const fix = await api('POST', '/api/maintenance/quick-fix', {
      node_id: good.nodeId,
      fix_type: 'restart_exited',
    });
    expect(fix.status, JSON.stringify(fix.body)).toBe(200);
    expect(fix.body.replaced).toEqual(
      expect.arrayContaining([expect.objectContaining({ container_id: id, status: 'started' })]),
    );
  });
});
