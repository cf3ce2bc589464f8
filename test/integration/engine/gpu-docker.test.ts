/**
 * GPU requests on a real Docker Engine without a GPU. `.ci/services.sh` starts dockerd with
 * stand-ins for NVIDIA's toolkit: `nvidia-container-runtime-hook` on its PATH (so dockerd registers
 * its "nvidia" device driver for DeviceRequests) and a runtime named `nvidia` wrapping runc. Both
 * copy the OCI config they were handed to FLEET_NVIDIA_RECORDS, by container id: what the engine
 * made of the agent's request is read there (environment, hooks), not guessed.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { containerSpec, type ContainerSpec } from '../../../protocol/commands.js';
import { LABELS } from '../../../protocol/messages.js';
import { DockerEngine } from '../../../agent/engine/docker.js';
import { silentLogger } from '../../../agent/log.js';
import { CommandExecutor } from '../../../agent/executor.js';
import { CommandJournal } from '../../../agent/journal.js';
import { TaskRunner } from '../../../agent/tasks.js';
import { ensureBusyboxImage } from '../../harness/images.js';
import { describeWith, dockerOptions, inCi, uniqueName, type ServiceStatus } from '../../harness/services.js';

function dockerdStatus(): ServiceStatus {
  const missing = ['FLEET_DOCKERD_HOST', 'FLEET_NVIDIA_RECORDS'].filter((v) => !process.env[v]);
  if (missing.length === 0) return { available: true, reason: '' };
  const reason = `${missing.join(', ')} unset: no Docker Engine with the NVIDIA stand-ins (eval "$(.ci/services.sh)")`;
  if (inCi) throw new Error(`CI=true and ${reason}. CI must run these suites, not skip them.`);
  return { available: false, reason };
}

interface OciConfig {
  process: { env: string[] };
  hooks?: { prestart?: { path: string; args: string[] }[] };
}

describeWith(dockerdStatus(), 'GPU requests on Docker Engine (stand-in NVIDIA hook and runtime)', () => {
  const nodeName = uniqueName('gpu-it');
  const records = process.env.FLEET_NVIDIA_RECORDS!;
  let docker: Docker;
  let image: string;

  const spec = (instanceId: string, overrides: Partial<ContainerSpec>): ContainerSpec =>
    containerSpec.parse({
      instanceId,
      imageId: image,
      name: `${nodeName}-${instanceId}`,
      kind: 'service',
      command: ['sh', '-c', 'env; sleep 600'],
      ...overrides,
    });
  const record = async (kind: 'hook' | 'runtime', containerId: string): Promise<OciConfig> =>
    JSON.parse(await readFile(join(records, `${kind}-${containerId}.json`), 'utf8')) as OciConfig;
  const nvidiaHooks = (config: OciConfig) =>
    (config.hooks?.prestart ?? []).filter((h) => h.args[0] === 'nvidia-container-runtime-hook');
  const gpuEnv = (config: OciConfig) => config.process.env.filter((e) => e.startsWith('NVIDIA_')).sort();

  beforeAll(async () => {
    docker = new Docker(dockerOptions(process.env.FLEET_DOCKERD_HOST));
    image = await ensureBusyboxImage(docker);
  });

  afterAll(async () => {
    const leftovers = await docker.listContainers({
      all: true,
      filters: { label: [`${LABELS.node}=${nodeName}`] },
    });
    await Promise.all(
      leftovers.map((c) =>
        docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => undefined),
      ),
    );
  });

  it('sees the nvidia runtime and sends GPUs as DeviceRequests', async () => {
    const driver = new DockerEngine(docker, { nodeName, logger: silentLogger });
    const caps = await driver.capabilities();
    expect(caps).toMatchObject({ name: 'docker', gpuMode: 'device-requests', gpuRuntime: true });
    expect(caps.runtimes).toContain('nvidia');
  });

  it.each([
    { ask: { gpus: 2 }, request: { Count: 2 }, visible: '0,1' },
    { ask: { gpus: 'all' as const }, request: { Count: -1 }, visible: 'all' },
    {
      ask: { gpuDeviceIds: ['1', 'GPU-6135f477-c8f7-b3de-70b0-1a7659b72dd5'] },
      request: { Count: 0, DeviceIDs: ['1', 'GPU-6135f477-c8f7-b3de-70b0-1a7659b72dd5'] },
      visible: '1,GPU-6135f477-c8f7-b3de-70b0-1a7659b72dd5',
    },
  ])(
    'DeviceRequests $ask: the engine runs the NVIDIA hook with NVIDIA_VISIBLE_DEVICES=$visible',
    async ({ ask, request, visible }) => {
      const driver = new DockerEngine(docker, { nodeName, logger: silentLogger });
      const id = `dr-${visible.length}-${String(request.Count).replace('-', 'm')}`;
      const c = await driver.createAndStart(spec(id, ask));
      const info = await docker.getContainer(c.id).inspect();
      expect(info.HostConfig.DeviceRequests).toEqual([
        {
          Driver: 'nvidia',
          Count: request.Count,
          DeviceIDs: request.DeviceIDs ?? null,
          Capabilities: [['gpu']],
          Options: {},
        },
      ]);
      expect(info.HostConfig.Runtime).toBe('runc');
      // The engine's nvidia driver wrote the OCI config the hook was handed.
      const config = await record('hook', c.id);
      expect(gpuEnv(config)).toEqual([`NVIDIA_VISIBLE_DEVICES=${visible}`]);
      expect(nvidiaHooks(config).map((h) => h.args)).toEqual([['nvidia-container-runtime-hook', 'prestart']]);
      expect(c.running).toBe(true);
    },
  );

  it.each([
    { ask: { gpus: 1 }, visible: '0' },
    { ask: { gpus: 'all' as const }, visible: 'all' },
    { ask: { gpuDeviceIds: ['0', '2'] }, visible: '0,2' },
  ])(
    'the nvidia runtime (Jetson) for $ask: runs under that runtime with NVIDIA_VISIBLE_DEVICES=$visible',
    async ({ ask, visible }) => {
      const driver = new DockerEngine(docker, { nodeName, logger: silentLogger, jetson: true });
      expect((await driver.capabilities()).gpuMode).toBe('nvidia-runtime');
      const c = await driver.createAndStart(spec(`rt-${visible.replace(/,/g, '-')}`, ask));
      const info = await docker.getContainer(c.id).inspect();
      expect(info.HostConfig.Runtime).toBe('nvidia');
      expect(info.HostConfig.DeviceRequests ?? []).toEqual([]);
      // The stand-in runtime was the one asked to create it, with this environment.
      const config = await record('runtime', c.id);
      expect(gpuEnv(config)).toEqual([`NVIDIA_VISIBLE_DEVICES=${visible}`]);
      expect(nvidiaHooks(config)).toEqual([]);
      const args = await readFile(join(records, 'runtime-args.log'), 'utf8');
      expect(args.split('\n').filter((l) => l.includes(' create ') && l.endsWith(c.id))).toHaveLength(1);
    },
  );

  it('keeps an NVIDIA_VISIBLE_DEVICES the spec sets itself on the nvidia runtime', async () => {
    const driver = new DockerEngine(docker, { nodeName, logger: silentLogger, jetson: true });
    const c = await driver.createAndStart(spec('rt-own', { gpus: 2, env: { NVIDIA_VISIBLE_DEVICES: '3' } }));
    expect(gpuEnv(await record('runtime', c.id))).toEqual(['NVIDIA_VISIBLE_DEVICES=3']);
  });

  it('an engine error comes back as a command error naming the engine and its version', async () => {
    const driver = new DockerEngine(docker, { nodeName, logger: silentLogger });
    const stateDir = await mkdtemp(join(tmpdir(), 'gpu-it-'));
    const journal = await CommandJournal.open(join(stateDir, 'journal.json'));
    const executor = new CommandExecutor({
      nodeId: () => 'node-gpu',
      engine: driver,
      journal,
      tasks: new TaskRunner({
        engine: driver,
        journal,
        logger: silentLogger,
        events: { send: () => undefined },
      }),
      reporter: { reportResult: async () => undefined },
      logger: silentLogger,
    });
    const result = await executor.execute({
      commandId: 'cmd-bad-exec',
      nodeId: 'node-gpu',
      issuedAt: new Date().toISOString(),
      command: { type: 'container.start', spec: spec('bad-exec', { command: ['/no/such/program'] }) },
    });
    await rm(stateDir, { recursive: true, force: true });
    expect(result.status).toBe('failed');
    const { Version } = await docker.version();
    expect(result.error, result.error).toMatch(
      /^Docker Engine \d+\.\d+\.\d+\S*: engine container\.start failed: /,
    );
    expect(result.error).toContain(`Docker Engine ${Version}:`);
    expect(result.error).toMatch(/no such file or directory/);
  });
});
