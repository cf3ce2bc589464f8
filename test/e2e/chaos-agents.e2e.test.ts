/**
 * Chaos: two REAL agents on Podman, each SIGKILLed at random moments and restarted at once, while
 * container commands flow through the embedded control plane (starts of 1-2 copies, stops,
 * forced deletes, restarts). Afterwards every command the control plane issued has exactly one
 * outcome, each image runs exactly its desired count (the starts acknowledged minus the stops
 * and deletes acknowledged), no instance has two containers, and the engine holds nothing the
 * control plane does not account for.
 *
 * Seeded: CHAOS_SEED repeats a run's choices (the seed is printed). CHAOS_COMMANDS and
 * CHAOS_KILLS set the volume (defaults 150 agent commands, 20 kills: about 3 minutes on a loaded
 * 2-core machine; the issue's 500 is CHAOS_COMMANDS=500).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fleetKeys } from '../../functions/core/keys.js';
import type { CommandItem } from '../../functions/nodes/commands.js';
import { imageInstances, getService, serviceSlots } from '../../functions/orchestrator/model.js';
import { queryAll } from '../../functions/ports/store.js';
import { LABELS } from '../../protocol/messages.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../harness/images.js';
import { describeWith, engine as dockerClient, requireEngine, uniqueName } from '../harness/services.js';
import {
  AgentProcess,
  buildAgentBundle,
  call,
  engineContainers,
  eventually,
  removeNodeContainers,
  RUN_UNTIL_TERM,
  sleep,
  startControlPlane,
  tagImage,
  untagImage,
  type Answer,
  type ControlPlane,
} from './harness.js';
import { seededRandom } from './chaos-random.js';

const TARGET_COMMANDS = Number(process.env.CHAOS_COMMANDS ?? 150);
const TARGET_KILLS = Number(process.env.CHAOS_KILLS ?? 20);
const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** Copies wanted of one image at most: the two nodes share one small machine. */
const MAX_DESIRED = 3;
const WORKERS = 5;

const engineStatus = requireEngine();
const runId = uniqueName('chaos');
const IMAGES = [0, 1, 2].map((i) => `localhost/${runId}:s${i}`);
const nodeNames = [`${runId}-a`, `${runId}-b`];

describeWith(engineStatus, 'chaos: agents SIGKILLed at random while commands flow (embedded, Podman)', () => {
  let docker: Docker;
  let rt: ControlPlane;
  let stateRoot: string;
  let agents: AgentProcess[] = [];
  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
  const agentLogs = () => agents.map((a) => `--- ${a.name} (pid ${a.pid})\n${a.logTail(30)}`).join('\n');

  beforeAll(async () => {
    console.log(`chaos-agents seed ${SEED} (CHAOS_SEED=${SEED} repeats its choices)`);
    docker = dockerClient();
    await ensureBusyboxImage(docker);
    for (const ref of IMAGES) await tagImage(docker, BUSYBOX_IMAGE, ref);
    rt = await startControlPlane({
      env: {
        ...process.env,
        LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'SILENT',
        // A restart takes a few seconds on a loaded machine: the node must not count as lost meanwhile.
        NODE_OFFLINE_AFTER_SECONDS: '30',
        // Calls answer 202 soon, so commands keep flowing while an agent is down.
        COMMAND_WAIT_MS: '1500',
        RESTART_BACKOFF_SECONDS: '1',
        AWS_ENDPOINT_URL: undefined,
      },
      moto: false,
    });
    stateRoot = await mkdtemp(join(tmpdir(), `${runId}-`));
    // The bundle starts in a fraction of tsx's time: restarts are most of this suite's work.
    const bundle = join(stateRoot, 'agent.mjs');
    await buildAgentBundle(bundle);
    agents = nodeNames.map(
      (name) =>
        new AgentProcess({
          url: rt.url,
          name,
          stateDir: join(stateRoot, name),
          heartbeatSeconds: 1,
          entry: [bundle],
          env: { ...process.env, FLEET_API_KEY: '', FLEET_URL: '', FLEET_NODE_NAME: '' },
        }),
    );
    await Promise.all(agents.map((a) => a.start()));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.kill('SIGKILL')));
    if (docker) await removeNodeContainers(docker, nodeNames);
    await rt?.stop();
    if (stateRoot) await rm(stateRoot, { recursive: true, force: true });
    if (docker) for (const ref of IMAGES) await untagImage(docker, ref);
  }, 60_000);

  it(`${TARGET_KILLS}+ kills during ${TARGET_COMMANDS}+ commands: one outcome each, desired state, no duplicates, no strays`, async () => {
    const random = seededRandom(SEED);
    // Read once: an agent being restarted has no id until it runs again.
    const nodeIds = agents.map((a) => a.nodeId);
    const expected = new Map(IMAGES.map((i) => [i, 0]));
    const stoppedByUs = new Set<string>();
    const deletedByUs = new Set<string>();
    const busy = new Set<string>();
    const statuses = new Map<string, number>();
    const serverErrors: string[] = [];
    let kills = 0;
    let calls = 0;

    const commands = async () =>
      (
        await Promise.all(
          nodeIds.map((id) =>
            queryAll<CommandItem>(rt.ctx.store, fleetKeys.nodeCommandsPk(id), { index: 'gsi1' }),
          ),
        )
      ).flat();
    const note = (op: string, res: Answer) => {
      if (process.env.CHAOS_VERBOSE) console.log(`chaos-agents: ${res.text.slice(0, 200)}`);
      const key = `${op} ${res.status}`;
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      if (res.status >= 500) serverErrors.push(res.text);
    };
    const runningOf = async (image: string) => {
      const res = await api('GET', `/containers/${image}/instances`);
      expect(res.status, res.text).toBe(200);
      return (res.body.instances as { id: string; status: string }[])
        .filter((i) => i.status === 'running' && !busy.has(i.id) && !stoppedByUs.has(i.id))
        .map((i) => i.id);
    };

    const operate = async () => {
      const image = random.pick(IMAGES);
      let op = random.weighted({ start: 35, stop: 25, delete: 20, restart: 15, removeStopped: 5 });
      const running = await runningOf(image);
      if (op === 'removeStopped' && !stoppedByUs.size) op = 'start';
      if (op !== 'start' && op !== 'removeStopped' && !running.length) op = 'start';
      if (op === 'start' && expected.get(image)! >= MAX_DESIRED) {
        if (!running.length) return sleep(200); // its copies are still starting
        op = 'stop';
      }
      calls++;
      switch (op) {
        case 'start': {
          const count = Math.min(1 + random.int(2), MAX_DESIRED - expected.get(image)!);
          if (count <= 0) return;
          // Counted before the call: a worker deciding meanwhile must see it.
          expected.set(image, expected.get(image)! + count);
          const res = await api('POST', `/containers/${image}/start`, { count, command: RUN_UNTIL_TERM });
          note(op, res);
          if (res.status !== 200 && res.status !== 202) expected.set(image, expected.get(image)! - count);
          return;
        }
        case 'stop':
        case 'delete': {
          const id = random.pick(running);
          busy.add(id);
          try {
            const res =
              op === 'stop'
                ? await api('POST', `/containers/${image}/stop`, { instanceId: id })
                : await api('DELETE', `/containers/${id}?force=true`);
            note(op, res);
            if (res.status === 200 || res.status === 202) {
              expected.set(image, expected.get(image)! - 1);
              (op === 'stop' ? stoppedByUs : deletedByUs).add(id);
            }
          } finally {
            busy.delete(id);
          }
          return;
        }
        case 'restart': {
          const id = random.pick(running);
          busy.add(id);
          try {
            note(op, await api('POST', `/api/swarm/containers/${id}/restart`));
          } finally {
            busy.delete(id);
          }
          return;
        }
        case 'removeStopped': {
          const id = random.pick([...stoppedByUs]);
          stoppedByUs.delete(id);
          const res = await api('DELETE', `/containers/${id}`);
          note(op, res);
          if (res.status === 200 || res.status === 202) deletedByUs.add(id);
          else stoppedByUs.add(id);
        }
      }
    };

    let flowing = true;
    let issued = 0;
    const workerErrors: unknown[] = [];
    const workers = Array.from({ length: WORKERS }, async () => {
      while (flowing)
        await operate().catch((error: unknown) => {
          workerErrors.push(error);
          if (process.env.CHAOS_VERBOSE) console.log('chaos-agents: call failed', error);
        });
    });
    const killers = agents.map(async (agent) => {
      while (kills < TARGET_KILLS) {
        await sleep(300 + random.int(2500));
        kills++;
        await agent.kill('SIGKILL');
        await agent.start();
      }
    });
    const counter = (async () => {
      while (kills < TARGET_KILLS || issued < TARGET_COMMANDS) {
        await sleep(1000);
        issued = (await commands()).length;
        if (process.env.CHAOS_VERBOSE)
          console.log(`chaos-agents: ${kills} kills, ${calls} calls, ${issued} commands`);
      }
      flowing = false;
    })();
    try {
      await Promise.all([counter, ...killers]);
    } finally {
      flowing = false;
      await Promise.allSettled(workers);
    }
    console.log(
      `chaos-agents: ${kills} kills, ${calls} calls, ${issued} commands; answers ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
    expect(kills).toBeGreaterThanOrEqual(TARGET_KILLS);
    expect(workerErrors.map(String)).toEqual([]);
    expect(serverErrors, serverErrors.join('\n')).toEqual([]);

    /** What the records say, for a failure's message. */
    const dump = async () => {
      const lines: string[] = [];
      const queue = rt.ctx.queue as { depth?: (q: string) => number };
      for (const id of nodeIds)
        lines.push(
          `node ${id}: queue ${queue.depth?.(`node-${id}`)}, dead letters ${queue.depth?.(`node-${id}-dlq`)}`,
        );
      for (const c of (await commands()).filter((c) => c.status === 'pending')) {
        lines.push(`pending ${c.type} ${c.commandId} on ${c.nodeId} issued ${c.issuedAt}`);
        for (const a of agents)
          for (const l of a.lines) if (l.includes(c.commandId)) lines.push(`  ${a.name}: ${l}`);
      }
      for (const image of IMAGES) {
        const service = await getService(rt.ctx, image);
        lines.push(`${image}: desired ${service?.desiredCount} (expected ${expected.get(image)})`);
        for (const slot of await serviceSlots(rt.ctx, image))
          lines.push(`  slot ${slot.ordinal} -> ${slot.instanceId} ${JSON.stringify(slot)}`);
        for (const i of await imageInstances(rt.ctx, image))
          lines.push(
            `  ${i.instanceId} ${i.status} node ${i.nodeId} ordinal ${i.ordinal} updated ${i.updatedAt} ${i.lastError ?? ''}${stoppedByUs.has(i.instanceId) ? ' [stopped by us]' : ''}${deletedByUs.has(i.instanceId) ? ' [deleted by us]' : ''}`,
          );
      }
      return lines.join('\n');
    };
    // Converged: every command has its outcome, and the engine and the records agree.
    const settled = await eventually(
      'every command settled and the desired state reached',
      async () => {
        const all = await commands();
        const pending = all.filter((c) => c.status === 'pending');
        expect(
          pending.map((c) => `${c.type} ${c.commandId}`),
          agentLogs(),
        ).toEqual([]);
        for (const c of all) expect(c.completedAt, c.commandId).toEqual(expect.any(String));

        const onEngine = await engineContainers(docker, nodeNames);
        const byInstance = new Map<string, number>();
        for (const c of onEngine)
          byInstance.set(c.labels[LABELS.instance]!, (byInstance.get(c.labels[LABELS.instance]!) ?? 0) + 1);
        expect(
          [...byInstance].filter(([, n]) => n > 1),
          'instances with two containers',
        ).toEqual([]);

        for (const image of IMAGES) {
          // The records themselves: the API's view says `exited` for stopped and dead alike.
          const instances = await imageInstances(rt.ctx, image);
          const running = instances.filter((i) => i.status === 'running').map((i) => i.instanceId);
          for (const i of instances) {
            const want = stoppedByUs.has(i.instanceId)
              ? ['stopped']
              : deletedByUs.has(i.instanceId)
                ? ['removed']
                : ['running', 'removed'];
            expect(want, `${image} instance ${i.instanceId} is ${i.status}`).toContain(i.status);
          }
          const images = (await api('GET', '/images')).body.images as {
            image: string;
            desired_count: number;
          }[];
          // Every acknowledged start adds its copies, every acknowledged stop or delete of a running copy takes one.
          const desired = images.find((i) => i.image === image)?.desired_count ?? 0;
          expect(desired, `${image} desired`).toBe(expected.get(image));
          expect(running.length, `${image} running instances`).toBe(desired);
          const mine = onEngine.filter((c) => c.labels[LABELS.image] === image);
          expect(
            mine
              .filter((c) => c.state === 'running')
              .map((c) => c.labels[LABELS.instance])
              .sort(),
            `${image} running on the engine`,
          ).toEqual([...running].sort());
        }
        // Nothing else: stopped copies stay as exited containers, deleted ones are gone.
        for (const c of onEngine) {
          const id = c.labels[LABELS.instance]!;
          expect(deletedByUs.has(id), `deleted instance ${id} still on the engine`).toBe(false);
          if (c.state !== 'running')
            expect(stoppedByUs.has(id), `stray ${c.state} container of ${id}`).toBe(true);
        }
        for (const id of stoppedByUs) expect(byInstance.get(id), `stopped instance ${id}`).toBe(1);
        return all;
      },
      90_000,
      1000,
    ).catch(async (error: unknown) => {
      console.log(`chaos-agents: state at the end\n${await dump()}`);
      throw error;
    });
    const outcomes = new Map<string, number>();
    for (const c of settled)
      outcomes.set(`${c.type} ${c.status}`, (outcomes.get(`${c.type} ${c.status}`) ?? 0) + 1);
    console.log(`chaos-agents: outcomes ${JSON.stringify(Object.fromEntries(outcomes))}`);
    expect(settled.length).toBeGreaterThanOrEqual(TARGET_COMMANDS);
  }, 600_000);
});
