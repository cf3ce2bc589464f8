import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetClusterKeys } from '../../../functions/core/keys.js';
import { secretName } from '../../../functions/commander/vault.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { describeWith, emulatorDeployment, requireMoto, uniqueName } from '../../harness/services.js';
import { call, ScriptedAgent } from '../../harness/scripted-agent.js';

const quiet = { ...process.env, LOG_LEVEL: 'SILENT', NODE_OFFLINE_AFTER_SECONDS: '2' };

describe('Fleet Commander clusters (embedded runtime)', () => {
  let rt: Runtime;
  const agents: ScriptedAgent[] = [];
  beforeAll(async () => {
    rt = await startRuntime({ port: 0, env: { ...quiet, AWS_ENDPOINT_URL: undefined } });
    for (const name of ['agx0', 'agx1', 'agx2']) {
      const a = new ScriptedAgent(rt.url, name);
      await a.register();
      await a.heartbeat();
      agents.push(a);
    }
  });
  afterAll(async () => {
    await rt?.stop();
  });
  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);

  it('creates a cluster of named nodes, lists it and reports each member live', async () => {
    // Act
    const created = await api('POST', '/api/clusters/', {
      name: 'vision',
      cluster_type: 'swarm',
      node_ids: ['agx0', 'agx1', agents[2]!.nodeId],
      manager_node_id: 'agx0',
    });
    // Assess
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.any(String),
      name: 'vision',
      cluster_type: 'swarm',
      node_ids: ['agx0', 'agx1', 'agx2'],
      manager_node_id: 'agx0',
      status: 'active',
      created_at: expect.any(String),
    });
    const listed = await api('GET', '/api/clusters/');
    expect(listed.body).toEqual([created.body]);
    const status = await api('GET', `/api/clusters/${created.body.id}/status`);
    expect(status.status).toBe(200);
    expect(status.body.online_count).toBe(3);
    expect(status.body.total_count).toBe(3);
    expect(status.body.nodes).toEqual(
      ['agx0', 'agx1', 'agx2'].map((node_id) => ({
        node_id,
        status: 'online',
        cpu: expect.any(Number),
        memory: expect.any(Number),
        gpu: expect.any(Number),
        is_manager: node_id === 'agx0',
      })),
    );
    // /api/nodes/ shows the cluster a node was put in here.
    const nodes = (await api('GET', '/api/nodes/')).body.nodes as { name: string; cluster: string | null }[];
    expect(
      nodes
        .filter((n) => ['agx0', 'agx1', 'agx2'].includes(n.name))
        .map((n) => [n.name, n.cluster])
        .sort(),
    ).toEqual([
      ['agx0', 'vision'],
      ['agx1', 'vision'],
      ['agx2', 'vision'],
    ]);
  });

  it('refuses bad input with 400 or 409 and changes nothing', async () => {
    const before = (await api('GET', '/api/clusters/')).body;
    const unknownNode = await api('POST', '/api/clusters/', { name: 'c2', node_ids: ['agx0', 'nope'] });
    expect(unknownNode.status).toBe(400);
    expect(unknownNode.body.detail[0]).toMatchObject({ loc: ['body', 'node_ids', 1], type: 'value_error' });
    const foreignManager = await api('POST', '/api/clusters/', {
      name: 'c3',
      node_ids: ['agx0'],
      manager_node_id: 'agx1',
    });
    expect(foreignManager.status).toBe(400);
    const badType = await api('POST', '/api/clusters/', { name: 'c4', cluster_type: 'mesh' });
    expect(badType.status).toBe(400);
    const duplicate = await api('POST', '/api/clusters/', { name: 'vision' });
    expect(duplicate.status).toBe(409);
    expect(typeof duplicate.body.detail).toBe('string');
    expect((await api('GET', '/api/clusters/')).body).toEqual(before);
    expect((await api('GET', '/api/clusters/missing/status')).status).toBe(404);
  });

  it('adds and removes members; a removed manager hands over; an offline member degrades the cluster', async () => {
    // Prepare
    const c = (await api('POST', '/api/clusters/', { name: 'edge', node_ids: ['agx1'] })).body;
    expect(c.manager_node_id).toBe('agx1');
    // Act
    const added = await api('POST', `/api/clusters/${c.id}/nodes/agx2`);
    const again = await api('POST', `/api/clusters/${c.id}/nodes/agx2`);
    const removed = await api('DELETE', `/api/clusters/${c.id}/nodes/agx1`);
    const notMember = await api('DELETE', `/api/clusters/${c.id}/nodes/agx0`);
    const unknown = await api('POST', `/api/clusters/${c.id}/nodes/ghost`);
    // Assess
    expect(added.body.node_ids).toEqual(['agx1', 'agx2']);
    expect(again.body.node_ids).toEqual(['agx1', 'agx2']);
    expect(removed.body).toMatchObject({ node_ids: ['agx2'], manager_node_id: 'agx2' });
    expect(notMember.status).toBe(404);
    expect(unknown.status).toBe(404);
    // agx2 stays silent past NODE_OFFLINE_AFTER_SECONDS while the others beat.
    await api('POST', `/api/clusters/${c.id}/nodes/agx0`);
    await new Promise((r) => setTimeout(r, 2500));
    await agents[0]!.heartbeat();
    const status = await api('GET', `/api/clusters/${c.id}/status`);
    expect(status.body.cluster.status).toBe('degraded');
    expect(status.body.online_count).toBe(1);
    expect(status.body.nodes.find((n: { node_id: string }) => n.node_id === 'agx2').status).toBe('offline');
  });

  it('deletes a cluster, frees its name and leaves its nodes in the fleet', async () => {
    const c = (await api('POST', '/api/clusters/', { name: 'temp', node_ids: ['agx0'] })).body;
    const deleted = await api('DELETE', `/api/clusters/${c.id}?cleanup_swarm=true`);
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({ status: 'deleted', id: c.id, name: 'temp' });
    expect((await api('GET', `/api/clusters/${c.id}/status`)).status).toBe(404);
    expect((await api('DELETE', `/api/clusters/${c.id}`)).status).toBe(404);
    expect((await api('DELETE', `/api/clusters/${c.id}?cleanup_swarm=maybe`)).status).toBe(400);
    expect((await api('POST', '/api/clusters/', { name: 'temp' })).status).toBe(201);
    const nodes = (await api('GET', '/api/nodes/')).body.nodes as { name: string }[];
    expect(nodes.map((n) => n.name)).toEqual(expect.arrayContaining(['agx0', 'agx1', 'agx2']));
  });

  it('takes over a name guard whose cluster was never written (a crash between the writes)', async () => {
    const guard = fleetClusterKeys.clusterName('orphaned');
    await rt.ctx.store.put({ ...guard, clusterId: 'never-written' }, { notExists: true });
    const created = await api('POST', '/api/clusters/', { name: 'orphaned' });
    expect(created.status).toBe(201);
    expect((await api('POST', '/api/clusters/', { name: 'orphaned' })).status).toBe(409);
  });
});

/** The vault over both secret stores: the embedded secrets file and SSM SecureString on moto. */
const modes = [
  { name: 'embedded', moto: false, status: { available: true, reason: '' } },
  { name: 'moto (SSM)', moto: true, status: requireMoto() },
];

describe.each(modes)('Fleet Commander vault: $name', (mode) => {
  describeWith(mode.status, 'vault credentials', () => {
    let rt: Runtime;
    let dataDir: string;
    let logs = '';
    const write = process.stdout.write.bind(process.stdout);
    const secret = `pw-${uniqueName('s')}`;
    beforeAll(async () => {
      dataDir = await mkdtemp(join(tmpdir(), 'vault-'));
      const id = uniqueName('vault');
      const env: Record<string, string | undefined> = {
        ...quiet,
        LOG_LEVEL: 'DEBUG',
        AWS_ENDPOINT_URL: undefined,
      };
      if (mode.moto) Object.assign(env, emulatorDeployment(id));
      // Capture what the runtime logs (JSON lines on stdout), to prove the password never appears there.
      process.stdout.write = ((chunk: string | Uint8Array) => {
        logs += chunk.toString();
        return true;
      }) as typeof process.stdout.write;
      rt = await startRuntime({ port: 0, dataDir, env });
    });
    afterAll(async () => {
      process.stdout.write = write;
      await rt?.stop();
      await rm(dataDir, { recursive: true, force: true });
    });
    const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);

    it('saves, lists without the password, replaces by name and deletes; the password only in the secret store', async () => {
      // Act
      const saved = await api('POST', '/api/vault/', {
        name: 'jetson-default',
        username: 'nvidia',
        password: secret,
      });
      const replaced = await api('POST', '/api/vault/', {
        name: 'jetson-default',
        username: 'ubuntu',
        password: `${secret}-2`,
      });
      const listed = await api('GET', '/api/vault/');
      // Assess
      expect(saved.status).toBe(201);
      expect(saved.body).toEqual({
        id: expect.any(String),
        name: 'jetson-default',
        username: 'nvidia',
        created_at: expect.any(String),
      });
      expect(replaced.status).toBe(200);
      expect(replaced.body).toMatchObject({ id: saved.body.id, username: 'ubuntu' });
      expect(listed.body).toEqual([{ ...saved.body, username: 'ubuntu' }]);
      expect(await rt.ctx.secrets.get(secretName(saved.body.id))).toBe(`${secret}-2`);
      const stored = await rt.ctx.store.get(fleetClusterKeys.credential('jetson-default').pk, 'META');
      expect(JSON.stringify(stored)).not.toContain(secret);
      for (const res of [saved, replaced, listed]) expect(JSON.stringify(res.body)).not.toContain(secret);

      const deleted = await api('DELETE', `/api/vault/${saved.body.id}`);
      expect(deleted.status).toBe(200);
      expect(deleted.body).toEqual({ status: 'deleted', id: saved.body.id, name: 'jetson-default' });
      expect(await rt.ctx.secrets.get(secretName(saved.body.id))).toBeUndefined();
      expect((await api('GET', '/api/vault/')).body).toEqual([]);
      expect((await api('DELETE', `/api/vault/${saved.body.id}`)).status).toBe(404);
      expect(logs).toContain('/api/vault/');
      expect(logs).not.toContain(secret);
      if (!mode.moto) {
        const file = await readFile(join(dataDir, 'secrets.json'), 'utf8').catch(() => '');
        expect(file).not.toContain(secret); // deleted
      }
    });

    it('refuses bad input with 400 and stores nothing', async () => {
      for (const body of [
        { name: 'x', username: 'u' },
        { name: '', username: 'u', password: 'p' },
        { name: '../etc', username: 'u', password: 'p' },
        { name: 'x', username: 'u', password: 'p', extra: true },
      ]) {
        const res = await api('POST', '/api/vault/', body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(Array.isArray(res.body.detail)).toBe(true);
      }
      expect((await api('GET', '/api/vault/')).body).toEqual([]);
    });
  });
});
