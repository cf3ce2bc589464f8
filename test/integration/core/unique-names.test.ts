import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetClusterKeys, keys, swarmKeys } from '../../../functions/core/keys.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { emulatorDeployment, requireMoto, uniqueName } from '../../harness/services.js';
import { call, ScriptedAgent } from '../../harness/scripted-agent.js';

/**
 * Unique names hold under concurrency: one create of a name wins, every other answers 409, and a
 * create that fails after claiming its name gives the name back. Embedded runtime, real HTTP.
 */
const base = { ...process.env, LOG_LEVEL: 'SILENT', COMMAND_WAIT_MS: '5000' };
const moto = requireMoto();
const modes = [
  { name: 'embedded runtime', skip: false, env: () => ({ ...base, AWS_ENDPOINT_URL: undefined }) },
  // Its own table, queues and secrets path on the shared moto.
  {
    name: 'moto',
    skip: !moto.available,
    env: () => ({ ...base, ...emulatorDeployment(uniqueName('names')) }),
  },
];
const N = 50;

const tally = (statuses: number[]) =>
  statuses.reduce<Record<number, number>>((acc, s) => ({ ...acc, [s]: (acc[s] ?? 0) + 1 }), {});

describe.each(modes)('unique names under concurrent creates ($name)', (mode) => {
  let rt: Runtime;
  let agent: ScriptedAgent;
  beforeAll(async () => {
    if (mode.skip) return;
    rt = await startRuntime({ port: 0, env: mode.env() });
    agent = new ScriptedAgent(rt.url, 'names-node', { cpuCount: 64, memoryMb: 262_144 });
    await agent.register();
    await agent.heartbeat();
    agent.start(200);
  });
  afterAll(async () => {
    await agent?.stop();
    await rt?.stop();
  });
  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);

  it.skipIf(mode.skip)(
    `${N} concurrent creates of one swarm service name, each for its own image: 1 created, ${N - 1} × 409`,
    async () => {
      const answers = await Promise.all(
        Array.from({ length: N }, (_, i) =>
          api('POST', '/api/swarm/services', {
            name: 'one-name',
            image: `registry.local/app-${i}:1`,
            replicas: 1,
          }),
        ),
      );
      expect(tally(answers.map((a) => a.status))).toEqual({ 201: 1, 409: N - 1 });
      for (const a of answers.filter((x) => x.status === 409))
        expect(a.body.detail).toBe('A service named one-name exists');
      const services = (await api('GET', '/api/swarm/services')).body as {
        name: string;
        image: string;
        replicas: number;
      }[];
      const named = services.filter((s) => s.name === 'one-name');
      expect(named).toHaveLength(1);
      // Only the winner's image has a desired count: the losers wrote nothing.
      expect(services.filter((s) => s.image.startsWith('registry.local/app-')).map((s) => s.image)).toEqual([
        named[0]!.image,
      ]);
    },
  );

  it.skipIf(mode.skip)(
    `${N} concurrent creates of one cluster name: 1 created, ${N - 1} × 409, one listed`,
    async () => {
      const answers = await Promise.all(
        Array.from({ length: N }, () =>
          api('POST', '/api/clusters/', { name: 'one-cluster', node_ids: [agent.nodeId] }),
        ),
      );
      expect(tally(answers.map((a) => a.status))).toEqual({ 201: 1, 409: N - 1 });
      const listed = ((await api('GET', '/api/clusters/')).body as { name: string }[]).filter(
        (c) => c.name === 'one-cluster',
      );
      expect(listed).toHaveLength(1);
    },
  );

  it.skipIf(mode.skip)(
    `${N} concurrent creates of one training job name: 1 created, ${N - 1} × 409 DuplicateJobNameError`,
    async () => {
      const answers = await Promise.all(
        Array.from({ length: N }, (_, i) =>
          api('POST', '/jobs', {
            name: 'one-job',
            image: `trainer:${i}`,
            command: ['train'],
            schedule: '0 2 * * *',
            max_retries: 0,
          }),
        ),
      );
      expect(tally(answers.map((a) => a.status))).toEqual({ 201: 1, 409: N - 1 });
      for (const a of answers.filter((x) => x.status === 409))
        expect(a.body.error_type).toBe('DuplicateJobNameError');
      const jobs = (await api('GET', '/jobs?page_size=100')).body.jobs as { name: string }[];
      expect(jobs.filter((j) => j.name === 'one-job')).toHaveLength(1);
    },
  );

  it.skipIf(mode.skip)(
    `${N} concurrent renames of different jobs to one name: exactly one takes it`,
    async () => {
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) {
        const res = await api('POST', '/jobs', {
          name: `rename-${i}`,
          image: 't:1',
          command: ['x'],
          schedule: '0 3 * * *',
          max_retries: 0,
        });
        ids.push(res.body.job_id as string);
      }
      const answers = await Promise.all(
        ids.map((id) => api('PUT', `/jobs/${id}`, { name: 'renamed-target' })),
      );
      expect(tally(answers.map((a) => a.status))).toEqual({ 200: 1, 409: 9 });
      const jobs = (await api('GET', '/jobs?page_size=100')).body.jobs as { name: string }[];
      expect(jobs.filter((j) => j.name === 'renamed-target')).toHaveLength(1);
      // The losers kept their names, still held.
      expect(jobs.filter((j) => j.name.startsWith('rename-'))).toHaveLength(9);
    },
  );

  it.skipIf(mode.skip)(
    `${N} concurrent saves of one vault credential name: 1 created, ${N - 1} updated, one secret`,
    async () => {
      const before = (await rt.ctx.secrets.list()).length;
      const answers = await Promise.all(
        Array.from({ length: N }, (_, i) =>
          api('POST', '/api/vault/', { name: 'one-cred', username: 'root', password: `pw-${i}` }),
        ),
      );
      expect(tally(answers.map((a) => a.status))).toEqual({ 200: N - 1, 201: 1 });
      const creds = ((await api('GET', '/api/vault/')).body as { id: string; name: string }[]).filter(
        (c) => c.name === 'one-cred',
      );
      expect(creds).toHaveLength(1);
      expect(new Set(answers.map((a) => a.body.id))).toEqual(new Set([creds[0]!.id]));
      // The losers' secrets were dropped: one password stored for the name.
      expect((await rt.ctx.secrets.list()).length).toBe(before + 1);
    },
  );

  it.skipIf(mode.skip)('a create that fails after claiming its name gives the name back', async () => {
    expect(
      (await api('POST', '/api/swarm/services', { name: 'fresh-a', image: 'registry.local/fresh:1' })).status,
    ).toBe(201);
    // The image already runs as fresh-a: this create claims fresh-b, fails on the service write, releases it.
    const clash = await api('POST', '/api/swarm/services', {
      name: 'fresh-b',
      image: 'registry.local/fresh:1',
    });
    expect(clash.status).toBe(409);
    expect(clash.body.detail).toMatch(/already runs as fresh-a/);
    const guard = swarmKeys.serviceName('fresh-b');
    expect(await rt.ctx.store.get(guard.pk, guard.sk)).toBeUndefined();
    expect(
      (await api('POST', '/api/swarm/services', { name: 'fresh-b', image: 'registry.local/fresh:2' })).status,
    ).toBe(201);
    const held = swarmKeys.serviceName('fresh-a');
    expect(await rt.ctx.store.get(held.pk, held.sk)).toMatchObject({
      imageId: 'registry.local/fresh:1',
      state: 'bound',
    });
  });

  it.skipIf(mode.skip)(
    'a pending claim holds its name while a create is in flight; past its lease, a name nobody holds is taken over',
    async () => {
      const now = rt.ctx.now();
      for (const [name, claimedAt, expected] of [
        ['in-flight', now, 409],
        ['abandoned', now - 10 * 60_000, 201],
      ] as const) {
        await rt.ctx.store.put({
          ...fleetClusterKeys.clusterName(name),
          clusterId: 'never-written',
          claim: 'c',
          state: 'pending',
          claimedAt,
        });
        await rt.ctx.store.put({
          ...keys.jobName(name),
          jobId: 'train-00000000',
          name,
          claim: 'c',
          state: 'pending',
          claimedAt,
        });
        expect((await api('POST', '/api/clusters/', { name })).status, name).toBe(expected);
        const job = await api('POST', '/jobs', {
          name,
          image: 't:1',
          command: ['x'],
          schedule: '0 4 * * *',
          max_retries: 0,
        });
        expect(job.status, name).toBe(expected);
      }
      // A bound guard whose owner is gone (a delete that died before freeing the name) is taken over at once.
      await rt.ctx.store.put({
        ...fleetClusterKeys.clusterName('deleted'),
        clusterId: 'gone',
        claim: 'c',
        state: 'bound',
        claimedAt: now,
      });
      expect((await api('POST', '/api/clusters/', { name: 'deleted' })).status).toBe(201);
    },
  );
});
