/**
 * The control plane (embedded, and on moto) stopped dead at a chosen write of a container start,
 * and (embedded) of a stop or a delete, then started again on the same data folder and port while
 * its agent keeps polling: the change completes, with one command for it. Each case stalls one write forever (the process
 * never gets past it, as under SIGKILL) and throws the runtime away.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppContext } from '../../../functions/core/context.js';
import { fleetKeys } from '../../../functions/core/keys.js';
import type { CommandItem } from '../../../functions/nodes/commands.js';
import { queryAll, type StoreItem } from '../../../functions/ports/store.js';
import { listServices } from '../../../functions/orchestrator/model.js';
import { reconcileImages } from '../../../functions/orchestrator/reconciler.js';
import { RESUME_AFTER_MS } from '../../../functions/orchestrator/resume.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call, eventually, ScriptedAgent } from '../../harness/scripted-agent.js';
import { emulatorDeployment, requireMoto, uniqueName } from '../../harness/services.js';

const base = { ...process.env, LOG_LEVEL: 'SILENT', COMMAND_WAIT_MS: '2000' };
const moto = requireMoto();
const modes = [
  { mode: 'embedded', skip: false, env: () => ({ ...base, AWS_ENDPOINT_URL: undefined }) },
  // Its own table and queues on the shared moto: the SQS queue keeps what was sent across the restart.
  {
    mode: 'moto',
    skip: !moto.available,
    env: () => ({ ...base, ...emulatorDeployment(uniqueName('midstart')) }),
  },
];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

type Stall = (op: 'put' | 'update' | 'send', subject: StoreItem | string) => boolean;

/** Wraps the store and queue so that the first write `stall` picks never completes; `hit` resolves then. */
function stallAt(stall: Stall) {
  let reached: () => void = () => undefined;
  const hit = new Promise<void>((resolve) => (reached = resolve));
  let armed = true;
  const never = () => new Promise<never>(() => undefined);
  const trip = (op: 'put' | 'update' | 'send', subject: StoreItem | string) => {
    if (!armed || !stall(op, subject)) return false;
    armed = false;
    reached();
    return true;
  };
  const context = (ctx: AppContext) => {
    const store = ctx.store;
    const queue = ctx.queue;
    ctx.store = Object.assign(Object.create(store) as typeof store, {
      put: (item: StoreItem, condition?: Parameters<typeof store.put>[1]) =>
        trip('put', item) ? never() : store.put(item, condition),
      update: (...args: Parameters<typeof store.update>) =>
        trip('update', { pk: args[0], sk: args[1], ...args[2].set }) ? never() : store.update(...args),
    });
    ctx.queue = Object.assign(Object.create(queue) as typeof queue, {
      send: (...args: Parameters<typeof queue.send>) =>
        trip('send', args[0]) ? never() : queue.send(...args),
    });
  };
  return { hit, context };
}

const isStartCommand = (item: StoreItem) =>
  item.sk === 'META' && item.pk.startsWith('CMD#') && item.type === 'container.start';

const cases: { name: string; stall: Stall }[] = [
  {
    name: "after the copy's record, before its start command's record",
    stall: (op, s) => op === 'put' && typeof s !== 'string' && isStartCommand(s),
  },
  {
    name: 'after the start command is recorded, before it is queued',
    stall: (op, s) => op === 'send' && typeof s === 'string' && s.startsWith('node-'),
  },
  {
    name: "after the agent's result is stored, before the copy is marked running",
    stall: (op, s) =>
      op === 'update' && typeof s !== 'string' && s.pk.startsWith('INSTANCE#') && s.status === 'running',
  },
];

describe.each(modes)(
  'the control plane stopped dead in a container start, restarted ($mode)',
  ({ skip, env: modeEnv }) => {
    let dir = '';
    let rt: Runtime | undefined;
    let agent: ScriptedAgent | undefined;
    afterEach(async () => {
      await agent?.stop();
      await rt?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it.skipIf(skip).each(cases)(
      '$name: the start completes, one copy, one start command',
      async ({ stall }) => {
        const env = modeEnv();
        dir = await mkdtemp(join(tmpdir(), 'restart-mid-start-'));
        const port = await freePort();
        const stalled = stallAt(stall);
        const first = await startRuntime({
          port,
          dataDir: dir,
          env,
          instrument: { context: stalled.context },
        });
        rt = first;
        agent = new ScriptedAgent(first.url, 'mid-start');
        await agent.register();
        agent.start(200);
        const request = call(first.url, 'POST', '/containers/mid:1/start', { count: 1 }).catch(
          () => undefined,
        );
        await stalled.hit;
        // Dead at that write: nothing more of this process happens.
        await first.stop();
        rt = undefined;
        await request;

        rt = await startRuntime({ port, dataDir: dir, env });
        const ctx = rt.ctx;
        const instances = await eventually(async () => {
          const res = await call(rt!.url, 'GET', '/containers/mid:1/instances');
          expect(res.status).toBe(200);
          const live = (res.body.instances as { id: string; status: string }[]).filter(
            (i) => i.status !== 'removed',
          );
          expect(live.map((i) => i.status)).toEqual(['running']);
          return live;
        }, 20_000);
        expect([...agent.containers.keys()]).toEqual(instances.map((i) => i.id));
        const images = await call(rt.url, 'GET', '/images');
        expect(images.body.images).toEqual([expect.objectContaining({ image: 'mid:1', desired_count: 1 })]);
        const commands = await queryAll<CommandItem>(ctx.store, fleetKeys.nodeCommandsPk(agent.nodeId), {
          index: 'gsi1',
        });
        const starts = commands.filter((c) => c.type === 'container.start');
        expect(starts.map((c) => [c.instanceId, c.status])).toEqual([[instances[0]!.id, 'succeeded']]);
      },
    );
  },
);

const isCommand = (item: StoreItem, type: string) =>
  item.sk === 'META' && item.pk.startsWith('CMD#') && item.type === type;
const copyUpdate = (s: StoreItem | string, status: string) =>
  typeof s !== 'string' && s.pk.startsWith('INSTANCE#') && s.status === status;

const changes: {
  name: string;
  act: 'stop' | 'delete';
  stall: Stall;
}[] = [
  {
    name: "a stop: after the copy is marked stopping, before its stop command's record",
    act: 'stop',
    stall: (op, s) => op === 'put' && typeof s !== 'string' && isCommand(s, 'container.stop'),
  },
  {
    name: 'a stop: after its command is recorded, before the copy names it',
    act: 'stop',
    stall: (op, s) =>
      op === 'update' && copyUpdate(s, 'stopping') && (s as StoreItem).lastCommandId !== undefined,
  },
  {
    name: "a stop: after the agent's result is stored, before the copy is marked stopped",
    act: 'stop',
    stall: (op, s) => op === 'update' && copyUpdate(s, 'stopped'),
  },
  {
    name: "a delete: after the copy is marked removing, before its remove command's record",
    act: 'delete',
    stall: (op, s) => op === 'put' && typeof s !== 'string' && isCommand(s, 'container.remove'),
  },
];

describe('the embedded control plane stopped dead in a stop or delete, restarted', () => {
  let dir = '';
  let rt: Runtime | undefined;
  let agent: ScriptedAgent | undefined;
  afterEach(async () => {
    await agent?.stop();
    await rt?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it.each(changes)('$name: it completes after the restart, with one command', async ({ act, stall }) => {
    const env = modes[0]!.env();
    dir = await mkdtemp(join(tmpdir(), 'restart-mid-change-'));
    const port = await freePort();
    const stalled = stallAt(stall);
    const first = await startRuntime({ port, dataDir: dir, env, instrument: { context: stalled.context } });
    rt = first;
    agent = new ScriptedAgent(first.url, 'mid-change');
    await agent.register();
    agent.start(200);
    const started = await call(first.url, 'POST', '/containers/mid:2/start', { count: 1 });
    expect(started.status).toBe(200);
    const [copy] = started.body.started as string[];
    const request = (
      act === 'stop'
        ? call(first.url, 'POST', '/containers/mid:2/stop', { instanceId: copy })
        : call(first.url, 'DELETE', `/containers/${copy}?force=true`)
    ).catch(() => undefined);
    await stalled.hit;
    await first.stop();
    rt = undefined;
    await request;

    rt = await startRuntime({ port, dataDir: dir, env });
    await eventually(async () => {
      const res = await call(rt!.url, 'GET', '/containers/mid:2/instances');
      expect(res.status).toBe(200);
      const left = (res.body.instances as { id: string; status: string }[]).filter(
        (i) => i.status !== 'removed',
      );
      expect(left.map((i) => `${i.id} ${i.status}`)).toEqual(act === 'stop' ? [`${copy} exited`] : []);
    }, 20_000);
    expect(agent.containers.get(copy!)?.state).toBe(act === 'stop' ? 'exited' : undefined);
    const commands = await queryAll<CommandItem>(rt.ctx.store, fleetKeys.nodeCommandsPk(agent.nodeId), {
      index: 'gsi1',
    });
    const type = act === 'stop' ? 'container.stop' : 'container.remove';
    expect(commands.filter((c) => c.type === type).map((c) => [c.instanceId, c.status])).toEqual([
      [copy, 'succeeded'],
    ]);
    const images = (await call(rt.url, 'GET', '/images')).body.images as {
      image: string;
      desired_count: number;
    }[];
    expect(images.find((i) => i.image === 'mid:2')?.desired_count ?? 0).toBe(0);
  });
});

describe('an invocation cut off in a start, with no restart to follow (as on Lambda)', () => {
  let rt: Runtime | undefined;
  let agent: ScriptedAgent | undefined;
  afterEach(async () => {
    await agent?.stop();
    await rt?.stop();
  });

  it.each(cases.slice(0, 2))(
    "$name: the minute's reconcile sends the start once the copy has waited past RESUME_AFTER_MS",
    async ({ stall }) => {
      let offset = 0;
      const stalled = stallAt(stall);
      rt = await startRuntime({
        port: await freePort(),
        env: modes[0]!.env(),
        now: () => Date.now() + offset,
        instrument: { context: stalled.context },
      });
      agent = new ScriptedAgent(rt.url, 'cut-off');
      await agent.register();
      agent.start(200);
      const request = call(rt.url, 'POST', '/containers/cut:1/start', { count: 1 }).catch(() => undefined);
      await stalled.hit;
      const ctx = rt.ctx;
      const [service] = await listServices(ctx);
      const waiting = async () =>
        (await call(rt!.url, 'GET', '/containers/cut:1/instances')).body.instances as {
          id: string;
          status: string;
        }[];

      // A reconcile inside the grace leaves it alone: a live invocation may still be writing.
      await reconcileImages(ctx, [service!.imageId]);
      expect((await waiting()).map((i) => i.status)).toEqual(['created']);
      expect(agent.containers.size).toBe(0);

      offset = RESUME_AFTER_MS + 60_000;
      await reconcileImages(ctx, [service!.imageId]);
      const live = await eventually(async () => {
        const copies = (await waiting()).filter((i) => i.status !== 'removed');
        expect(copies.map((i) => i.status)).toEqual(['running']);
        return copies;
      }, 20_000);
      expect([...agent.containers.keys()]).toEqual(live.map((i) => i.id));
      const commands = await queryAll<CommandItem>(ctx.store, fleetKeys.nodeCommandsPk(agent.nodeId), {
        index: 'gsi1',
      });
      expect(
        commands.filter((c) => c.type === 'container.start').map((c) => [c.instanceId, c.status]),
      ).toEqual([[live[0]!.id, 'succeeded']]);
      void request;
    },
  );
});
