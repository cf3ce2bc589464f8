import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emit } from '../../../functions/core/events.js';
import { transitionInstance } from '../../../functions/orchestrator/model.js';
import { MINUTE_SCHEDULE } from '../../../functions/minute.js';
import type { CommandEnvelope } from '../../../protocol/commands.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call, eventually, ScriptedAgent } from '../../harness/scripted-agent.js';

const env = {
  ...process.env,
  LOG_LEVEL: 'SILENT',
  AWS_ENDPOINT_URL: undefined,
  NODE_OFFLINE_AFTER_SECONDS: '2',
  // The `slow` agent never answers: calls that wait for it answer 202 after this.
  COMMAND_WAIT_MS: '2500',
  // Copies pruned or exited here are replaced at once (the backoff has its own suite, backoff.test.ts).
  RESTART_BACKOFF_SECONDS: '0',
};

type Problem = {
  id: string;
  node_id: string;
  type: string;
  severity: string;
  message: string;
  detected_at: string;
  auto_fixable: boolean;
};

const nextSixUtc = (now: number) => {
  const d = new Date(now);
  d.setUTCHours(6, 0, 0, 0);
  if (d.getTime() <= now) d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString();
};

describe('Fleet Commander Maintenance and SSH APIs over the agents (embedded runtime)', () => {
  let rt: Runtime;
  /** a: exec allowed; b: exec refused; gone: silent after one heartbeat; slow: heartbeats, never serves. */
  let a: ScriptedAgent;
  let b: ScriptedAgent;
  let gone: ScriptedAgent;
  let slow: ScriptedAgent;
  let beat: NodeJS.Timeout;

  beforeAll(async () => {
    rt = await startRuntime({ port: 0, env, scheduleRefreshMs: 200 });
    // The minute schedule's sweep would replace the exited copy this suite makes by hand before the quick fix does.
    await rt.ctx.scheduler.delete(MINUTE_SCHEDULE);
    a = new ScriptedAgent(rt.url, 'agx0', { allowExec: true, address: '192.168.1.182', cpuCount: 8 });
    b = new ScriptedAgent(rt.url, 'agx1', { address: '192.168.1.183' });
    gone = new ScriptedAgent(rt.url, 'agx2', { address: '192.168.1.184' });
    slow = new ScriptedAgent(rt.url, 'agx3', { address: '192.168.1.185' });
    for (const agent of [a, b, gone, slow]) {
      await agent.register();
      await agent.heartbeat();
    }
    a.start(200);
    b.start(200);
    beat = setInterval(() => void slow.heartbeat().catch(() => undefined), 300);
  });
  afterAll(async () => {
    clearInterval(beat);
    await a?.stop();
    await b?.stop();
    await rt?.stop();
  });

  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
  const problems = async () => (await api('GET', '/api/maintenance/problems')).body.problems as Problem[];
  const ofNode = (list: Problem[], agent: ScriptedAgent) => list.filter((p) => p.node_id === agent.nodeId);
  const commandsOf = (agent: ScriptedAgent, type: CommandEnvelope['command']['type']) =>
    agent.seen.filter((e) => e.command.type === type);

  it('the schedule is an app schedule, daily at 06:00 UTC, delivering maintenance.run', async () => {
    const s = await rt.ctx.scheduler.get('fleet-maintenance');
    expect(s).toMatchObject({ expression: 'cron(0 6 * * ? *)', payload: '{"type":"maintenance.run"}' });
  });

  it('status: stopped by default; start and stop flip the stored switch and next_run', async () => {
    const before = await api('GET', '/api/maintenance/status');
    expect(before.status).toBe(200);
    expect(before.body).toEqual({
      enabled: false,
      running: false,
      last_run: null,
      next_run: null,
      problems_count: expect.any(Number),
    });
    const started = await api('POST', '/api/maintenance/start');
    expect(started.status).toBe(200);
    expect(started.body).toMatchObject({ enabled: true, running: false, next_run: nextSixUtc(Date.now()) });
    expect((await api('GET', '/api/maintenance/status')).body.enabled).toBe(true);
    const stopped = await api('POST', '/api/maintenance/stop');
    expect(stopped.body).toMatchObject({ enabled: false, next_run: null });
    expect((await api('GET', '/api/maintenance/status')).body.enabled).toBe(false);
  });

  it('problems come from the records: offline, disk, memory, GPU temperature; stable ids, first-seen times', async () => {
    // Prepare
    a.metrics = {
      diskUsedGb: 85,
      diskTotalGb: 100,
      memoryUsedMb: 15_500,
      memoryTotalMb: 16_384,
      gpus: [
        {
          index: 0,
          uuid: 'GPU-0',
          name: 'NVIDIA H100',
          utilizationGpu: 90,
          utilizationMemory: 50,
          memoryTotalMiB: 80_000,
          memoryUsedMiB: 40_000,
          memoryFreeMiB: 40_000,
          temperatureC: 91,
          powerDrawW: 600,
          powerLimitW: 700,
        },
      ],
    };
    b.metrics = {
      diskUsedGb: 95,
      diskTotalGb: 100,
      tegrastats: { temperatures: { GPU: 86.5, CPU: 99, tj: 99 } },
    };
    // Act
    const list = await eventually(async () => {
      // A silent node is listed once the sweep takes it offline (the minute schedule is off here).
      await emit(rt.ctx, { type: 'nodes.sweep' });
      const l = await problems();
      expect(ofNode(l, gone).map((p) => p.type)).toEqual(['node_offline']);
      expect(ofNode(l, a)).toHaveLength(3);
      expect(ofNode(l, b)).toHaveLength(2);
      return l;
    });
    // Assess
    const [offline] = ofNode(list, gone);
    expect(offline).toMatchObject({ type: 'node_offline', severity: 'critical', auto_fixable: false });
    expect(offline!.message).toMatch(/^Node agx2 is offline: no heartbeat since /);
    expect(ofNode(list, a)).toEqual([
      {
        id: expect.stringMatching(/^prob-[0-9a-f]{24}$/),
        node_id: a.nodeId,
        type: 'disk_space',
        severity: 'warning',
        message: 'Disk usage at 85% on agx0 (85 of 100 GB)',
        detected_at: expect.any(String),
        auto_fixable: true,
      },
      expect.objectContaining({
        type: 'high_memory',
        severity: 'warning',
        message: 'Memory usage at 95% on agx0',
        auto_fixable: false,
      }),
      expect.objectContaining({
        type: 'gpu_temperature',
        message: 'GPU temperature at 91 °C on agx0: GPU 0 (NVIDIA H100) 91 °C',
        auto_fixable: false,
      }),
    ]);
    expect(ofNode(list, b).map((p) => [p.type, p.severity])).toEqual([
      ['disk_space', 'critical'],
      ['gpu_temperature', 'warning'],
    ]);
    expect(ofNode(list, b)[1]!.message).toBe('GPU temperature at 87 °C on agx1: tegrastats GPU 87 °C');
    // Critical first, then by node name.
    expect(list.map((p) => p.severity)).toEqual([...list.map((p) => p.severity)].sort());
    expect(list.slice(0, 2).map((p) => p.node_id)).toEqual([b.nodeId, gone.nodeId]);

    // The same problems again: same ids, same first-seen times, nothing duplicated.
    await new Promise((r) => setTimeout(r, 20));
    const again = await problems();
    for (const p of list) expect(again.find((q) => q.id === p.id)).toEqual(p);
    expect(new Set(again.map((p) => p.id)).size).toBe(again.length);
    expect((await api('GET', '/api/maintenance/status')).body.problems_count).toBe(again.length);

    // Gone, then back: a new first sighting under the same id.
    const disk = ofNode(list, a).find((p) => p.type === 'disk_space')!;
    a.metrics = { ...a.metrics, diskUsedGb: 30 };
    await eventually(async () => expect((await problems()).some((p) => p.id === disk.id)).toBe(false));
    a.metrics = { ...a.metrics, diskUsedGb: 85 };
    const back = await eventually(async () => {
      const p = (await problems()).find((q) => q.id === disk.id);
      expect(p).toBeDefined();
      return p!;
    });
    expect(back.detected_at > disk.detected_at).toBe(true);
  });

  it('quick-fix docker_cleanup: the agent prunes, the answer says what went', async () => {
    // Prepare: one copy on agx0 that exited.
    const start = await api('POST', '/containers/web:1/start', { count: 1, node_id: a.nodeId });
    expect(start.status).toBe(200);
    const id = start.body.started[0] as string;
    a.containers.get(id)!.state = 'exited';
    // Act
    const res = await api('POST', '/api/maintenance/quick-fix', {
      node_id: 'agx0',
      fix_type: 'docker_cleanup',
    });
    // Assess
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({
      node_id: a.nodeId,
      fix_type: 'docker_cleanup',
      status: 'completed',
      containers_removed: [
        { container_id: expect.any(String), name: `container-${id}`, instance_id: id, kind: 'service' },
      ],
      containers_skipped: [],
      images_removed: ['sha256:dangling'],
      space_reclaimed_bytes: 1_000_000,
    });
    expect(commandsOf(a, 'engine.prune')).toHaveLength(1);
    expect(a.containers.has(id)).toBe(false);
  });

  it('quick-fix restart_exited: the orchestrator’s exited copies on the node are replaced', async () => {
    // Prepare: a running copy whose record says it exited with code 3 (as a heartbeat would have).
    const start = await api('POST', '/containers/api:2/start', { count: 1, node_id: a.nodeId });
    const id = start.body.started[0] as string;
    a.containers.get(id)!.state = 'exited';
    await transitionInstance(rt.ctx, id, ['running'], 'exited', { exitCode: 3 });
    const down = (await problems()).find((p) => p.node_id === a.nodeId && p.type === 'container_exited');
    expect(down).toMatchObject({ severity: 'warning', auto_fixable: true });
    expect(down!.message).toBe(
      `1 managed container is down on agx0: container-${id} (api:2, exited with code 3)`,
    );
    // Act
    const res = await api('POST', '/api/maintenance/quick-fix', {
      node_id: a.nodeId,
      fix_type: 'restart_exited',
    });
    // Assess
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({
      node_id: a.nodeId,
      fix_type: 'restart_exited',
      status: 'completed',
      replaced: [
        {
          container_id: id,
          name: `container-${id}`,
          image: 'api:2',
          status: 'started',
          replacement_id: expect.any(String),
          replacement_node_id: a.nodeId,
        },
      ],
    });
    const replacement = res.body.replaced[0].replacement_id as string;
    expect(a.containers.get(replacement)?.state).toBe('running');
    await eventually(async () =>
      expect((await problems()).some((p) => p.node_id === a.nodeId && p.type === 'container_exited')).toBe(
        false,
      ),
    );
    // Nothing exited any more: nothing to do.
    const none = await api('POST', '/api/maintenance/quick-fix', {
      node_id: 'agx0',
      fix_type: 'restart_exited',
    });
    expect(none.body).toEqual({
      node_id: a.nodeId,
      fix_type: 'restart_exited',
      status: 'completed',
      replaced: [],
    });
  });

  it('quick-fix refuses unknown nodes (404), unknown fixes (400) and offline nodes (409)', async () => {
    const unknown = await api('POST', '/api/maintenance/quick-fix', {
      node_id: 'nope',
      fix_type: 'docker_cleanup',
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ detail: 'Node nope not found' });
    const badFix = await api('POST', '/api/maintenance/quick-fix', { node_id: 'agx0', fix_type: 'reboot' });
    expect(badFix.status).toBe(400);
    expect(badFix.body.detail[0]).toMatchObject({ loc: ['body', 'fix_type'], type: expect.any(String) });
    const missing = await api('POST', '/api/maintenance/quick-fix', { fix_type: 'docker_cleanup' });
    expect(missing.status).toBe(400);
    expect(missing.body.detail[0].loc).toEqual(['body', 'node_id']);
    const offline = await api('POST', '/api/maintenance/quick-fix', {
      node_id: 'agx2',
      fix_type: 'docker_cleanup',
    });
    expect(offline.status).toBe(409);
    expect(offline.body.detail).toMatch(/^Node agx2 is offline/);
  });

  it('run-now detects and fixes; a second run while one runs is 409; the stored last run shows in status', async () => {
    // Prepare: the slow node needs a cleanup it will never answer, so the run waits COMMAND_WAIT_MS.
    slow.metrics = { diskUsedGb: 82, diskTotalGb: 100 };
    await eventually(async () =>
      expect((await problems()).some((p) => p.node_id === slow.nodeId && p.type === 'disk_space')).toBe(true),
    );
    const prunesBefore = commandsOf(b, 'engine.prune').length;
    // Act
    const running = api('POST', '/api/maintenance/run-now');
    await eventually(
      async () => expect((await api('GET', '/api/maintenance/status')).body.running).toBe(true),
      2000,
      50,
    );
    const second = await api('POST', '/api/maintenance/run-now');
    const run = await running;
    // Assess
    expect(second.status).toBe(409);
    expect(second.body.detail).toMatch(/^A maintenance run is already in progress/);
    expect(run.status, JSON.stringify(run.body)).toBe(200);
    expect(run.body).toMatchObject({ run_id: expect.any(String), trigger: 'manual' });
    expect(run.body.problems.map((p: Problem) => p.type)).toContain('node_offline');
    const fixes = run.body.fixes as {
      node_id: string;
      fix_type: string;
      status: string;
      pending_commands?: string[];
    }[];
    expect(fixes.map((f) => [f.node_id, f.fix_type, f.status]).sort()).toEqual(
      [
        [a.nodeId, 'docker_cleanup', 'completed'],
        [b.nodeId, 'docker_cleanup', 'completed'],
        [slow.nodeId, 'docker_cleanup', 'pending'],
      ].sort(),
    );
    expect(fixes.find((f) => f.node_id === slow.nodeId)!.pending_commands).toHaveLength(1);
    expect(commandsOf(b, 'engine.prune')).toHaveLength(prunesBefore + 1);
    const status = (await api('GET', '/api/maintenance/status')).body;
    expect(status).toMatchObject({ running: false, last_run: run.body.started_at });
  });

  it('the scheduled event runs only while maintenance is started', async () => {
    const before = (await api('GET', '/api/maintenance/status')).body.last_run as string;
    await emit(rt.ctx, { type: 'maintenance.run' });
    await new Promise((r) => setTimeout(r, 1500));
    expect((await api('GET', '/api/maintenance/status')).body.last_run).toBe(before);
    await api('POST', '/api/maintenance/start');
    await emit(rt.ctx, { type: 'maintenance.run' });
    // It waits COMMAND_WAIT_MS for the slow node's cleanup.
    await eventually(
      async () => expect((await api('GET', '/api/maintenance/status')).body.last_run > before).toBe(true),
      10_000,
    );
    await api('POST', '/api/maintenance/stop');
  });

  it('disk audit: one node, every online node (202 with what is done when one is late), 404 and 409', async () => {
    const one = await api('POST', '/api/maintenance/disk/audit', { node_id: 'agx0' });
    expect(one.status, JSON.stringify(one.body)).toBe(200);
    expect(one.body).toEqual({
      nodes: [
        {
          node_id: a.nodeId,
          name: 'agx0',
          command_id: expect.any(String),
          status: 'completed',
          filesystems: [
            {
              role: 'engine_root',
              path: '/var/lib/docker',
              total_bytes: 100e9,
              used_bytes: 30e9,
              free_bytes: 70e9,
              used_percent: 30,
            },
            {
              role: 'state_dir',
              path: '/home/op/.fleet-agent',
              total_bytes: null,
              used_bytes: null,
              free_bytes: null,
              used_percent: null,
              error: 'cannot read it from the agent: EACCES',
            },
          ],
          engine: {
            name: 'docker',
            root_dir: '/var/lib/docker',
            layers_size_bytes: 5e9,
            images: { count: 3, size_bytes: 5e9, reclaimable_bytes: 1e9 },
            containers: { count: expect.any(Number), size_bytes: 1e6, reclaimable_bytes: 0 },
            volumes: { count: 0, size_bytes: 0 },
            build_cache_bytes: 0,
          },
        },
      ],
    });

    // No body: every online node; the slow one has not answered when the wait ends.
    const all = await call(rt.url, 'POST', '/api/maintenance/disk/audit');
    expect(all.status).toBe(202);
    expect(all.body.status).toBe('pending');
    const byNode = new Map(
      (all.body.nodes as { node_id: string; status: string; command_id: string }[]).map((n) => [
        n.node_id,
        n,
      ]),
    );
    expect([...byNode.keys()].sort()).toEqual([a.nodeId, b.nodeId, slow.nodeId].sort());
    expect(byNode.get(a.nodeId)!.status).toBe('completed');
    expect(byNode.get(b.nodeId)!.status).toBe('completed');
    expect(byNode.get(slow.nodeId)!.status).toBe('pending');
    expect(all.body.pending_commands).toEqual([byNode.get(slow.nodeId)!.command_id]);
    expect((await api('GET', `/commands/${all.body.pending_commands[0]}`)).body).toMatchObject({
      type: 'disk.audit',
      status: 'pending',
    });

    expect((await api('POST', '/api/maintenance/disk/audit', { node_id: 'nope' })).status).toBe(404);
    const offline = await api('POST', '/api/maintenance/disk/audit', { node_id: gone.nodeId });
    expect(offline.status).toBe(409);
    expect(offline.body.detail).toMatch(/^Node agx2 is offline/);
    expect((await api('POST', '/api/maintenance/disk/audit', { node_id: '' })).status).toBe(400);
  });

  it('exec-node runs the command through the agent, for real, and answers as documented', async () => {
    const marker = `out-${Date.now()}`;
    rt.ctx.logger.setLogLevel('DEBUG');
    const lines: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((chunk: unknown) => (
      lines.push(String(chunk)),
      true
    )) as typeof process.stdout.write;
    let res;
    try {
      res = await api('POST', '/api/ssh/exec-node', {
        node_id: 'agx0',
        command: `echo ${marker}; echo oops >&2; exit 3`,
      });
    } finally {
      process.stdout.write = write;
      rt.ctx.logger.setLogLevel('SILENT');
    }
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({
      node_id: a.nodeId,
      host: '192.168.1.182',
      stdout: `${marker}\n`,
      stderr: 'oops\n',
      exit_status: 3,
    });
    const exec = commandsOf(a, 'host.exec').at(-1)!;
    expect(exec.command).toEqual({
      type: 'host.exec',
      command: `echo ${marker}; echo oops >&2; exit 3`,
      timeoutSeconds: 30,
    });
    // The request was logged; the command's output never was.
    expect(lines.some((l) => l.includes('/api/ssh/exec-node'))).toBe(true);
    expect(lines.join('\n')).not.toContain(marker);
  });

  it('exec-node: refused without --allow-exec (403), killed at its timeout (504), 202 when the agent is late', async () => {
    const refused = await api('POST', '/api/ssh/exec-node', { node_id: 'agx1', command: 'id' });
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({
      detail:
        'Remote execution is disabled on node agx1: restart its agent with --allow-exec (or FLEET_ALLOW_EXEC=true) to allow it',
    });

    const started = Date.now();
    const slowCommand = await api('POST', '/api/ssh/exec-node', {
      node_id: a.nodeId,
      command: 'echo before; sleep 30; echo after',
      timeout: 1,
    });
    expect(slowCommand.status).toBe(504);
    expect(Date.now() - started).toBeLessThan(10_000);
    const commandId = /GET \/commands\/(\S+)$/.exec(slowCommand.body.detail as string)![1]!;
    expect(slowCommand.body.detail).toBe(
      `The command timed out after 1 s on agx0 and was killed; its output so far: GET /commands/${commandId}`,
    );
    expect((await api('GET', `/commands/${commandId}`)).body).toMatchObject({
      type: 'host.exec',
      status: 'succeeded',
      output: { stdout: 'before\n', timedOut: true, signal: 'SIGKILL' },
    });

    const late = await api('POST', '/api/ssh/exec-node', { node_id: 'agx3', command: 'uptime' });
    expect(late.status).toBe(202);
    expect(late.body).toEqual({
      status: 'pending',
      pending_commands: [expect.any(String)],
      node_id: slow.nodeId,
      host: '192.168.1.185',
    });
  });

  it('exec-node: unknown node 404, offline node 409, invalid bodies 400', async () => {
    const unknown = await api('POST', '/api/ssh/exec-node', { node_id: 'nope', command: 'ls' });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ detail: 'Node nope not found' });
    const offline = await api('POST', '/api/ssh/exec-node', { node_id: 'agx2', command: 'ls' });
    expect(offline.status).toBe(409);
    expect(offline.body.detail).toMatch(
      /^Node agx2 is offline \(last heartbeat .+\): its agent cannot run the command$/,
    );
    const cases: [unknown, string[]][] = [
      [{ node_id: 'agx0' }, ['body', 'command']],
      [{ node_id: 'agx0', command: '   ' }, ['body', 'command']],
      [{ node_id: 'agx0', command: 'ls', timeout: 121 }, ['body', 'timeout']],
      [{ node_id: 'agx0', command: 'ls', timeout: 0 }, ['body', 'timeout']],
      [{ command: 'ls' }, ['body', 'node_id']],
    ];
    const sent = commandsOf(a, 'host.exec').length;
    for (const [body, loc] of cases) {
      const res = await api('POST', '/api/ssh/exec-node', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.detail[0].loc).toEqual(loc);
    }
    expect(commandsOf(a, 'host.exec')).toHaveLength(sent);
  });
});
