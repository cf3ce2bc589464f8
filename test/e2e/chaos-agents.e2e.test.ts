/**
 * Chaos: two REAL agents on Podman, each SIGKILLed at random moments and restarted at once, while
 * container commands flow through the embedded control plane from concurrent callers: starts of
 * 1-2 copies, stops, forced deletes, removes of stopped copies, restarts and limit updates.
 *
 * Afterwards:
 * - every command the control plane issued has one outcome, `succeeded` or `failed` with a reason,
 *   and every command a 202 named is among them (nothing acknowledged is lost);
 * - no command ran twice, by the agents' own account (each process logs `executing command` before
 *   it touches the engine; a redelivery of a command a killed process began is resumed, not run
 *   again) and by the engine's events (at most one container created per command; no more starts of
 *   an instance's containers than creations plus restarts asked);
 * - each image runs exactly its desired count (the starts acknowledged minus the stops and deletes
 *   acknowledged), one container per copy, and the engine holds nothing the records do not account for.
 *
 * Seeded: CHAOS_SEED repeats a run's choices (the seed is printed). CHAOS_COMMANDS and CHAOS_KILLS
 * set the volume (defaults: 500 commands, 20 kills).
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fleetKeys } from '../../functions/core/keys.js';
import type { CommandItem } from '../../functions/nodes/commands.js';
import { imageInstances, getService, serviceSlots } from '../../functions/orchestrator/model.js';
import { queryAll } from '../../functions/ports/store.js';
import { LABELS } from '../../protocol/messages.js';
import { agentLogTails, agentProcesses, startAgents, tearDownFleet } from '../harness/fleet.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../harness/images.js';
import { describeWith, engine as dockerClient, requireEngine, uniqueName } from '../harness/services.js';
import {
  AgentProcess,
  buildAgentBundle,
  call,
  engineContainers,
  eventually,
  RUN_UNTIL_TERM,
  sleep,
  startControlPlane,
  tagImage,
  untagImage,
  type Answer,
  type ControlPlane,
} from './harness.js';
import { seededRandom } from './chaos-random.js';

const TARGET_COMMANDS = Number(process.env.CHAOS_COMMANDS ?? 500);
const TARGET_KILLS = Number(process.env.CHAOS_KILLS ?? 20);
const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** Copies wanted of one image at most: the two nodes share one small machine. */
const MAX_DESIRED = 3;
const WORKERS = 12;
const CPU_LIMITS = ['0.1', '0.2'];

const engineStatus = requireEngine();
const runId = uniqueName('chaos');
const IMAGES = [0, 1, 2].map((i) => `localhost/${runId}:s${i}`);
const nodeNames = [`${runId}-a`, `${runId}-b`];

interface EngineEvent {
  Action?: string;
  id?: string;
  time?: number;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

describeWith(engineStatus, 'chaos: agents SIGKILLed at random while commands flow (embedded, Podman)', () => {
  let docker: Docker;
  let rt: ControlPlane;
  let stateRoot: string;
  let agents: AgentProcess[] = [];
  let events: Readable | undefined;
  const engineEvents: EngineEvent[] = [];
  /** Every line every agent process logged, kills and restarts included. */
  const agentLines: string[] = [];
  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
  const agentLogs = () => agentLogTails(agents, 30);

  beforeAll(async () => {
    console.log(`chaos-agents seed ${SEED} (CHAOS_SEED=${SEED} repeats its choices)`);
    docker = dockerClient();
    await ensureBusyboxImage(docker);
    for (const ref of IMAGES) await tagImage(docker, BUSYBOX_IMAGE, ref);
    // The engine's own account of what happened to this run's containers.
    events = (await docker.getEvents({
      filters: JSON.stringify({ type: ['container'], label: [`${LABELS.managed}=true`] }),
    })) as Readable;
    let partial = '';
    const seen = new Set<string>();
    events.on('data', (chunk: Buffer) => {
      partial += chunk.toString();
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const part of parts) {
        if (!part.trim()) continue;
        const e = JSON.parse(part) as EngineEvent;
        // Podman may report one happening twice: the same container, action and second.
        const key = `${e.id}:${e.Action}:${e.time}`;
        if (seen.has(key)) continue;
        seen.add(key);
        if (nodeNames.includes(e.Actor?.Attributes?.[LABELS.node] ?? '')) engineEvents.push(e);
      }
    });
    rt = await startControlPlane({
      env: {
        ...process.env,
        LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'ERROR',
        // A restart takes a few seconds on a loaded machine: the node must not count as lost meanwhile.
        NODE_OFFLINE_AFTER_SECONDS: '30',
        // Calls answer 202 soon, so commands keep flowing while an agent is down.
        COMMAND_WAIT_MS: '500',
        RESTART_BACKOFF_SECONDS: '1',
        AWS_ENDPOINT_URL: undefined,
      },
      moto: false,
    });
    stateRoot = await mkdtemp(join(tmpdir(), `${runId}-`));
    // The bundle starts in a fraction of tsx's time: restarts are most of this suite's work.
    const bundle = join(stateRoot, 'agent.mjs');
    await buildAgentBundle(bundle);
    agents = agentProcesses({
      url: rt.url,
      names: nodeNames,
      stateRoot,
      entry: [bundle],
      onLine: (line) => agentLines.push(line),
    });
    await startAgents(agents);
  }, 120_000);

  afterAll(async () => {
    events?.destroy();
    await tearDownFleet({ agents, docker, nodeNames, controlPlane: rt, stateRoot });
    if (docker) for (const ref of IMAGES) await untagImage(docker, ref);
  }, 60_000);

  it(`${TARGET_KILLS}+ kills during ${TARGET_COMMANDS}+ commands: one outcome each, none lost, none run twice, desired state, no duplicates`, async () => {
    const random = seededRandom(SEED);
    // Read once: an agent being restarted has no id until it runs again.
    const nodeIds = agents.map((a) => a.nodeId);
    /** Copies wanted by our account while calls flow (starts count before their answer). */
    const expected = new Map(IMAGES.map((i) => [i, 0]));
    /** Copies the acknowledged starts asked for. */
    const started = new Map(IMAGES.map((i) => [i, 0]));
    const stoppedByUs = new Set<string>();
    const deletedByUs = new Set<string>();
    /** Instances a call of ours is acting on: no other call picks them meanwhile. */
    const busy = new Set<string>();
    const statuses = new Map<string, number>();
    const serverErrors: string[] = [];
    /** Command ids the 202 answers named: each must end with an outcome. */
    const acknowledged = new Set<string>();
    let kills = 0;
    let calls = 0;
    /** Stops and deletes of running copies acknowledged. */
    let takenOff = 0;

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
      if (res.status === 202)
        for (const id of (res.body as { pending_commands?: string[] }).pending_commands ?? [])
          acknowledged.add(id);
    };
    /** Ids of copies the API shows running (a copy being stopped shows `running` too, as on Docker). */
    const runningOf = async (image: string) => {
      const res = await api('GET', `/containers/${image}/instances`);
      expect(res.status, res.text).toBe(200);
      return (res.body.instances as { id: string; status: string }[])
        .filter((i) => i.status === 'running')
        .map((i) => i.id);
    };
    /** One of `ids` no call of ours is acting on or has stopped or deleted, marked busy; picked and marked at once. */
    const claim = (ids: string[]) => {
      const free = ids.filter((id) => !busy.has(id) && !stoppedByUs.has(id) && !deletedByUs.has(id));
      if (!free.length) return undefined;
      const id = random.pick(free);
      busy.add(id);
      return id;
    };

    const operate = async () => {
      const image = random.pick(IMAGES);
      let op = random.weighted({
        start: 30,
        stop: 20,
        delete: 15,
        restart: 12,
        update: 10,
        removeStopped: 8,
      });
      const running = await runningOf(image);
      if (op === 'removeStopped' && ![...stoppedByUs].some((id) => !busy.has(id))) op = 'start';
      if (op === 'start' && expected.get(image)! >= MAX_DESIRED) op = 'stop';
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
          else started.set(image, started.get(image)! + count);
          return;
        }
        case 'update': {
          const res = await api('PUT', `/containers/${image}/resources`, {
            cpu_limit: random.pick(CPU_LIMITS),
          });
          note(op, res);
          return;
        }
        case 'stop':
        case 'delete':
        case 'restart': {
          const id = claim(running);
          if (!id) return sleep(200); // nothing of this image is free to act on
          try {
            if (op === 'restart') return note(op, await api('POST', `/api/swarm/containers/${id}/restart`));
            const res =
              op === 'stop'
                ? await api('POST', `/containers/${image}/stop`, { instanceId: id })
                : await api('DELETE', `/containers/${id}?force=true`);
            note(op, res);
            if (res.status === 200 || res.status === 202) {
              expected.set(image, expected.get(image)! - 1);
              takenOff++;
              (op === 'stop' ? stoppedByUs : deletedByUs).add(id);
            }
          } finally {
            busy.delete(id);
          }
          return;
        }
        case 'removeStopped': {
          const free = [...stoppedByUs].filter((id) => !busy.has(id));
          const id = random.pick(free);
          busy.add(id);
          try {
            const res = await api('DELETE', `/containers/${id}`);
            note(op, res);
            if (res.status === 200 || res.status === 202) {
              stoppedByUs.delete(id);
              deletedByUs.add(id);
            }
          } finally {
            busy.delete(id);
          }
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
    // Kills keep coming while commands flow, spread over the whole run.
    const killers = agents.map(async (agent) => {
      while (flowing) {
        await sleep(5000 + random.int(15_000));
        if (!flowing) return;
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
      await counter;
    } finally {
      flowing = false;
      await Promise.allSettled([...workers, ...killers]);
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
        for (const l of agentLines) if (l.includes(c.commandId)) lines.push(`  ${l}`);
      }
      for (const image of IMAGES) {
        const service = await getService(rt.ctx, image);
        lines.push(
          `${image}: desired ${service?.desiredCount} (started ${started.get(image)}, counted off ${(await imageInstances(rt.ctx, image, true)).filter((i) => i.countedOff).length})`,
        );
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

        /** A stop that ended `failed` (given up after repeated kills) leaves a dead copy, which is removed. */
        const failedStop = new Set(
          all.filter((c) => c.type === 'container.stop' && c.status === 'failed').map((c) => c.instanceId),
        );
        for (const image of IMAGES) {
          // The records themselves: the API's view says `exited` for stopped and dead alike.
          const withRemoved = await imageInstances(rt.ctx, image, true);
          const instances = withRemoved.filter((i) => i.status !== 'removed');
          const running = instances.filter((i) => i.status === 'running').map((i) => i.instanceId);
          for (const i of instances) {
            const want = stoppedByUs.has(i.instanceId)
              ? failedStop.has(i.instanceId)
                ? ['stopped', 'removed']
                : ['stopped']
              : deletedByUs.has(i.instanceId)
                ? ['removed']
                : ['running', 'removed'];
            expect(want, `${image} instance ${i.instanceId} is ${i.status}`).toContain(i.status);
          }
          // Only our stops and deletes count copies off, each copy once.
          const countedOff = withRemoved.filter((i) => i.countedOff);
          for (const i of countedOff)
            expect(stoppedByUs.has(i.instanceId) || deletedByUs.has(i.instanceId), i.instanceId).toBe(true);
          const images = (await api('GET', '/images')).body.images as {
            image: string;
            desired_count: number;
          }[];
          // Every acknowledged start adds its copies; every acknowledged stop or delete of a copy that
          // still held its place takes one (one already replaced, e.g. lost by an interrupted update, takes none).
          const desired = images.find((i) => i.image === image)?.desired_count ?? 0;
          expect(desired, `${image} desired`).toBe(started.get(image)! - countedOff.length);
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
        // Nothing else: stopped copies stay as stopped containers, deleted ones are gone.
        for (const c of onEngine) {
          const id = c.labels[LABELS.instance]!;
          expect(deletedByUs.has(id), `deleted instance ${id} still on the engine`).toBe(false);
          if (c.state !== 'running')
            expect(stoppedByUs.has(id), `stray ${c.state} container of ${id}`).toBe(true);
        }
        for (const id of stoppedByUs)
          if (!failedStop.has(id)) expect(byInstance.get(id), `stopped instance ${id}`).toBe(1);
        return all;
      },
      120_000,
      1000,
    ).catch(async (error: unknown) => {
      console.log(`chaos-agents: state at the end\n${await dump()}`);
      throw error;
    });

    // Each outcome is succeeded, or failed with its reason; nothing a 202 named is missing.
    const byId = new Map(settled.map((c) => [c.commandId, c]));
    expect(
      [...acknowledged].filter((id) => !byId.has(id)),
      'acknowledged commands without a record',
    ).toEqual([]);
    for (const c of settled) {
      expect(['succeeded', 'failed'], c.commandId).toContain(c.status);
      if (c.status === 'failed')
        expect(c.error, `${c.type} ${c.commandId} failed without a reason`).toBeTruthy();
    }

    // Run once, by the agents' account: one `executing command` per command id over every process.
    const executions = new Map<string, number>();
    let resumed = 0;
    for (const line of agentLines) {
      if (!line.startsWith('{')) continue;
      const entry = JSON.parse(line) as { message?: string; commandId?: string };
      if (entry.message === 'executing command' && entry.commandId)
        executions.set(entry.commandId, (executions.get(entry.commandId) ?? 0) + 1);
      if (entry.message === 'resuming a command begun before this agent restarted') resumed++;
    }
    expect(
      [...executions].filter(([, n]) => n > 1),
      'commands the agents executed twice',
    ).toEqual([]);
    // Each node's journal holds every command its agent answered: the agents' record of what they ran.
    const journalled = new Set<string>();
    for (const a of agents) {
      const journal = JSON.parse(await readFile(join(stateRoot, a.name, 'journal.json'), 'utf8')) as {
        commands: { commandId: string }[];
      };
      for (const c of journal.commands) journalled.add(c.commandId);
    }
    const deadLettered = (c: CommandItem) =>
      c.status === 'failed' && /^not completed: delivered/.test(c.error ?? '');
    expect(
      settled
        .filter((c) => !deadLettered(c) && !journalled.has(c.commandId))
        .map((c) => `${c.type} ${c.commandId}`),
      'commands settled without an agent having recorded them',
    ).toEqual([]);

    // And by the engine's: one container created per command, no start beyond creations and restarts.
    /** Containers each command created, by the engine's id. */
    const creates = new Map<string, Set<string>>();
    const starts = new Map<string, number>();
    const createsOf = new Map<string, Set<string>>();
    for (const e of engineEvents) {
      const attrs = e.Actor?.Attributes ?? {};
      const instance = attrs[LABELS.instance] ?? '';
      if (e.Action === 'create') {
        const command = attrs[LABELS.command] ?? '';
        creates.set(command, (creates.get(command) ?? new Set()).add(e.id ?? ''));
        createsOf.set(instance, (createsOf.get(instance) ?? new Set()).add(e.id ?? ''));
      }
      if (e.Action === 'start') starts.set(instance, (starts.get(instance) ?? 0) + 1);
    }
    expect(
      [...creates].filter(([, ids]) => ids.size > 1),
      'commands that created two containers',
    ).toEqual([]);
    const restarts = new Map<string, number>();
    for (const c of settled)
      if (c.type === 'container.restart' && c.instanceId)
        restarts.set(c.instanceId, (restarts.get(c.instanceId) ?? 0) + 1);
    const overStarted = [...starts].filter(
      ([instance, n]) => n > (createsOf.get(instance)?.size ?? 0) + (restarts.get(instance) ?? 0),
    );
    expect(overStarted, 'instances started more often than created and restarted').toEqual([]);

    let countedOff = 0;
    for (const image of IMAGES)
      countedOff += (await imageInstances(rt.ctx, image, true)).filter((i) => i.countedOff).length;
    console.log(
      `chaos-agents: ${takenOff} stops and deletes of running copies acknowledged, ${countedOff} of them took a copy off the desired count (the rest acted on copies already replaced)`,
    );
    const outcomes = new Map<string, number>();
    for (const c of settled)
      outcomes.set(`${c.type} ${c.status}`, (outcomes.get(`${c.type} ${c.status}`) ?? 0) + 1);
    console.log(
      `chaos-agents: outcomes ${JSON.stringify(Object.fromEntries(outcomes))}; ${acknowledged.size} named by 202s, ${executions.size} executions, ${resumed} resumed after a kill, 0 twice; engine: ${[...creates.values()].reduce((a, b) => a + b.size, 0)} containers created, ${[...starts.values()].reduce((a, b) => a + b, 0)} starts`,
    );
    expect(settled.length).toBeGreaterThanOrEqual(TARGET_COMMANDS);
  }, 900_000);
});
