/**
 * The task queue end to end (cluster manager and vision APIs): the local runtime in this
 * process, two REAL agents as child processes (two node names on one machine) and Podman running
 * a fake model server (test/fixtures/model-server, imported as an image by the harness). Run
 * twice: embedded control plane (HTTP command channel, blobs in a folder), and control plane on
 * moto (SQS command queues, S3 artifacts).
 *
 * The model server holds a request whose parameters carry a gate until the test releases it on
 * that server, so the test decides when each task finishes and the placement rules can be
 * predicted step by step. Containers are found by label fleet.node = this suite's node names;
 * afterAll removes every one of them.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTask } from '../../functions/cluster/tasks.js';
import { emit } from '../../functions/core/events.js';
import { compareStrings } from '../../functions/task-planner/compare.js';
import { LABELS } from '../../protocol/messages.js';
import {
  agentEnv,
  agentLogTails,
  agentProcesses,
  expectAgentChannel,
  putModelServer,
  startAgents,
  tearDownFleet,
} from '../harness/fleet.js';
import { ensureModelServerImage, MODEL_SERVER_PORT } from '../harness/model-server-image.js';
import {
  bothServices,
  describeWith,
  emulatorDeployment,
  engine as dockerClient,
  requireEngine,
  requireMoto,
  uniqueName,
  type ServiceStatus,
} from '../harness/services.js';
import {
  AgentProcess,
  call,
  engineContainers,
  eventually,
  startControlPlane,
  E2E_RUNTIME,
  type ControlPlane,
} from './harness.js';

/** A node is offline after this many seconds without a heartbeat; agents beat every second. */
const OFFLINE_AFTER_S = 6;
const COMMAND_WAIT_MS = 8_000;
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const engineStatus = requireEngine();
const motoStatus = requireMoto();

interface Mode {
  name: string;
  moto: boolean;
  status: ServiceStatus;
}

const modes: Mode[] = [
  { name: 'embedded control plane, HTTP command channel', moto: false, status: engineStatus },
  {
    name: `${E2E_RUNTIME === 'stack' ? 'the synthesized stack (start:stack)' : 'control plane'} on moto, SQS command queues, S3 artifacts`,
    moto: true,
    status: bothServices(engineStatus, motoStatus),
  },
];

const X = 'e2e-painter-x';
const Y = 'e2e-painter-y';

let docker: Docker;
let image: string;
beforeAll(async () => {
  if (!engineStatus.available) return;
  docker = dockerClient();
  image = await ensureModelServerImage(docker);
}, 180_000);

describe.each(modes)('task queue end to end: $name', (mode) => {
  describeWith(mode.status, 'local runtime, two real agents, a model server on Podman', () => {
    const runId = uniqueName(mode.moto ? 'e2e-cq-sqs' : 'e2e-cq-emb');
    let rt: ControlPlane;
    let stateRoot: string;
    let agents: AgentProcess[] = [];
    const nodeNames = [`${runId}-a`, `${runId}-b`];

    const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
    const agentLogs = () => agentLogTails(agents, 25);
    const agentOf = (nodeId: string | undefined) => {
      const a = agents.find((x) => x.nodeId === nodeId);
      if (!a) throw new Error(`no agent of this suite has node id ${nodeId}`);
      return a;
    };
    const record = async (taskId: string) => {
      const t = await getTask(rt.ctx, taskId);
      if (!t) throw new Error(`no task record ${taskId}`);
      return t;
    };

    /** Base URL of the one running model server of a node, by its published port. */
    const serverOf = async (nodeName: string) => {
      const running = (await engineContainers(docker, [nodeName], { [LABELS.kind]: 'model' })).filter(
        (c) => c.state === 'running',
      );
      expect(running, `running model servers of ${nodeName}`).toHaveLength(1);
      const info = await docker.getContainer(running[0]!.id).inspect();
      const port = info.NetworkSettings.Ports[`${MODEL_SERVER_PORT}/tcp`]?.[0]?.HostPort;
      expect(port, `published port of ${info.Name}`).toBeTruthy();
      return { url: `http://127.0.0.1:${port}`, model: info.Config.Labels[LABELS.model], id: info.Id };
    };
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the fake server's JSON
    const serverState = async (nodeName: string): Promise<any> =>
      (await call((await serverOf(nodeName)).url, 'GET', '/state')).body;

    /** Gate of each held task. */
    const gates = new Map<string, string>();

    /** Waits until a held task's request is on its node's model server; returns the node's agent. */
    const heldOnServer = async (taskId: string) =>
      eventually(
        `task ${taskId} held on a model server`,
        async () => {
          const t = await record(taskId);
          expect(t.status, `${taskId}: ${JSON.stringify(t)}`).toBe('running');
          const agent = agentOf(t.nodeId);
          expect((await serverState(agent.name)).held).toContain(gates.get(taskId));
          return agent;
        },
        60_000,
        200,
      );

    /** Opens a task's gate on the server of the node it runs on. */
    const release = async (taskId: string) => {
      const agent = await heldOnServer(taskId);
      const res = await call((await serverOf(agent.name)).url, 'POST', '/release', {
        gate: gates.get(taskId),
      });
      expect(res.status, res.text).toBe(200);
      expect(res.body.wasHeld).toBe(true);
    };

    type Via = 'cluster' | 'vision';
    /** Submits an image task through one of the two APIs; a gate holds it on the server until released. */
    const submit = async (
      model: string,
      o: { via?: Via; gate?: string; priority?: 'low' | 'normal' | 'high' } = {},
    ): Promise<string> => {
      const priority = o.priority ?? 'normal';
      if ((o.via ?? 'cluster') === 'cluster') {
        const res = await api('POST', '/tasks', {
          task_type: 'image_generation',
          model_name: model,
          parameters: {
            prompt: 'a lighthouse',
            width: 64,
            height: 64,
            steps: 2,
            ...(o.gate ? { gate: o.gate } : {}),
          },
          priority,
        });
        expect(res.status, res.text).toBe(200);
        expect(res.body).toMatchObject({ status: 'queued', assigned_worker: null });
        return res.body.task_id as string;
      }
      const res = await api('POST', '/api/vision/generate', {
        prompt: `a lighthouse${o.gate ? ` [gate:${o.gate}]` : ''}`,
        model,
        width: 64,
        height: 64,
        steps: 2,
        priority: { low: -1, normal: 0, high: 1 }[priority],
      });
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ status: 'queued', target_model: model });
      return res.body.job_id as string;
    };

    const waitFor = (taskId: string, status: string, timeoutMs = 60_000) =>
      eventually(
        `task ${taskId} ${status}`,
        async () => {
          const t = await record(taskId);
          expect(t.status, `${JSON.stringify(t)}\n${agentLogs()}`).toBe(status);
          return t;
        },
        timeoutMs,
        200,
      );

    beforeAll(async () => {
      const env: Record<string, string | undefined> = {
        ...process.env,
        LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'SILENT',
        NODE_OFFLINE_AFTER_SECONDS: String(OFFLINE_AFTER_S),
        COMMAND_WAIT_MS: String(COMMAND_WAIT_MS),
        AWS_ENDPOINT_URL: undefined,
      };
      if (mode.moto) {
        Object.assign(env, emulatorDeployment(runId));
      }
      rt = await startControlPlane({ env, moto: mode.moto });
      expect(rt.ctx.mode).toBe(mode.moto ? 'emulator' : 'embedded');
      stateRoot = await mkdtemp(join(tmpdir(), `${runId}-`));
      agents = agentProcesses({
        url: rt.url,
        names: nodeNames,
        stateRoot,
        env: agentEnv({ FLEET_LABELS: '' }),
      });
      await startAgents(agents);
      expectAgentChannel(agents, mode.moto ? 'sqs' : 'http');
      await eventually('both workers online', async () => {
        const res = await api('GET', '/workers');
        const workers = res.body.workers as { worker_id: string; status: string; max_concurrency: number }[];
        for (const a of agents)
          expect(workers.find((w) => w.worker_id === a.nodeId)).toMatchObject({
            status: 'online',
            max_concurrency: 1,
          });
      });
      // Two models served by the same test image; 0 MB of GPU memory: these nodes have no GPU.
      for (const id of [X, Y]) await putModelServer(rt.url, id, image);
    }, 120_000);

    afterAll(async () => {
      await tearDownFleet({ agents, docker, nodeNames, controlPlane: rt, stateRoot });
      if (docker) expect(await engineContainers(docker, nodeNames)).toEqual([]);
    }, 60_000);

    it('places 20 tasks over 2 models by the three rules; the switches are the predicted ones', async () => {
      // The rules for one-slot nodes, same priority (FIFO): (1) an idle node with the model loaded,
      // (2) else switch the model on an idle node (empty nodes first, then nodes whose model nobody
      // queued for, then node id), (3) else the task waits.
      interface PNode {
        id: string;
        model: string | null;
        running: string | null;
      }
      const nodes: PNode[] = agents
        .map((a) => ({ id: a.nodeId, model: null, running: null }))
        .sort((a, b) => compareStrings(a.id, b.id));
      const queue: { id: string; model: string }[] = [];
      const expected = new Map<
        string,
        { status: 'queued' | 'active' | 'completed'; node?: string; switched?: boolean }
      >();
      const startOrder: string[] = [];
      let predictedSwitches = 0;

      const predict = () => {
        const demand = new Map<string, number>();
        for (const t of queue) demand.set(t.model, (demand.get(t.model) ?? 0) + 1);
        const idleClass = (n: PNode) => (n.model === null ? 0 : (demand.get(n.model) ?? 0) > 0 ? 2 : 1);
        const classes = new Map(nodes.map((n) => [n.id, idleClass(n)] as const)); // fixed per plan
        for (const t of [...queue]) {
          const idle = nodes.filter((n) => n.running === null);
          if (!idle.length) break; // rule 3 for this task and all after it
          const loaded = idle.find((n) => n.model === t.model);
          const target =
            loaded ??
            [...idle].sort(
              (a, b) => classes.get(a.id)! - classes.get(b.id)! || compareStrings(a.id, b.id),
            )[0]!;
          const switched = loaded === undefined;
          if (switched) predictedSwitches++;
          target.model = t.model;
          target.running = t.id;
          queue.splice(queue.indexOf(t), 1);
          startOrder.push(t.id);
          expected.set(t.id, { status: 'active', node: target.id, switched });
        }
      };

      const matches = () =>
        eventually(
          'the records to match the prediction',
          async () => {
            for (const [id, want] of expected) {
              const t = await record(id);
              const got = `${id}: ${t.status} on ${t.nodeId ?? '-'}`;
              if (want.status === 'queued') expect(t.status, got).toBe('queued');
              else {
                expect(want.status === 'active' ? ['assigned', 'running'] : ['completed'], got).toContain(
                  t.status,
                );
                expect(t.nodeId, got).toBe(want.node);
                expect(t.switchedModel ?? false, got).toBe(want.switched);
              }
            }
          },
          90_000,
          250,
        );

      const models = [X, X, Y, X, Y, Y, X, Y, X, X, Y, Y, Y, X, Y, X, X, Y, X, Y];
      const ids: string[] = [];
      for (const [i, model] of models.entries()) {
        const gate = `${runId}-p${i}`;
        const id = await submit(model, { via: i % 2 ? 'vision' : 'cluster', gate });
        ids.push(id);
        gates.set(id, gate);
        queue.push({ id, model });
        expected.set(id, { status: 'queued' });
        predict();
        await matches();
      }
      // Both nodes busy, the rest queued; now finish the oldest running task, one at a time.
      expect(queue.length).toBe(models.length - 2);
      for (let done = 0; done < models.length; done++) {
        const oldest = startOrder.find((id) => expected.get(id)!.status === 'active')!;
        await release(oldest);
        const n = nodes.find((x) => x.running === oldest)!;
        n.running = null;
        expected.set(oldest, { ...expected.get(oldest)!, status: 'completed' });
        predict();
        await matches();
      }
      expect(queue).toEqual([]);

      // Records: every task completed once, on the predicted node; switches as predicted, and some happened.
      const records = await Promise.all(ids.map(record));
      expect(records.filter((t) => t.switchedModel).length).toBe(predictedSwitches);
      expect(predictedSwitches).toBeGreaterThanOrEqual(4);
      for (const t of records) {
        expect(t).toMatchObject({ status: 'completed', attempts: 1 });
        // The server that answered serves the task's model (the catalogue's env reached the container).
        expect(t.result).toMatchObject({ model: t.model, model_env: t.model, gate: gates.get(t.taskId) });
      }
      // Engine: every switch started a new server container; each answered only for its model.
      const servers = new Map<string, Set<string>>();
      for (const t of records) {
        const s = String(t.result!.server);
        servers.set(s, (servers.get(s) ?? new Set()).add(t.model));
      }
      expect(servers.size).toBe(predictedSwitches);
      for (const served of servers.values()) expect(served.size).toBe(1);
      // What is left on the engine: one server per node, serving the model predicted there last.
      for (const n of nodes) {
        const onEngine = await engineContainers(docker, [agentOf(n.id).name], { [LABELS.kind]: 'model' });
        expect(onEngine.map((c) => [c.state, c.labels[LABELS.model]])).toEqual([['running', n.model]]);
      }
      // Both APIs' views of the fleet say the same.
      const loaded: Record<string, string[]> = {};
      for (const n of nodes) (loaded[n.model!] ??= []).push(agentOf(n.id).name);
      await eventually('the vision status to show the loaded models', async () => {
        const status = await api('GET', '/api/vision/status');
        expect(status.status, status.text).toBe(200);
        expect(status.body).toMatchObject({
          online_nodes: 2,
          busy_nodes: 0,
          offline_nodes: 0,
          queue_length: 0,
        });
        const got = Object.fromEntries(
          Object.entries(status.body.models_loaded as Record<string, string[]>).map(([m, ns]) => [
            m,
            [...ns].sort(),
          ]),
        );
        expect(got).toEqual(Object.fromEntries(Object.entries(loaded).map(([m, ns]) => [m, ns.sort()])));
      });
      const workers = (await api('GET', '/workers')).body.workers as {
        worker_id: string;
        loaded_models: string[];
      }[];
      for (const n of nodes)
        expect(workers.find((w) => w.worker_id === n.id)?.loaded_models).toEqual([n.model]);
      const list = await api('GET', '/tasks?status=completed&limit=100');
      expect(list.body.total).toBe(models.length);
    }, 300_000);

    it('serves image outputs: listed, fetched as a real PNG, in the gallery, deleted', async () => {
      const id = await submit(Y, { via: 'vision' });
      const job = await eventually(
        'the job completed',
        async () => {
          const res = await api('GET', `/api/vision/jobs/${id}`);
          expect(res.body.status, `${res.text}\n${agentLogs()}`).toBe('completed');
          return res.body;
        },
        60_000,
        250,
      );
      const filename = `${id}_image_0.png`;
      expect(job.result).toMatchObject({
        image_url: `/api/vision/outputs/${filename}`,
        images: [`/api/vision/outputs/${filename}`],
        seed: expect.any(Number),
        node_id: expect.any(String),
      });
      expect(nodeNames).toContain(job.result.node_id);

      const outputs = await api('GET', '/api/vision/outputs');
      expect(outputs.status, outputs.text).toBe(200);
      const listed = (outputs.body.outputs as { filename: string; size: number }[]).find(
        (o) => o.filename === filename,
      );
      expect(listed).toMatchObject({ url: `/api/vision/outputs/${filename}`, size: expect.any(Number) });

      const file = await fetch(`${rt.url}/api/vision/outputs/${filename}`);
      expect(file.status).toBe(200);
      expect(file.headers.get('content-type')).toBe('image/png');
      const bytes = new Uint8Array(await file.arrayBuffer());
      expect([...bytes.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
      expect(bytes.length).toBe(listed!.size);
      // IHDR follows the signature: the server's 16 x 16 image.
      const view = new DataView(bytes.buffer, bytes.byteOffset);
      expect(new TextDecoder().decode(bytes.subarray(12, 16))).toBe('IHDR');
      expect([view.getUint32(16), view.getUint32(20)]).toEqual([16, 16]);
      if (mode.moto)
        expect(await rt.ctx.blobs.get(`outputs/${filename}`)).toMatchObject({ contentType: 'image/png' });

      const gallery = await api('GET', '/api/vision/gallery?limit=500');
      expect(gallery.status, gallery.text).toBe(200);
      expect(
        (gallery.body.images as { filename: string }[]).find((i) => i.filename === filename),
      ).toMatchObject({
        job_id: id,
        url: `/api/vision/outputs/${filename}`,
      });

      const del = await api('DELETE', `/api/vision/outputs/${filename}`);
      expect(del.status, del.text).toBe(200);
      expect(del.body).toEqual({ message: 'Output deleted', filename });
      expect((await fetch(`${rt.url}/api/vision/outputs/${filename}`)).status).toBe(404);
      expect((await api('DELETE', `/api/vision/outputs/${filename}`)).status).toBe(404);
      const after = await api('GET', '/api/vision/outputs');
      expect((after.body.outputs as { filename: string }[]).map((o) => o.filename)).not.toContain(filename);
      const galleryAfter = await api('GET', '/api/vision/gallery?limit=500');
      expect((galleryAfter.body.images as { filename: string }[]).map((o) => o.filename)).not.toContain(
        filename,
      );
    }, 90_000);

    /** Fills both nodes with held tasks of a model a free node has loaded (rule 1: no switch), held on their servers. */
    const occupyBoth = async (tag: string) => {
      const held: string[] = [];
      const busy = new Set<string>();
      for (let i = 0; i < agents.length; i++) {
        const free = agents.find((a) => !busy.has(a.nodeId))!;
        const gate = `${runId}-${tag}-${i}`;
        const id = await submit((await serverOf(free.name)).model!, { gate });
        gates.set(id, gate);
        held.push(id);
        const on = await heldOnServer(id);
        expect(busy.has(on.nodeId)).toBe(false);
        expect((await record(id)).switchedModel ?? false).toBe(false);
        busy.add(on.nodeId);
      }
      return held;
    };

    it('honours priorities: a high-priority task queued later starts before a low one queued earlier', async () => {
      const held = await occupyBoth('prio');
      const low = await submit(X, { via: 'vision', priority: 'low' });
      const high = await submit(X, { via: 'cluster', priority: 'high' });
      const queue = await api('GET', '/api/vision/queue');
      expect((queue.body.queue as { job_id: string }[]).map((q) => q.job_id)).toEqual([high, low]);
      expect(queue.body.processing.map((p: { job_id: string }) => p.job_id).sort()).toEqual([...held].sort());

      await release(held[0]!);
      const h = await waitFor(high, 'completed');
      await release(held[1]!);
      const l = await waitFor(low, 'completed');
      expect((await record(low)).createdAtMs).toBeLessThan((await record(high)).createdAtMs);
      expect(h.assignedAtMs!).toBeLessThan(l.assignedAtMs!);
      for (const id of held) await waitFor(id, 'completed');
    }, 120_000);

    it('cancels a queued task (it never runs) and a running one (aborted on its node)', async () => {
      const held = await occupyBoth('cancel');
      // Queued: cancelled through the vision API, it leaves the queue and is never placed.
      const queued = await submit(X, { via: 'vision' });
      const c1 = await api('POST', `/api/vision/jobs/${queued}/cancel`);
      expect(c1.status, c1.text).toBe(200);
      expect(c1.body).toEqual({ job_id: queued, status: 'cancelled', message: 'Job cancelled' });
      expect((await api('GET', '/api/vision/queue')).body.queue).toEqual([]);

      // Running: DELETE /tasks aborts the request on the node's model server.
      const running = held[0]!;
      const node = agentOf((await record(running)).nodeId);
      expect((await serverState(node.name)).held).toContain(gates.get(running));
      const c2 = await api('DELETE', `/tasks/${running}`);
      expect(c2.status, c2.text).toBe(200);
      expect(c2.body).toEqual({ message: 'Task cancelled', task_id: running, status: 'cancelled' });
      await eventually('the server saw the request go', async () => {
        const s = await serverState(node.name);
        expect(s.aborted).toContain(gates.get(running));
        expect(s.held).not.toContain(gates.get(running));
      });
      // The node is free again once the agent confirmed: a new task runs there.
      const next = await submit((await serverOf(node.name)).model!);
      expect((await waitFor(next, 'completed')).nodeId).toBe(node.nodeId);
      expect(await record(running)).toMatchObject({ status: 'cancelled', error: 'cancelled' });

      await release(held[1]!);
      await waitFor(held[1]!, 'completed');
      const q = await record(queued);
      expect(q).toMatchObject({ status: 'cancelled', attempts: 0 });
      expect(q.nodeId).toBeUndefined();
      expect((await api('GET', `/tasks/${queued}`)).body).toMatchObject({
        status: 'cancelled',
        started_at: null,
      });
    }, 120_000);

    it('switches and unloads a model by hand: the engine follows, and the next task uses the new server', async () => {
      const [a, b] = agents as [AgentProcess, AgentProcess];
      const before = (await serverOf(a.name)).model!;
      const target = before === X ? Y : X;
      // b is busy, so a task of `target` can only go to a.
      const gate = `${runId}-switch`;
      const busy = await submit((await serverOf(b.name)).model!, { gate });
      gates.set(busy, gate);
      expect((await heldOnServer(busy)).nodeId).toBe(b.nodeId);

      const sw = await api('POST', `/api/vision/models/switch/${a.name}`, { model: target });
      expect(sw.status, sw.text).toBe(200);
      expect(sw.body).toMatchObject({
        node_id: a.name,
        model: target,
        status: 'switching',
        previous_models: [before],
      });
      const server = await eventually(
        `${a.name} serving ${target} only`,
        async () => {
          const onEngine = await engineContainers(docker, [a.name], { [LABELS.kind]: 'model' });
          expect(onEngine.map((c) => [c.state, c.labels[LABELS.model]])).toEqual([['running', target]]);
          return onEngine[0]!;
        },
        30_000,
        250,
      );
      const id = await submit(target, { via: 'vision' });
      const t = await waitFor(id, 'completed');
      expect(t).toMatchObject({ nodeId: a.nodeId, attempts: 1 });
      expect(t.switchedModel ?? false).toBe(false);
      // Answered by the server the switch started (its hostname is the container id's start).
      expect(String(t.result!.server).split('@')[0]).toBe(server.id.slice(0, 12));

      const unload = await api('POST', '/models/unload', { model_name: target, worker_ids: [a.nodeId] });
      expect(unload.status, unload.text).toBe(200);
      expect(unload.body).toMatchObject({ model_name: target, affected_workers: [a.nodeId] });
      await eventually(`${a.name} without a model server`, async () => {
        expect(await engineContainers(docker, [a.name], { [LABELS.kind]: 'model' })).toEqual([]);
      });
      const worker = await api('GET', `/workers/${a.nodeId}`);
      expect(worker.body.loaded_models).toEqual([]);

      // A task for a's old model now loads it there again (rule 2 on an empty node).
      const back = await submit(before);
      const r = await waitFor(back, 'completed');
      expect(r).toMatchObject({ nodeId: a.nodeId, switchedModel: true });
      await release(busy);
      await waitFor(busy, 'completed');
    }, 120_000);

    it('fails a task past its timeout (aborted on its node) and one whose server image is missing; the nodes stay usable', async () => {
      // Timeout: the agent gets what is left of the deadline and aborts the request to the server.
      const gate = `${runId}-timeout`;
      const res = await api('POST', '/tasks', {
        task_type: 'image_generation',
        model_name: X,
        parameters: { prompt: 'never released', width: 64, height: 64, steps: 2, gate },
        timeout: 4,
      });
      expect(res.status, res.text).toBe(200);
      const late = res.body.task_id as string;
      gates.set(late, gate);
      const node = await heldOnServer(late);
      const failed = await waitFor(late, 'failed', 30_000);
      expect(failed.error).toMatch(/timed out after \d+ s/);
      expect((await serverState(node.name)).aborted).toContain(gate);

      // A model whose image the engine does not have (and no registry to pull from).
      const missing = 'e2e-painter-missing';
      const decl = await api('PUT', `/models/catalog/${missing}`, {
        kind: 'image',
        image: `localhost/${runId}-no-such-image:1`,
        port: MODEL_SERVER_PORT,
        protocol: 'vision-generate',
        gpuMemoryMb: 0,
      });
      expect(decl.status, decl.text).toBe(200);
      const broken = await submit(missing, { via: 'vision' });
      const t = await waitFor(broken, 'failed', 90_000);
      expect(t.error).toMatch(/no-such-image/);
      const job = await api('GET', `/api/vision/jobs/${broken}`);
      expect(job.body).toMatchObject({ status: 'failed', error: t.error });

      // Both nodes still take work.
      const after = await Promise.all([submit(X), submit(Y, { via: 'vision' })]);
      for (const id of after) await waitFor(id, 'completed');
      expect((await api('DELETE', `/models/catalog/${missing}`)).status).toBe(200);
    }, 150_000);

    it('a task whose agent is SIGKILLed mid-task is requeued when the node goes offline and finishes on the other node', async () => {
      const gate = `${runId}-kill`;
      const id = await submit(X, { gate });
      gates.set(id, gate);
      const victim = await heldOnServer(id);
      const survivor = agents.find((a) => a !== victim)!;
      await victim.kill('SIGKILL');

      await eventually(
        `${victim.name} offline`,
        async () => {
          const res = await api('GET', `/workers/${victim.nodeId}`);
          expect(res.body.status).toBe('offline');
        },
        (OFFLINE_AFTER_S + 10) * 1000,
        250,
      );
      // The every-minute sweep, fired now: the node is marked offline and its task goes back to the queue.
      await emit(rt.ctx, { type: 'nodes.sweep' });
      await eventually(
        'the task on the other node',
        async () => {
          const t = await record(id);
          expect(t.requeuedFrom).toEqual([victim.nodeId]);
          expect(t.nodeId, `${JSON.stringify(t)}\n${agentLogs()}`).toBe(survivor.nodeId);
        },
        30_000,
        250,
      );
      await release(id);
      const done = await waitFor(id, 'completed');
      expect(done).toMatchObject({ nodeId: survivor.nodeId, attempts: 2, result: { gate, model: X } });
      expect((await api('GET', `/tasks/${id}`)).body).toMatchObject({
        status: 'completed',
        assigned_worker: survivor.nodeId,
      });
    }, 120_000);
  });
});
