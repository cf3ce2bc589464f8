/**
 * The model residency index (cluster/model-residency.ts): what feeds it (heartbeats whose models
 * changed, setNodeModels, node removal, the one-time indexing of samples from before it) and how
 * its readers treat an offline holder. Embedded runtime, scripted agents beating by hand.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call, eventually, GPU_WORKER, ScriptedAgent } from '../../harness/scripted-agent.js';
import { taskQueueKeys } from '../../../functions/core/keys.js';
import { queryAll } from '../../../functions/ports/store.js';
import type { ResidencyItem } from '../../../functions/cluster/model-residency.js';
import { setNodeModels } from '../../../functions/cluster/workers.js';
import { metricsKey, type MetricsRecord } from '../../../functions/nodes/node-records.js';

const X = 'SDXL_4GB_FP8.safetensors';
const Y = 'RealVisXL_V5_Turbo.safetensors';

describe('the model residency index', () => {
  let rt: Runtime;
  const agents: ScriptedAgent[] = [];
  beforeAll(async () => {
    rt = await startRuntime({
      port: 0,
      env: {
        ...process.env,
        LOG_LEVEL: 'SILENT',
        AWS_ENDPOINT_URL: undefined,
        NODE_OFFLINE_AFTER_SECONDS: '2',
        COMMAND_WAIT_MS: '3000',
      },
    });
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
    await rt?.stop();
  });

  /** A registered agent that beats only when the test says so. */
  async function agent(name: string, models: string[]): Promise<ScriptedAgent> {
    const a = new ScriptedAgent(rt.url, name, { ...GPU_WORKER, models });
    await a.register();
    agents.push(a);
    expect((await a.heartbeat()).status).toBe(200);
    return a;
  }
  /** The index's entries of a model: node id → why. */
  const entries = async (model: string) =>
    Object.fromEntries(
      (await queryAll<ResidencyItem>(rt.ctx.store, taskQueueKeys.modelNodesPk(model))).map((i) => [
        i.nodeId,
        { planned: i.planned === true, reported: i.reported === true, version: i.version },
      ]),
    );
  const beat = async (a: ScriptedAgent, models: string[]) => {
    a.servers.clear();
    for (const m of models) a.servers.set(m, `preloaded-${m}`);
    expect((await a.heartbeat()).status).toBe(200);
  };

  it('a heartbeat whose models changed adds and removes entries; an unchanged one writes none', async () => {
    const a = await agent('res-hb', [X]);
    expect((await entries(X))[a.nodeId]).toMatchObject({ reported: true, planned: false });
    const version = (await entries(X))[a.nodeId]!.version;
    // The same models again: the entry is not rewritten.
    for (let i = 0; i < 3; i++) await beat(a, [X]);
    expect((await entries(X))[a.nodeId]!.version).toBe(version);

    await beat(a, [Y]);
    expect((await entries(X))[a.nodeId]).toBeUndefined();
    expect((await entries(Y))[a.nodeId]).toMatchObject({ reported: true });
    await beat(a, []);
    expect((await entries(Y))[a.nodeId]).toBeUndefined();
  });

  it('setNodeModels adds planned entries and drops them; an entry the heartbeat reports stays', async () => {
    const a = await agent('res-plan', [X]);
    await setNodeModels(rt.ctx, a.nodeId, [X, Y]);
    expect((await entries(X))[a.nodeId]).toMatchObject({ planned: true, reported: true });
    expect((await entries(Y))[a.nodeId]).toMatchObject({ planned: true, reported: false });
    await setNodeModels(rt.ctx, a.nodeId, []);
    expect((await entries(Y))[a.nodeId]).toBeUndefined();
    // Still running X: held by the report alone.
    expect((await entries(X))[a.nodeId]).toMatchObject({ planned: false, reported: true });
  });

  it('a switch and an unload through the API move the entries; unload without workers reaches the holders only', async () => {
    const a = await agent('res-api-a', [X]);
    const b = await agent('res-api-b', [X]);
    const other = await agent('res-api-c', [Y]);
    const sw = await call(rt.url, 'POST', '/api/vision/models/switch/res-api-a', { model: Y });
    expect(sw.status).toBe(200);
    expect((await entries(Y))[a.nodeId]).toMatchObject({ planned: true });
    const available = await call(rt.url, 'GET', '/api/vision/models/available');
    const loadedOn = (m: string) =>
      (available.body.models as { name: string; loaded_on: string[] }[]).find((x) => x.name === m)!.loaded_on;
    // Within the settle time the control plane's record wins: a serves Y only.
    expect(loadedOn(Y)).toEqual(expect.arrayContaining(['res-api-a', 'res-api-c']));
    expect(loadedOn(X)).toContain('res-api-b');
    expect(loadedOn(X)).not.toContain('res-api-a');

    const unload = await call(rt.url, 'POST', '/models/unload', { model_name: X });
    expect(unload.status).toBe(200);
    // a still reports X (its agent has not run the switch's commands): it is a holder too. Earlier
    // tests' nodes holding X are too; the node holding Y alone is not.
    expect(unload.body.affected_workers).toEqual(expect.arrayContaining([a.nodeId, b.nodeId]));
    expect(unload.body.affected_workers).not.toContain(other.nodeId);
  });

  it('an offline holder keeps its entry: loaded lists drop it, an unload still reaches it', async () => {
    const a = await agent('res-off', [X]);
    const status = await call(rt.url, 'GET', '/api/vision/status');
    expect((status.body.models_loaded as Record<string, string[]>)[X]).toContain('res-off');
    // Past NODE_OFFLINE_AFTER_SECONDS without a beat.
    await eventually(async () => {
      const s = await call(rt.url, 'GET', '/api/vision/status');
      expect((s.body.models_loaded as Record<string, string[]>)[X] ?? []).not.toContain('res-off');
    });
    const available = await call(rt.url, 'GET', '/api/vision/models/available');
    const x = (available.body.models as { name: string; loaded_on: string[] }[]).find((m) => m.name === X)!;
    expect(x.loaded_on).not.toContain('res-off');
    expect((await entries(X))[a.nodeId]).toMatchObject({ reported: true });
    const unload = await call(rt.url, 'POST', '/models/unload', { model_name: X, force: true });
    expect(unload.body.affected_workers).toContain(a.nodeId);
  });

  it('a removed node leaves no entries', async () => {
    const a = await agent('res-gone', [X]);
    await setNodeModels(rt.ctx, a.nodeId, [X, Y]);
    expect(Object.keys(await entries(Y))).toContain(a.nodeId);
    await a.stop();
    const res = await call(rt.url, 'DELETE', '/api/nodes/res-gone');
    expect(res.status).toBe(200);
    expect((await entries(X))[a.nodeId]).toBeUndefined();
    expect((await entries(Y))[a.nodeId]).toBeUndefined();
  });

  it('a node from before the index is indexed by its next heartbeat, once, models unchanged', async () => {
    const a = await agent('res-old', [X]);
    await setNodeModels(rt.ctx, a.nodeId, [X, Y]);
    // As an older deployment left it: no entries, a sample without the mark.
    for (const m of [X, Y]) {
      const k = taskQueueKeys.modelNode(m, a.nodeId);
      await rt.ctx.store.delete(k.pk, k.sk);
    }
    const mk = metricsKey(a.nodeId);
    const { indexed: _mark, ...old } = (await rt.ctx.store.get<MetricsRecord>(mk.pk, mk.sk))!;
    await rt.ctx.store.put(old);
    expect((await entries(X))[a.nodeId]).toBeUndefined();

    await beat(a, [X]);
    expect((await entries(X))[a.nodeId]).toMatchObject({ reported: true, planned: true });
    expect((await entries(Y))[a.nodeId]).toMatchObject({ reported: false, planned: true });
    expect((await rt.ctx.store.get<MetricsRecord>(mk.pk, mk.sk))!.indexed).toBe(true);
    const version = (await entries(X))[a.nodeId]!.version;
    await beat(a, [X]);
    expect((await entries(X))[a.nodeId]!.version).toBe(version);
  });
});
