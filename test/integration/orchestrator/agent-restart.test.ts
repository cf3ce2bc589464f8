/**
 * An agent that restarts while a copy waits on its command needs no resume of that node's copies at
 * registration (resume.ts resumes what a dead control plane left, not a dead agent): the agent
 * acknowledges a command only once its result is accepted, and registering again releases the
 * commands its predecessor held, so the start arrives again and completes, with one command. A
 * command lost for good (dropped from the queue) is sent again by one reconcile once the copy has
 * waited RESUME_AFTER_MS, as for an invocation cut off; a reconcile before then leaves it alone.
 * Embedded runtime, a scripted agent, a clock moved by hand.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { fleetKeys } from '../../../functions/core/keys.js';
import type { CommandItem } from '../../../functions/nodes/commands.js';
import { queryAll } from '../../../functions/ports/store.js';
import { reconcileImages } from '../../../functions/orchestrator/reconciler.js';
import { RESUME_AFTER_MS } from '../../../functions/orchestrator/resume.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call, eventually, ScriptedAgent } from '../../harness/scripted-agent.js';

const env = { ...process.env, AWS_ENDPOINT_URL: undefined, LOG_LEVEL: 'SILENT', COMMAND_WAIT_MS: '300' };

describe("an agent's restart while a copy waits on its start", () => {
  let rt: Runtime | undefined;
  let agent: ScriptedAgent | undefined;
  afterEach(async () => {
    await agent?.stop();
    await rt?.stop();
    rt = undefined;
    agent = undefined;
  });

  async function begin(image: string, offset: { ms: number }) {
    rt = await startRuntime({ port: 0, env, now: () => Date.now() + offset.ms });
    agent = new ScriptedAgent(rt.url, `restart-${image.replace(/\W/g, '')}`);
    await agent.register();
    await agent.heartbeat();
    const res = await call(rt.url, 'POST', `/containers/${encodeURIComponent(image)}/start`, { count: 1 });
    // The agent is not serving: the start waits on it.
    expect(res.status).toBe(202);
    const [held] = await agent.poll();
    expect(held?.envelope.command.type).toBe('container.start');
    return held!;
  }
  const copies = async (image: string) =>
    (await call(rt!.url, 'GET', `/containers/${encodeURIComponent(image)}/instances`)).body.instances as {
      id: string;
      status: string;
    }[];
  const starts = async () =>
    (await queryAll<CommandItem>(rt!.ctx.store, fleetKeys.nodeCommandsPk(agent!.nodeId), { index: 'gsi1' }))
      .filter((c) => c.type === 'container.start')
      .map((c) => [c.instanceId, c.status]);

  it('dead holding the command: registering again delivers it again, and the copy runs (no resume)', async () => {
    const image = 'restart/held:1';
    const held = await begin(image, { ms: 0 });
    // Killed with the command in hand: no result, no acknowledgement. It starts again and registers.
    await agent!.register();
    agent!.start(200);
    const running = await eventually(async () => {
      const live = await copies(image);
      expect(live.map((c) => c.status)).toEqual(['running']);
      return live;
    }, 20_000);
    const spec = (held.envelope.command as { spec: { instanceId: string } }).spec;
    expect(running.map((c) => c.id)).toEqual([spec.instanceId]);
    expect([...agent!.containers.keys()]).toEqual([running[0]!.id]);
    expect(await starts()).toEqual([[running[0]!.id, 'succeeded']]);
  });

  it('its command lost for good: one reconcile sends it again once the copy waited RESUME_AFTER_MS', async () => {
    const image = 'restart/lost:1';
    const offset = { ms: 0 };
    const held = await begin(image, offset);
    // Taken off the queue and never run (the message is gone): the restart has nothing to release.
    await agent!.ack([held.receiptHandle]);
    await agent!.register();
    agent!.start(200);
    await agent!.serveOnce();
    expect((await copies(image)).map((c) => c.status)).toEqual(['created']);
    // A reconcile inside the grace leaves it: a live writer may still be sending its command.
    await reconcileImages(rt!.ctx, [image]);
    expect(agent!.containers.size).toBe(0);

    offset.ms = RESUME_AFTER_MS + 60_000;
    await agent!.heartbeat();
    await reconcileImages(rt!.ctx, [image]);
    const running = await eventually(async () => {
      const live = await copies(image);
      expect(live.map((c) => c.status)).toEqual(['running']);
      return live;
    }, 20_000);
    expect([...agent!.containers.keys()]).toEqual([running[0]!.id]);
    // The same command, sent again: still one start for the copy.
    expect(await starts()).toEqual([[running[0]!.id, 'succeeded']]);
  });
});
