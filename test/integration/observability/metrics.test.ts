import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNvidiaSmi } from '../../../agent/collectors/nvidia-smi.js';
import { parseTegrastats } from '../../../agent/collectors/tegrastats.js';
import { toProtocolGpu } from '../../../agent/node.js';
import { SCRAPE_TOKEN_SECRET } from '../../../functions/observability/routes.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { AgentProcess, RUN_UNTIL_TERM, removeNodeContainers } from '../../e2e/harness.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../../harness/images.js';
import { describeWithEngine, engine as dockerClient, uniqueName } from '../../harness/services.js';
import { ScriptedAgent, call, eventually } from '../../harness/scripted-agent.js';

const API_KEY = 'metrics-suite-admin-key-0123456789';
const fixture = (path: string) => readFile(new URL(`../../fixtures/agent/${path}`, import.meta.url), 'utf8');

interface Sample {
  labels?: Record<string, string>;
  value: string;
}
interface Family {
  name: string;
  type: string;
  metrics: Sample[];
}

const env = {
  ...process.env,
  LOG_LEVEL: 'SILENT',
  AWS_ENDPOINT_URL: undefined,
  API_AUTH: 'true',
  NODE_OFFLINE_AFTER_SECONDS: '30',
};

describe('GET /metrics (Prometheus text format, embedded runtime)', () => {
  let rt: Runtime;
  let families: Map<string, Family>;
  const gpuServer = (rtUrl: string) => new ScriptedAgent(rtUrl, 'gpu-8x');
  let gpuAgent: ScriptedAgent;
  let jetson: ScriptedAgent;
  let gpus: ReturnType<typeof toProtocolGpu>[];
  let tegra: NonNullable<ReturnType<typeof parseTegrastats>>;

  const scrape = async (authorization?: string) =>
    fetch(`${rt.url}/metrics`, { headers: authorization ? { authorization } : {} });
  // With API_AUTH on, registration takes the API key.
  const register = async (agent: ScriptedAgent) => {
    const res = await call(rt.url, 'POST', '/agent/register', agent.registerBody(), {
      authorization: `Bearer ${API_KEY}`,
    });
    expect(res.status).toBe(200);
    agent.nodeId = res.body.nodeId;
    agent.token = res.body.token;
  };
  const samples = (name: string) => families.get(name)?.metrics ?? [];
  const valueFor = (name: string, labels: Record<string, string>) =>
    samples(name).find((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v))?.value;

  beforeAll(async () => {
    rt = await startRuntime({ port: 0, env });
    await rt.ctx.secrets.put('api-key', API_KEY);
    await rt.ctx.secrets.put(SCRAPE_TOKEN_SECRET, 'scrape-token-for-prometheus');

    // A simulated fleet: an 8-GPU server and a Jetson, their readings made by the agent's own
    // collectors from recorded nvidia-smi and tegrastats output.
    gpus = parseNvidiaSmi(await fixture('nvidia-smi/multi-gpu.csv')).map(toProtocolGpu);
    const line = (await fixture('tegrastats/orin-jp5.txt')).split('\n').find((l) => l.includes('GR3D'))!;
    tegra = parseTegrastats(line)!;
    gpuAgent = gpuServer(rt.url);
    await register(gpuAgent);
    gpuAgent.metrics = { gpus };
    expect((await gpuAgent.heartbeat()).status).toBe(200);
    jetson = new ScriptedAgent(rt.url, 'orin-1', {
      jetson: { l4t: '35.4.1', jetpack: '5.1.2', cuda: '11.4', cudnn: '8.6', model: 'Jetson AGX Orin' },
    });
    await register(jetson);
    jetson.metrics = { tegrastats: { ...tegra } };
    expect((await jetson.heartbeat()).status).toBe(200);

    const res = await scrape(`Bearer ${API_KEY}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const parsed = parsePrometheusTextFormat(await res.text()) as Family[];
    families = new Map(parsed.map((f) => [f.name, f]));
  }, 60_000);

  afterAll(async () => {
    await rt?.stop();
  });

  it('answers 401 without a key, and takes the scrape token in place of one', async () => {
    expect((await scrape()).status).toBe(401);
    expect((await scrape('Bearer not-the-token')).status).toBe(401);
    const res = await scrape('Bearer scrape-token-for-prometheus');
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('DCGM_FI_DEV_GPU_UTIL');
  });

  it('gives every GPU the DCGM exporter names and labels, with the values the heartbeat carried', () => {
    // Readings nvidia-smi printed as [N/A] are left out, as the DCGM exporter leaves out blank fields.
    const fields = {
      DCGM_FI_DEV_GPU_UTIL: 'utilizationGpu',
      DCGM_FI_DEV_MEM_COPY_UTIL: 'utilizationMemory',
      DCGM_FI_DEV_FB_USED: 'memoryUsedMiB',
      DCGM_FI_DEV_FB_FREE: 'memoryFreeMiB',
      DCGM_FI_DEV_GPU_TEMP: 'temperatureC',
      DCGM_FI_DEV_POWER_USAGE: 'powerDrawW',
      DCGM_FI_DEV_SM_CLOCK: 'clockSmMHz',
    } as const;
    expect(gpus).toHaveLength(4);
    for (const [name, field] of Object.entries(fields)) {
      expect(families.get(name)?.type).toBe('GAUGE');
      expect(samples(name)).toHaveLength(gpus.filter((g) => typeof g[field] === 'number').length);
      for (const g of gpus) {
        const labels = {
          gpu: String(g.index),
          UUID: g.uuid!,
          device: `nvidia${g.index}`,
          modelName: g.name,
          Hostname: 'gpu-8x.local',
          node: 'gpu-8x',
        };
        const value = valueFor(name, labels);
        expect(value === undefined ? null : Number(value), `${name} of GPU ${g.index}`).toBe(
          g[field] ?? null,
        );
      }
    }
    // Spot check against the recorded output: GPU 0 of multi-gpu.csv at 87 %, 61,234 MiB used, 1,410 MHz.
    expect(valueFor('DCGM_FI_DEV_GPU_UTIL', { gpu: '0', node: 'gpu-8x' })).toBe('87');
    expect(valueFor('DCGM_FI_DEV_FB_USED', { gpu: '0', node: 'gpu-8x' })).toBe('61234');
    expect(valueFor('DCGM_FI_DEV_SM_CLOCK', { gpu: '0', node: 'gpu-8x' })).toBe('1410');
  });

  it("gives the Jetson's tegrastats readings names of their own", () => {
    const node = { node: 'orin-1' };
    expect(Number(valueFor('fleet_jetson_gpu_load_percent', node))).toBe(tegra.gpuLoadPercent);
    expect(Number(valueFor('fleet_jetson_ram_used_bytes', node))).toBe(tegra.ramUsedMB * 1024 * 1024);
    const zones = Object.entries(tegra.temperatures).filter(([, c]) => c !== null);
    expect(zones.length).toBeGreaterThan(0);
    for (const [zone, c] of zones)
      expect(Number(valueFor('fleet_jetson_temperature_celsius', { ...node, zone }))).toBe(c);
    const rails = Object.entries(tegra.powerRails);
    expect(rails.length).toBeGreaterThan(0);
    for (const [rail, r] of rails)
      expect(Number(valueFor('fleet_jetson_power_milliwatts', { ...node, rail }))).toBe(r.currentMw);
    expect(samples('DCGM_FI_DEV_GPU_UTIL').some((s) => s.labels?.node === 'orin-1')).toBe(false);
  });

  it('reports nodes up, host readings in bytes, and the control plane state', () => {
    expect(valueFor('fleet_node_up', { node: 'gpu-8x' })).toBe('1');
    expect(valueFor('fleet_node_up', { node: 'orin-1' })).toBe('1');
    expect(Number(valueFor('fleet_node_memory_used_bytes', { node: 'gpu-8x' }))).toBe(4096 * 1024 * 1024);
    expect(Number(valueFor('fleet_node_disk_total_bytes', { node: 'gpu-8x' }))).toBe(100 * 1024 ** 3);
    expect(valueFor('fleet_nodes', { state: 'online' })).toBe('2');
    expect(valueFor('fleet_nodes', { state: 'offline' })).toBe('0');
    expect(
      samples('fleet_task_queue_depth')
        .map((s) => s.labels?.priority)
        .sort(),
    ).toEqual(['critical', 'high', 'low', 'normal']);
    expect(samples('fleet_training_jobs').length).toBeGreaterThan(0);
  });

  it("agrees with the Cluster Manager's /cluster/metrics and queue on tasks", async () => {
    const auth = { authorization: `Bearer ${API_KEY}` };
    for (const priority of [0, 2]) {
      const res = await call(
        rt.url,
        'POST',
        '/api/vision/generate',
        { prompt: 'a lighthouse at dusk', model: 'SDXL_4GB_FP8.safetensors', priority, steps: 10 },
        auth,
      );
      expect(res.status).toBe(200);
    }
    const scraped = new Map(
      (parsePrometheusTextFormat(await (await scrape(`Bearer ${API_KEY}`)).text()) as Family[]).map((f) => [
        f.name,
        f,
      ]),
    );
    const byStatus = (status: string) =>
      Number(scraped.get('fleet_tasks_last_24h')!.metrics.find((m) => m.labels?.status === status)!.value);
    const sum = (name: string) => scraped.get(name)!.metrics.reduce((n, m) => n + Number(m.value), 0);
    const cluster = (await call(rt.url, 'GET', '/cluster/metrics?timeframe=24h', undefined, auth)).body;
    expect(cluster.metrics.total_tasks).toBe(sum('fleet_tasks_last_24h'));
    expect(cluster.metrics.successful_tasks).toBe(byStatus('completed'));
    expect(cluster.metrics.failed_tasks).toBe(byStatus('failed'));
    // The two tasks: queued, or placed on the simulated GPU server (which never runs them).
    expect(byStatus('queued') + byStatus('assigned') + byStatus('running')).toBe(2);
    expect(sum('fleet_task_queue_depth')).toBe(byStatus('queued'));
  });
});

describeWithEngine('GET /metrics with a real agent on the engine', () => {
  let rt: Runtime;
  let agent: AgentProcess;
  let stateDir: string;
  let docker: ReturnType<typeof dockerClient>;
  const nodeName = uniqueName('metrics-agent');
  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
  const parse = (text: string) =>
    new Map((parsePrometheusTextFormat(text) as Family[]).map((f) => [f.name, f]));
  const sample = (families: Map<string, Family>, name: string, labels: Record<string, string>) =>
    families.get(name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
      ?.value;

  beforeAll(async () => {
    docker = dockerClient();
    await ensureBusyboxImage(docker);
    rt = await startRuntime({ port: 0, env: { ...env, API_AUTH: 'false', COMMAND_WAIT_MS: '20000' } });
    stateDir = await mkdtemp(join(tmpdir(), 'fleet-metrics-agent-'));
    agent = new AgentProcess({
      url: rt.url,
      name: nodeName,
      stateDir,
      heartbeatSeconds: 1,
      env: { ...process.env, FLEET_API_KEY: '', FLEET_URL: '', FLEET_NODE_NAME: '' },
    });
    await agent.start();
  }, 120_000);
  afterAll(async () => {
    await agent?.kill('SIGTERM');
    if (docker) await removeNodeContainers(docker, [nodeName]);
    await rt?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('shows the node up with the host readings its heartbeat sent', async () => {
    const text = await eventually(async () => {
      const body = await (await fetch(`${rt.url}/metrics`)).text();
      if (!new RegExp(`fleet_node_cpu_percent\\{[^}]*node="${nodeName}"`).test(body))
        throw new Error('no readings yet');
      return body;
    }, 30_000);
    const families = parsePrometheusTextFormat(text) as Family[];
    const of = (name: string) =>
      families.find((f) => f.name === name)?.metrics.find((m) => m.labels?.node === nodeName)?.value;
    expect(of('fleet_node_up')).toBe('1');
    expect(Number(of('fleet_node_memory_total_bytes'))).toBeGreaterThan(0);
    expect(Number(of('fleet_node_disk_total_bytes'))).toBeGreaterThan(0);
  }, 60_000);

  it('counts a container start: the request by route template, the command and its latency, the agent result', async () => {
    const started = await api('POST', `/containers/${BUSYBOX_IMAGE}/start`, {
      count: 1,
      command: RUN_UNTIL_TERM,
    });
    expect(started.status, `${JSON.stringify(started.body)}\n${agent.logTail()}`).toBe(200);
    const [instanceId] = started.body.started as string[];

    const text = await (await fetch(`${rt.url}/metrics`)).text();
    const families = parse(text);
    // The route template, never the raw path (the image reference would make a series per image).
    const starts = { method: 'POST', route: '/containers/{imageId}/start' };
    expect(sample(families, 'fleet_http_requests_total', { ...starts, status: '200' })).toBe('1');
    const routes = families.get('fleet_http_requests_total')!.metrics.map((m) => m.labels!.route!);
    expect(routes.some((r) => r.includes('fleet-test'))).toBe(false);
    expect(
      Number(sample(families, 'fleet_http_requests_total', { route: '/agent/heartbeat', status: '200' })),
    ).toBeGreaterThan(0);
    expect(Number(sample(families, 'fleet_http_request_duration_seconds_total', starts))).toBeGreaterThan(0);

    // One container.start, with its result: issue → result in the histogram, cumulative buckets.
    const type = { type: 'container.start' };
    expect(sample(families, 'fleet_commands_total', { ...type, status: 'succeeded' })).toBe('1');
    expect(families.get('fleet_command_duration_seconds')?.type).toBe('HISTOGRAM');
    // parse-prometheus-text-format folds a labelled histogram into one bucket map (it keeps count
    // and sum of unlabelled ones only), so its series are read from the text itself.
    const series = (suffix: string) =>
      [...text.matchAll(new RegExp(`^fleet_command_duration_seconds_${suffix}\\{([^}]*)\\} (\\S+)$`, 'gm'))]
        .filter((m) => m[1]!.includes('type="container.start"'))
        .map((m) => ({ labels: m[1]!, value: Number(m[2]) }));
    expect(series('count')).toEqual([{ labels: 'type="container.start"', value: 1 }]);
    expect(series('sum')[0]!.value).toBeGreaterThan(0);
    const buckets = series('bucket');
    expect(buckets).toHaveLength(11);
    expect(buckets.at(-1)).toEqual({ labels: 'type="container.start",le="+Inf"', value: 1 });
    const counts = buckets.map((b) => b.value);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));

    // The agent's lines: the control plane's field names, the command id on the command's lines.
    const lines = agent.lines.flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) {
      expect(Object.keys(l).slice(0, 4)).toEqual(['timestamp', 'level', 'message', 'service']);
      expect(['DEBUG', 'INFO', 'WARN', 'ERROR']).toContain(l['level']);
    }
    const executing = lines.filter(
      (l) => l['message'] === 'executing command' && l['type'] === 'container.start',
    );
    expect(executing).toHaveLength(1);
    expect(executing[0]!['commandId']).toMatch(/^[0-9a-f-]{36}$/);

    const stopped = await api('POST', `/containers/${BUSYBOX_IMAGE}/stop`, { instanceId });
    expect(stopped.status, JSON.stringify(stopped.body)).toBe(200);
  }, 90_000);

  it('/api/metrics counts every request /metrics counts (and the scrape itself)', async () => {
    await agent.kill('SIGTERM'); // no more heartbeats between the two reads
    const families = parse(await (await fetch(`${rt.url}/metrics`)).text());
    const all = families.get('fleet_http_requests_total')!.metrics;
    const total = all.reduce((n, m) => n + Number(m.value), 0);
    const failed = all
      .filter((m) => Number(m.labels!.status) >= 400)
      .reduce((n, m) => n + Number(m.value), 0);
    const novita = await api('GET', '/api/metrics');
    expect(novita.status).toBe(200);
    // The scrape above is counted once its answer is written, before this call.
    expect(novita.body.requests).toMatchObject({ total: total + 1, failed, successful: total + 1 - failed });
    expect(novita.body.requests.total).toBeGreaterThan(3);
  }, 60_000);
});
