import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryAll } from '../../../functions/ports/store.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call, eventually, ScriptedAgent } from '../../harness/scripted-agent.js';

const env = {
  ...process.env,
  LOG_LEVEL: 'SILENT',
  AWS_ENDPOINT_URL: undefined,
  NODE_OFFLINE_AFTER_SECONDS: '2',
  COMMAND_WAIT_MS: '5000',
  // A dead copy's replacement waits out its restart backoff (10 s by default).
  RESTART_BACKOFF_SECONDS: '1',
};

const SDXL = '192.168.1.214:5000/sdxl-trt:r35.3.1';
const enc = encodeURIComponent;

describe('orchestrator containers over a fleet of agents (embedded runtime)', () => {
  let rt: Runtime;
  let agent: ScriptedAgent;
  beforeAll(async () => {
    rt = await startRuntime({ port: 0, env });
    agent = new ScriptedAgent(rt.url, 'gpu1', {
      cpuCount: 8,
      memoryMb: 16_384,
      gpus: 1,
      address: '10.0.0.7',
    });
    await agent.register();
    await agent.heartbeat();
    agent.start(300);
  });
  afterAll(async () => {
    await agent?.stop();
    await rt?.stop();
  });

  const get = (path: string) => call(rt.url, 'GET', path);
  const starts = (imageId: string) =>
    agent.seen.filter((e) => e.command.type === 'container.start' && e.command.spec.imageId === imageId);

  it('POST /containers/{imageId}/start sends start commands to the node and answers once the agent reports', async () => {
    // Act
    const res = await call(rt.url, 'POST', '/containers/nginx:alpine/start', {
      count: 2,
      resources: { cpu_limit: '0.5', memory_limit: '512m', disk_limit: '10g' },
      ports: [80],
    });
    // Assess
    expect(res.status).toBe(200);
    expect(res.body.started).toHaveLength(2);
    const sent = starts('nginx:alpine');
    expect(sent).toHaveLength(2);
    expect(sent[0]!.nodeId).toBe(agent.nodeId);
    expect(sent[0]!.command).toMatchObject({
      type: 'container.start',
      spec: {
        imageId: 'nginx:alpine',
        kind: 'service',
        cpuLimit: 0.5,
        memoryLimitMb: 512,
        diskLimitGb: 10,
        ports: [{ containerPort: 80, hostPort: 0, protocol: 'tcp' }],
        restart: 'no',
      },
    });
    expect(sent.map((e) => (e.command as { spec: { instanceId: string } }).spec.instanceId).sort()).toEqual(
      [...res.body.started].sort(),
    );

    const containers = (await get('/containers')).body;
    const mine = containers.containers.filter((c: { image: string }) => c.image === 'nginx:alpine');
    expect(mine).toHaveLength(2);
    expect(mine[0]).toMatchObject({
      status: 'running',
      resources: { cpu_limit: '0.5', memory_limit: '512m', disk_limit: '10g' },
    });
    expect(Object.keys(mine[0].ports)).toEqual(['80/tcp']);
    expect(mine[0].name).toBe(`container-${mine[0].id}`);
    expect(containers.total).toBe(containers.containers.length);

    const images = (await get('/images')).body.images;
    expect(images).toContainEqual({
      image: 'nginx:alpine',
      desired_count: 2,
      current_running: 2,
      total_instances: 2,
      resources: { cpu_limit: '0.5', memory_limit: '512m', disk_limit: '10g' },
    });

    const instances = (await get('/containers/nginx:alpine/instances')).body.instances;
    expect(instances).toHaveLength(2);
    expect(instances[0].endpoint).toMatch(/^http:\/\/10\.0\.0\.7:\d+$/);
    expect(instances[0]).toMatchObject({ status: 'running', resources: { cpu_limit: '0.5' } });

    // Published ports registered themselves.
    const endpoints = (await get(`/registry/endpoints?image_id=${enc('nginx:alpine')}`)).body.endpoints;
    expect(endpoints).toHaveLength(2);
    expect(endpoints[0]).toMatchObject({
      image_id: 'nginx:alpine',
      host: '10.0.0.7',
      status: 'UP',
      caps: { cpu: '0.5', mem: '512m' },
    });

    // Health from the agent's stats (cpu 10 %, memory 20 %).
    await agent.heartbeat();
    const health = await get(`/containers/instances/${res.body.started[0]}/health`);
    expect(health.body).toEqual({
      cpu_usage: 10,
      memory_usage: 20,
      disk_usage: 0,
      status: 'healthy',
      errors: null,
    });
  });

  it('reports warning and critical health from usage thresholds', async () => {
    const res = await call(rt.url, 'POST', '/containers/busybox:hot/start', { count: 1 });
    const id = res.body.started[0] as string;
    const c = agent.containers.get(id)!;
    Object.assign(c, { cpu: 80, mem: 20 });
    await agent.heartbeat();
    expect((await get(`/containers/instances/${id}/health`)).body).toMatchObject({
      status: 'warning',
      errors: ['High CPU usage: 80%'],
    });
    Object.assign(c, { cpu: 10, mem: 95 });
    await agent.heartbeat();
    expect((await get(`/containers/instances/${id}/health`)).body).toMatchObject({
      status: 'critical',
      memory_usage: 95,
    });
    expect((await get('/containers/instances/nope/health')).status).toBe(404);
  });

  it('accepts image ids with a registry, a port and a path, raw and percent-encoded', async () => {
    const res = await call(rt.url, 'POST', `/containers/${enc(SDXL)}/start`, {
      count: 1,
      resources: { gpus: 1, memory_limit: '2g' },
    });
    expect(res.status).toBe(200);
    expect(starts(SDXL)).toHaveLength(1);
    expect(starts(SDXL)[0]!.command).toMatchObject({ spec: { imageId: SDXL, gpus: 1, memoryLimitMb: 2048 } });
    const raw = await get(`/containers/${SDXL}/instances`);
    const encoded = await get(`/containers/${enc(SDXL)}/instances`);
    expect(raw.status).toBe(200);
    expect(raw.body.instances).toHaveLength(1);
    expect(encoded.body).toEqual(raw.body);
    const again = await call(rt.url, 'POST', `/containers/${SDXL}/start`, {
      count: 1,
      resources: { gpus: 1 },
    });
    // One GPU on the only node, and it is taken.
    expect(again.status).toBe(409);
    expect(again.body.detail).toMatch(/no online node has enough free resources/);
    const updated = await call(rt.url, 'PUT', `/containers/${SDXL}/resources`, { memory_limit: '4g' });
    expect(updated.status).toBe(200);
    expect(updated.body.updated).toEqual([raw.body.instances[0].id]);
    const update = agent.seen.find((e) => e.command.type === 'container.update');
    expect(update?.command).toMatchObject({ instanceId: raw.body.instances[0].id, memoryLimitMb: 4096 });
    const img = ((await get('/images')).body.images as { image: string; resources: unknown }[]).find(
      (i) => i.image === SDXL,
    );
    expect(img?.resources).toEqual({ memory_limit: '4g', gpus: 1 });
  });

  it('rejects invalid requests with 422 (loc/msg/type) and changes nothing', async () => {
    const before = {
      images: (await get('/images')).body,
      commands: agent.seen.length,
      containers: (await get('/containers')).body.total,
    };
    const cases: [string, string, unknown, string[]][] = [
      ['POST', '/containers/web:1/start', { count: 0 }, ['body', 'count']],
      ['POST', '/containers/web:1/start', { count: 101 }, ['body', 'count']],
      [
        'POST',
        '/containers/web:1/start',
        { count: 1, resources: { memory_limit: '12xb' } },
        ['body', 'resources', 'memory_limit'],
      ],
      [
        'POST',
        '/containers/web:1/start',
        { count: 1, resources: { cpu_limit: 'half' } },
        ['body', 'resources', 'cpu_limit'],
      ],
      ['POST', '/containers/web:1/start', { count: 1, ports: [70000] }, ['body', 'ports', '0']],
      ['POST', '/containers/web:1/start', { count: 1, node_id: 'no-such-node' }, ['body', 'node_id']],
      [
        'POST',
        '/start/container',
        { count: 1, resources: { memory_limit: '512m' } },
        ['body', 'resources', 'image'],
      ],
      [
        'POST',
        '/start/container',
        { count: 1, resources: { image: 'web:1', memory_limit: '12xb' } },
        ['body', 'resources', 'memory_limit'],
      ],
      ['PUT', '/containers/nginx:alpine/resources', { memory_limit: '12xb' }, ['body', 'memory_limit']],
      ['PUT', '/containers/nginx:alpine/resources', {}, ['body']],
      ['POST', '/registry/endpoints', { id: 'e', image_id: 'web:1', host: 'h', port: 0 }, ['body', 'port']],
      [
        'POST',
        '/registry/endpoints',
        { id: 'e', image_id: 'web:1', host: 'h', port: 65536 },
        ['body', 'port'],
      ],
      [
        'POST',
        '/registry/endpoints',
        { id: 'e', image_id: 'web:1', host: 'h', port: 80, caps: { mem: '12xb' } },
        ['body', 'caps', 'mem'],
      ],
      ['GET', '/system/resources?node_id=no-such-node', undefined, ['query', 'node_id']],
      ['DELETE', '/containers/whatever?force=maybe', undefined, ['query', 'force']],
    ];
    for (const [method, path, body, loc] of cases) {
      const res = await call(rt.url, method, path, body);
      expect(res.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(422);
      const detail = res.body.detail as { loc: (string | number)[]; msg: string; type: string }[];
      expect(detail[0]!.loc.map(String)).toEqual(loc);
      expect(typeof detail[0]!.msg).toBe('string');
      expect(typeof detail[0]!.type).toBe('string');
    }
    expect((await get('/images')).body).toEqual(before.images);
    expect((await get('/containers')).body.total).toBe(before.containers);
    expect((await get('/registry/endpoints?image_id=web:1')).body.endpoints).toEqual([]);
    await new Promise((r) => setTimeout(r, 300));
    expect(agent.seen.length).toBe(before.commands);
  });

  it('POST /start/container creates once, then reuses', async () => {
    const body = {
      count: 1,
      resources: { image: 'redis:7', memory_limit: '256m', cpu_limit: '0.25' },
      ports: [6379],
    };
    const created = await call(rt.url, 'POST', '/start/container', body);
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ ok: true, action: 'created', image: 'redis:7', status: 'running' });
    expect(created.body.name).toBe(`container-${created.body.container_id}`);
    expect(Object.keys(created.body.ports)).toEqual(['6379/tcp']);
    const reused = await call(rt.url, 'POST', '/start/container', body);
    expect(reused.body).toMatchObject({
      ok: true,
      action: 'reused',
      container_id: created.body.container_id,
      status: 'running',
    });
    expect(starts('redis:7')).toHaveLength(1);
  });

  it('stops one instance: one copy fewer wanted, no replacement, its endpoint DOWN', async () => {
    const res = await call(rt.url, 'POST', '/containers/stopme:1/start', { count: 2, ports: [8080] });
    const [victim, keeper] = res.body.started as string[];
    const notFound = await call(rt.url, 'POST', '/containers/stopme:1/stop', { instanceId: 'nope' });
    expect(notFound.status).toBe(404);
    const wrongImage = await call(rt.url, 'POST', '/containers/nginx:alpine/stop', { instanceId: victim });
    expect(wrongImage.status).toBe(404);

    const stopped = await call(rt.url, 'POST', '/containers/stopme:1/stop', { instanceId: victim });
    expect(stopped).toEqual({ status: 200, body: { stopped: true } });
    expect(
      agent.seen.some((e) => e.command.type === 'container.stop' && e.command.instanceId === victim),
    ).toBe(true);
    const img = ((await get('/images')).body.images as { image: string }[]).find(
      (i) => i.image === 'stopme:1',
    );
    expect(img).toMatchObject({ desired_count: 1, current_running: 1, total_instances: 2 });
    expect((await get(`/containers/instances/${victim}/health`)).body).toMatchObject({ status: 'stopped' });
    const eps = (await get('/registry/endpoints?image_id=stopme:1')).body.endpoints as {
      id: string;
      status: string;
    }[];
    expect(eps.find((e) => e.id.startsWith(victim!))?.status).toBe('DOWN');
    expect(eps.find((e) => e.id.startsWith(keeper!))?.status).toBe('UP');
    // A full reconcile afterwards does not bring it back.
    await new Promise((r) => setTimeout(r, 500));
    expect(starts('stopme:1')).toHaveLength(2);
    expect((await call(rt.url, 'POST', '/containers/stopme:1/stop', { instanceId: victim })).body).toEqual({
      stopped: true,
    });
  });

  it('deletes by id or name: 409 while running without force, then gone', async () => {
    const res = await call(rt.url, 'POST', '/containers/deleteme:1/start', { count: 2 });
    const [a, b] = res.body.started as string[];
    const refused = await call(rt.url, 'DELETE', `/containers/${a}`);
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toMatch(/running/);
    expect(
      ((await get('/images')).body.images as { image: string }[]).find((i) => i.image === 'deleteme:1'),
    ).toMatchObject({ desired_count: 2 });

    const forced = await call(rt.url, 'DELETE', `/containers/${a}?force=true`);
    expect(forced).toEqual({ status: 200, body: { deleted: true, container_id: a, name: `container-${a}` } });
    expect(agent.containers.has(a!)).toBe(false);
    expect((await call(rt.url, 'DELETE', `/containers/${a}`)).status).toBe(404);

    // Stopped first, then deleted by name without force; by the engine's container id works too.
    await call(rt.url, 'POST', '/containers/deleteme:1/stop', { instanceId: b });
    const byName = await call(rt.url, 'DELETE', `/containers/container-${b}`);
    expect(byName.body).toEqual({ deleted: true, container_id: b, name: `container-${b}` });
    const img = ((await get('/images')).body.images as { image: string }[]).find(
      (i) => i.image === 'deleteme:1',
    );
    expect(img).toMatchObject({ desired_count: 0, current_running: 0, total_instances: 0 });
    expect(
      (await get('/containers')).body.containers.some((c: { id: string }) => c.id === a || c.id === b),
    ).toBe(false);

    // StartBody is optional altogether.
    const third = (await call(rt.url, 'POST', '/containers/deleteme:1/start')).body.started[0] as string;
    const engineId = agent.containers.get(third)!.containerId;
    expect((await call(rt.url, 'DELETE', `/containers/${engineId.slice(0, 12)}?force=1`)).body).toMatchObject(
      { deleted: true, container_id: third },
    );
  });

  it('replaces a copy whose container died, and marks its endpoint DOWN', async () => {
    const res = await call(rt.url, 'POST', '/containers/crashy:1/start', { count: 1, ports: [9000] });
    const dead = res.body.started[0] as string;
    const c = agent.containers.get(dead)!;
    Object.assign(c, { state: 'exited', exitCode: 137 });
    const posted = await agent.events([
      {
        type: 'container.exited',
        instanceId: dead,
        kind: 'service',
        exitCode: 137,
        logTail: 'OOMKilled',
        at: new Date().toISOString(),
      },
    ]);
    expect(posted.status).toBe(200);
    const eps = (await get('/registry/endpoints?image_id=crashy:1')).body.endpoints as {
      id: string;
      status: string;
    }[];
    expect(eps.find((e) => e.id.startsWith(dead))?.status).toBe('DOWN');
    // The copy backs off (crash_loop), then a reconcile places a replacement and removes the dead container.
    await eventually(async () =>
      expect(
        ((await get('/containers')).body.containers as { id: string; status: string }[]).find(
          (x) => x.id === dead,
        ),
      ).toMatchObject({
        status: 'backoff',
        backoff: { reason: 'crash_loop', attempt: 1 },
      }),
    );
    await eventually(async () => expect(starts('crashy:1')).toHaveLength(2));
    await eventually(async () => {
      const img = ((await get('/images')).body.images as { image: string }[]).find(
        (i) => i.image === 'crashy:1',
      );
      expect(img).toMatchObject({ desired_count: 1, current_running: 1 });
    });
    await eventually(async () => expect(agent.containers.has(dead)).toBe(false));
    // Gone from the listing once the agent's removal result is in.
    await eventually(async () =>
      expect((await get('/containers/crashy:1/instances')).body.instances).toHaveLength(1),
    );
  });

  it('keeps the registry: register, update, status, delete', async () => {
    const ep = {
      id: 'web-service-1',
      image_id: 'nginx:alpine',
      host: '192.168.1.100',
      port: 80,
      caps: { cpu: '0.5', mem: '256m' },
    };
    const created = await call(rt.url, 'POST', '/registry/endpoints', ep);
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ ...ep, status: 'UP' });
    expect(Date.parse(created.body.last_heartbeat)).not.toBeNaN();
    const moved = await call(rt.url, 'POST', '/registry/endpoints', { ...ep, port: 8080 });
    expect(moved.body.port).toBe(8080);
    const down = await call(rt.url, 'PUT', '/registry/endpoints/web-service-1/status?status=DOWN');
    expect(down.body).toMatchObject({ id: 'web-service-1', status: 'DOWN', port: 8080 });
    const up = await call(rt.url, 'PUT', '/registry/endpoints/web-service-1/status', { status: 'UP' });
    expect(up.body.status).toBe('UP');
    expect(
      (await call(rt.url, 'PUT', '/registry/endpoints/web-service-1/status?status=SIDEWAYS')).status,
    ).toBe(422);
    expect((await call(rt.url, 'PUT', '/registry/endpoints/web-service-1/status')).status).toBe(422);
    expect((await call(rt.url, 'PUT', '/registry/endpoints/nope/status?status=UP')).status).toBe(404);
    expect((await call(rt.url, 'DELETE', '/registry/endpoints/web-service-1')).body).toEqual({ ok: true });
    expect((await call(rt.url, 'DELETE', '/registry/endpoints/web-service-1')).status).toBe(404);
  });

  it('reports fleet health, the integration self-test and resources', async () => {
    const detailed = (await get('/health/detailed')).body;
    expect(detailed.status).toBe('OK');
    expect(Object.keys(detailed.components)).toEqual([
      'docker',
      'database',
      'container_manager',
      'system_resources',
    ]);
    expect(detailed.components.database).toEqual({
      status: 'OK',
      message: expect.stringMatching(/^Connected: DynamoDB table \S+ \(embedded dynalite\)$/),
    });
    expect(detailed.components.container_manager.message).toMatch(/^Managing \d+ containers$/);
    expect(detailed.components.system_resources.cpu_usage).toBe('20.0%');
    const test = (await get('/test/integration')).body;
    expect(test.overall_status).toBe('PASSED');
    expect(test.tests.system_resources).toEqual({ status: 'PASS', message: '8 CPU cores, 16GB RAM' });
    const resources = (await get('/system/resources')).body;
    expect(resources.system).toEqual({
      cpu: { total_cores: 8, current_usage_percent: 20, available_cores: 6.4 },
      memory: { total_gb: 16, available_gb: 12, usage_percent: 25 },
      disk: { total_gb: 100, free_gb: 70, usage_percent: 30 },
    });
    expect(resources.docker.containers_running).toBeGreaterThan(0);
    expect((await get(`/system/resources?node_id=gpu1`)).body.system.cpu.total_cores).toBe(8);
  });

  it('binds to the host address a start names, stops with the asked timeout, and a later start inherits nothing', async () => {
    const image = 'inherit:1';
    const first = await call(rt.url, 'POST', `/containers/${image}/start`, {
      count: 1,
      resources: { cpu_limit: '0.25', memory_limit: '128m' },
      ports: [8080],
      env: { MODE: 'first' },
      host_ip: '0.0.0.0',
    });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(starts(image)[0]!.command).toMatchObject({
      spec: {
        cpuLimit: 0.25,
        memoryLimitMb: 128,
        env: { MODE: 'first' },
        ports: [{ containerPort: 8080, hostPort: 0, protocol: 'tcp', hostIp: '0.0.0.0' }],
      },
    });
    const bad = await call(rt.url, 'POST', `/containers/${image}/start`, { host_ip: 'everywhere' });
    expect(bad.status).toBe(422);
    expect(bad.body.detail[0].loc).toEqual(['body', 'host_ip']);

    const stop = await call(rt.url, 'POST', `/containers/${image}/stop`, {
      instanceId: first.body.started[0],
      timeout: 2,
    });
    expect(stop.status, JSON.stringify(stop.body)).toBe(200);
    const stops = agent.seen.filter(
      (e) => e.command.type === 'container.stop' && e.command.instanceId === first.body.started[0],
    );
    expect(stops.map((e) => (e.command as { timeoutSeconds: number }).timeoutSeconds)).toEqual([2]);
    const tooLong = await call(rt.url, 'POST', `/containers/${image}/stop`, {
      instanceId: first.body.started[0],
      timeout: 601,
    });
    expect(tooLong.status).toBe(422);

    // Nothing wanted any more: the next start is only what it says (no ports, limits, env, address).
    const second = await call(rt.url, 'POST', `/containers/${image}/start`, { count: 1 });
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    const spec = (starts(image).at(-1)!.command as { spec: Record<string, unknown> }).spec;
    expect(spec).toMatchObject({ ports: [], env: {} });
    expect(spec).not.toHaveProperty('cpuLimit');
    expect(spec).not.toHaveProperty('memoryLimitMb');
    const view = (await get('/images')).body.images.find((i: { image: string }) => i.image === image);
    expect(view).toMatchObject({ desired_count: 1, resources: {} });
  });

  it('adds up concurrent starts of the same image', async () => {
    const results = await Promise.all(
      [1, 2, 3].map(() => call(rt.url, 'POST', '/containers/busy:1/start', { count: 1 })),
    );
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(new Set(results.flatMap((r) => r.body.started)).size).toBe(3);
    const img = ((await get('/images')).body.images as { image: string }[]).find((i) => i.image === 'busy:1');
    expect(img).toMatchObject({ desired_count: 3, current_running: 3 });
  });

  it('places each copy once when reconcilers race', async () => {
    const { reconcile } = await import('../../../functions/orchestrator/reconciler.js');
    const { keys } = await import('../../../functions/core/keys.js');
    const at = new Date().toISOString();
    // Prepare: desired state written without placing (what a lost event leaves behind).
    await rt.ctx.store.put({
      ...keys.service('race:1'),
      ...keys.servicesIndex('race:1'),
      imageId: 'race:1',
      desiredCount: 3,
      resources: {},
      ports: [],
      env: {},
      createdAt: at,
      updatedAt: at,
    });
    // Act
    const outcomes = await Promise.all([
      reconcile(rt.ctx),
      reconcile(rt.ctx),
      reconcile(rt.ctx),
      reconcile(rt.ctx),
    ]);
    // Assess
    const placed = outcomes.flatMap((o) => o.placed.filter((p) => p.imageId === 'race:1'));
    expect(placed).toHaveLength(3);
    const slots = await queryAll(rt.ctx.store, keys.service('race:1').pk, { prefix: 'SLOT#' });
    expect(slots).toHaveLength(3);
    await eventually(async () => expect(starts('race:1')).toHaveLength(3));
    await new Promise((r) => setTimeout(r, 300));
    expect(starts('race:1')).toHaveLength(3);
  });
});
