/**
 * The aarch64 leg of the agent image, run for real: the multi-arch manifest is built from the
 * registry's arm64 Node.js and Debian's arm64 libraries (`.ci/arm64.sh`), then the arm64 image's own
 * files (its node, its libraries, its agent bundle, exported from Podman) run under qemu-user as an
 * agent of the local runtime (`--driver process`: no engine inside the emulator) that registers as
 * arm64 and runs a job. Needs Podman (the image build) and qemu-user-static.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pinnedNode } from '../../functions/system/install.js';
import { startRuntime, type Runtime } from '../../local/runtime.js';
import { buildAgentManifest } from '../../scripts/agent-image.js';
import { describeWith, requireArm64, requireEngine, uniqueName } from '../harness/services.js';
import { AgentProcess, call, eventually, REPO_ROOT } from './harness.js';

const run = promisify(execFile);
const ARM64 = resolve(REPO_ROOT, process.env.FLEET_ARM64_DIR ?? '.ci/state/arm64');
const QEMU = '/usr/bin/qemu-aarch64-static';
const engine = requireEngine();
const arm64 = requireArm64(ARM64);

describeWith(engine.available ? arm64 : engine, 'the arm64 agent image, run under qemu-user', () => {
  const runId = uniqueName('e2e-arm64');
  const tag = `localhost/${runId}:test`;
  let work: string;
  let rootfs: string;
  let platforms: string[] = [];
  let rt: Runtime | undefined;
  let agent: AgentProcess | undefined;
  const api = (method: string, path: string, body?: unknown) => call(rt!.url, method, path, body);
  /** Runs the image's node under the emulator, its libraries found in the image's own root. */
  const emulated = () => [QEMU, '-L', rootfs, join(rootfs, 'usr/local/bin/node')];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), `${runId}-`));
    rootfs = join(work, 'rootfs');
    await mkdir(rootfs);
    ({ platforms } = await buildAgentManifest({
      tag,
      arches: ['x86_64', 'aarch64'],
      foreign: { aarch64: { nodeArchive: join(ARM64, 'node-aarch64.tar.gz'), sysroot: join(ARM64, 'root') } },
    }));
    // The arm64 image's files, as a node pulling `tag` on a Jetson would get them.
    const { stdout: id } = await run('podman', ['create', '--platform', 'linux/arm64', `${tag}-aarch64`]);
    try {
      await run('sh', ['-c', `podman export "$1" | tar -x -C "$2"`, 'export', id.trim(), rootfs]);
    } finally {
      await run('podman', ['rm', id.trim()]);
    }
  }, 300_000);

  afterAll(async () => {
    await agent?.kill('SIGKILL');
    await rt?.stop();
    await run('podman', ['manifest', 'rm', tag]).catch(() => undefined);
    await run('podman', ['rmi', `${tag}-x86_64`, `${tag}-aarch64`]).catch(() => undefined);
    if (work) await rm(work, { recursive: true, force: true });
  }, 60_000);

  it('builds one manifest list over linux/amd64 and linux/arm64', () => {
    expect([...platforms].sort()).toEqual(['linux/amd64', 'linux/arm64']);
  });

  it('the arm64 image holds an AArch64 node that answers under the emulator, with the agent bundle', async () => {
    const { stdout: header } = await run('readelf', ['-h', join(rootfs, 'usr/local/bin/node')]);
    expect(header).toMatch(/Machine:\s+AArch64/);
    const [program, ...args] = emulated();
    const { stdout } = await run(program!, [...args, '-p', 'process.arch + " " + process.version']);
    expect(stdout.trim()).toBe(`arm64 v${pinnedNode()!.version}`);
    const { stdout: agentVersion } = await run(program!, [
      ...args,
      join(rootfs, 'opt/fleet-agent/agent.mjs'),
      '--version',
    ]);
    expect(agentVersion.trim()).toMatch(/^\d+\.\d+\.\d+/);
  }, 60_000);

  it('runs as an agent: registers as arm64 and runs a job', async () => {
    rt = await startRuntime({
      port: 0,
      env: { ...process.env, LOG_LEVEL: 'SILENT', AWS_ENDPOINT_URL: undefined },
    });
    agent = new AgentProcess({
      url: rt.url,
      name: `${runId}-a`,
      stateDir: join(work, 'agent'),
      heartbeatSeconds: 2,
      exec: emulated(),
      entry: [join(rootfs, 'opt/fleet-agent/agent.mjs')],
      env: {
        ...process.env,
        FLEET_API_KEY: '',
        FLEET_URL: '',
        FLEET_NODE_NAME: '',
        FLEET_DRIVER: 'process',
        DOCKER_HOST: 'unix:///nonexistent.sock',
      },
    });
    await agent.start(180_000);
    const worker = await api('GET', `/workers/${agent.nodeId}`);
    expect(worker.status, worker.text).toBe(200);
    expect(worker.body.system_info).toMatchObject({ arch: 'arm64' });

    const created = await api('POST', '/jobs', {
      name: uniqueName('arm64-job'),
      image: 'unused:latest',
      command: ['sh', '-c', 'echo trained on the arm64 agent'],
      schedule: null,
    });
    expect(created.status, created.text).toBe(201);
    const id = created.body.job_id as string;
    await eventually(
      'the job completed on the arm64 agent',
      async () => {
        const job = (await api('GET', `/jobs/${id}`)).body;
        expect(job.status, `${JSON.stringify(job)}\n${agent!.logTail(10)}`).toBe('completed');
      },
      120_000,
      500,
    );
    const runs = (await api('GET', `/jobs/${id}/runs`)).body.runs as Record<string, unknown>[];
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ status: 'succeeded', exit_code: 0, node_id: agent.nodeId });
    expect(runs[0]!.log_tail).toContain('trained on the arm64 agent');
  }, 300_000);
});
