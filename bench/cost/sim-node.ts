/**
 * A simulated node for the cost model: the suites' ScriptedAgent (register, heartbeat, long-poll
 * commands, results, task events over HTTP) with what the agent itself sends: the register request
 * and every heartbeat are built by the agent's own code (agent/node.ts, agent/heartbeat.ts, the
 * real ControlPlaneClient) from collectors that replay the recorded probes in test/fixtures.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ControlPlaneClient } from '../../agent/client.js';
import type { EngineCapabilities, EngineDriver, ManagedContainer } from '../../agent/engine/types.js';
import { Heartbeat } from '../../agent/heartbeat.js';
import { silentLogger } from '../../agent/log.js';
import { buildRegisterRequest, collectNodeMetrics, type Collectors } from '../../agent/node.js';
import { collectJetsonInfo } from '../../agent/collectors/jetson.js';
import { parseNvidiaSmi, type GpuInfo } from '../../agent/collectors/nvidia-smi.js';
import type { SystemInfo } from '../../agent/collectors/system.js';
import { parseTegrastats } from '../../agent/collectors/tegrastats.js';
import { LABELS, type HeartbeatRequest, type RegisterResponse } from '../../protocol/messages.js';
import {
  GPU_WORKER,
  ScriptedAgent,
  type AgentOptions,
  type HttpAnswer,
} from '../../test/harness/scripted-agent.js';

const FIXTURES = join(import.meta.dirname, '../../test/fixtures/agent');

/** What Docker on a GPU host reports (the agent sends name, version and gpuRuntime of it). */
const ENGINE: EngineCapabilities = {
  name: 'docker',
  version: '28.0.0',
  apiVersion: '1.48',
  storageDriver: 'overlay2',
  backingFilesystem: 'extfs',
  diskLimit: { supported: false, reason: 'overlay2 on extfs' },
  gpuMode: 'device-requests',
  gpuRuntime: true,
  runtimes: ['runc', 'nvidia'],
  rootDir: '/var/lib/docker',
};

export type Hardware = { kind: 'gpu'; gpus: number } | { kind: 'jetson' };

/**
 * Collectors that answer from the recorded probes: the H100 probe (scripts/gpu-probe.ts on an H100)
 * for the system and GPU, its GPU repeated `gpus` times for a multi-GPU server; for a Jetson, the
 * Orin JetPack 5 file tree, its nvidia-smi line and a tegrastats line.
 */
export async function fixtureCollectors(hardware: Hardware): Promise<Collectors> {
  const probe = JSON.parse(await readFile(join(FIXTURES, 'gpu-probe-h100.json'), 'utf8')) as {
    gpus: GpuInfo[];
    system: SystemInfo;
  };
  if (hardware.kind === 'jetson') {
    const gpus = parseNvidiaSmi(await readFile(join(FIXTURES, 'nvidia-smi/jetson-orin.csv'), 'utf8'));
    const line = (await readFile(join(FIXTURES, 'tegrastats/orin-jp5.txt'), 'utf8')).split('\n')[0]!;
    const jetson = await collectJetsonInfo(join(FIXTURES, 'roots/orin-jp5'), {
      exec: () => Promise.reject(new Error('no nvcc in the fixture')),
    });
    const system: SystemInfo = {
      ...probe.system,
      arch: 'arm64',
      cpuCount: 12,
      cpuModel: 'ARMv8 Processor rev 1 (v8l)',
    };
    return {
      system: async () => system,
      gpus: async () => gpus,
      jetson: async () => jetson,
      tegrastats: async () => parseTegrastats(line),
    };
  }
  const h100 = probe.gpus[0]!;
  const gpus = Array.from({ length: hardware.gpus }, (_, i) => ({
    ...h100,
    index: i,
    uuid: `${(h100.uuid ?? 'GPU-h100').slice(0, -2)}${String(i).padStart(2, '0')}`,
  }));
  return {
    system: async () => probe.system,
    gpus: async () => gpus,
    jetson: async () => null,
    tegrastats: async () => null,
  };
}

export class SimNode extends ScriptedAgent {
  heartbeatIntervalSeconds = 0;
  private readonly client: ControlPlaneClient;
  private readonly beat: Heartbeat;

  constructor(
    base: string,
    name: string,
    private readonly collectors: Collectors,
    private readonly jetson: boolean,
    options: AgentOptions = {},
  ) {
    super(base, name, { ...GPU_WORKER, ...options });
    this.client = new ControlPlaneClient({ baseUrl: base, logger: silentLogger });
    // The heartbeat reads only list() and stats() of the engine: the model servers this node runs.
    const engine = {
      list: async (): Promise<ManagedContainer[]> =>
        [...this.servers.entries()].map(([model, instanceId]) => ({
          id: `c-${instanceId}`,
          name: instanceId,
          instanceId,
          kind: 'model',
          imageId: 'sdxl-trt',
          state: 'running',
          running: true,
          exitCode: null,
          startedAt: '2026-01-01T00:00:00.000Z',
          finishedAt: null,
          restartCount: 0,
          ports: [{ containerPort: 8080, hostPort: 40000, protocol: 'tcp' }],
          labels: { [LABELS.model]: model, [LABELS.managed]: 'true' },
        })),
      stats: async () => ({ cpuPercent: 3.5, memoryUsageMb: 6144, memoryLimitMb: 65536, memoryPercent: 9.4 }),
    } as unknown as EngineDriver;
    this.beat = new Heartbeat({
      send: (request, signal) => this.client.heartbeat(request, { signal }),
      engine,
      metrics: () => collectNodeMetrics(collectors, { jetson }, silentLogger),
      logger: silentLogger,
      intervalMs: () => this.heartbeatIntervalSeconds * 1000,
    });
  }

  override async register(): Promise<RegisterResponse> {
    const request = await buildRegisterRequest(
      {
        nodeName: this.name,
        labels: {
          'max-concurrency': String(this.options.maxConcurrency ?? 1),
          ...(this.options.labels ?? {}),
        },
        cluster: 'vision',
        engine: ENGINE,
        jetson: await this.collectors.jetson(),
      },
      this.collectors,
      silentLogger,
    );
    const res = await this.client.register({
      ...request,
      nodeName: this.name,
      hostname: `${this.name}.local`,
    });
    this.nodeId = res.nodeId;
    this.token = res.token;
    this.heartbeatIntervalSeconds = res.heartbeatIntervalSeconds;
    // The background loop (busy profile) beats at the interval the control plane asked for.
    this.options.heartbeatMs = res.heartbeatIntervalSeconds * 1000;
    return res;
  }

  /** The heartbeat body the agent's code builds now. */
  heartbeatRequest(): Promise<HeartbeatRequest> {
    return this.beat.build();
  }

  override async heartbeat(): Promise<HttpAnswer> {
    await this.beat.beat(AbortSignal.timeout(15_000));
    return { status: 200, body: undefined };
  }
}
