/**
 * The Build API end to end: the local runtime (embedded), one REAL agent as a child process started
 * with FLEET_BUILD_ROOT and the label cluster=vision, Podman, and a real Docker Registry
 * (REGISTRY_URL, .ci/services.sh). Images are built from a context under the build root, pushed,
 * listed back from the registry, deployed as a swarm service whose container is checked on the engine.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startRuntime, type Runtime } from '../../local/runtime.js';
import { agentEnv, awaitNodeStatus } from '../harness/fleet.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../harness/images.js';
import {
  describeWith,
  engine as dockerClient,
  requireEngineAndRegistry,
  uniqueName,
} from '../harness/services.js';
import {
  AgentProcess,
  call,
  engineContainers,
  eventually,
  removeNodeContainers,
  untagImage,
} from './harness.js';

const status = requireEngineAndRegistry();

describeWith(status, 'Build API end to end: local runtime, a real agent, Podman, a real registry', () => {
  const runId = uniqueName('build-e2e');
  const nodeName = `${runId}-n`;
  const repo = `fleet-e2e/${runId}`;
  const registryHost = () => new URL(process.env.REGISTRY_URL!).host;
  const built: string[] = [];
  let docker: Docker;
  let rt: Runtime;
  let root: string;
  let agent: AgentProcess;
  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);

  beforeAll(async () => {
    docker = dockerClient();
    await ensureBusyboxImage(docker);
    root = await mkdtemp(join(tmpdir(), `${runId}-`));
    const buildRoot = join(root, 'builds');
    await mkdir(join(buildRoot, 'app'), { recursive: true });
    await writeFile(
      join(buildRoot, 'app', 'Dockerfile'),
      [
        `FROM ${BUSYBOX_IMAGE}`,
        'ARG GREETING=unset',
        'COPY message.txt /message.txt',
        'RUN echo "greeting=$GREETING" > /greeting',
        `CMD ["sh", "-c", "cat /greeting /message.txt; trap 'exit 0' TERM; while true; do sleep 1; done"]`,
      ].join('\n'),
    );
    await writeFile(join(buildRoot, 'app', 'message.txt'), `from the build context of ${runId}\n`);
    // Outside the build root: the agent must refuse it.
    await writeFile(join(root, 'Dockerfile'), `FROM ${BUSYBOX_IMAGE}\n`);

    rt = await startRuntime({
      port: 0,
      env: {
        ...process.env,
        LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'SILENT',
        COMMAND_WAIT_MS: '25000',
        AWS_ENDPOINT_URL: undefined,
        REGISTRY_URL: process.env.REGISTRY_URL,
        // The suite's registry is on this machine: the operator names it as outbound-allowed.
        OUTBOUND_ALLOWLIST: new URL(process.env.REGISTRY_URL!).hostname,
      },
    });
    agent = new AgentProcess({
      url: rt.url,
      name: nodeName,
      stateDir: join(root, 'state'),
      heartbeatSeconds: 1,
      env: agentEnv({ FLEET_BUILD_ROOT: buildRoot, FLEET_LABELS: 'cluster=vision' }),
    });
    await agent.start();
    await awaitNodeStatus(rt.url, [agent.nodeId]);
  }, 120_000);

  afterAll(async () => {
    for (const name of [`${runId}-svc`, `${runId}-bd`])
      await api('DELETE', `/api/swarm/services/${name}`).catch(() => undefined);
    await agent?.kill('SIGTERM').catch(() => undefined);
    await rt?.stop();
    if (docker) {
      await removeNodeContainers(docker, [nodeName]);
      for (const ref of built) await untagImage(docker, ref);
    }
    if (root) await rm(root, { recursive: true, force: true });
  }, 60_000);

  it('builds with a build arg, pushes, and the registry lists the tag', async () => {
    const res = await api('POST', '/api/build/build', {
      image_name: repo,
      tag: 'v1',
      dockerfile_path: 'app/Dockerfile',
      build_args: { GREETING: 'hello-v1' },
      node_id: nodeName,
    });
    expect(res.status, `${res.text}\n${agent.logTail(20)}`).toBe(200);
    const image = `${registryHost()}/${repo}:v1`;
    built.push(image);
    expect(res.body).toMatchObject({ image, node_id: agent.nodeId, pushed: true });
    expect(res.body.image_id).toMatch(/^(sha256:)?[0-9a-f]{64}$/);
    // The engine holds the image under that tag, with the same id.
    const inspected = await docker.getImage(image).inspect();
    expect(inspected.Id.replace(/^sha256:/, '')).toBe(String(res.body.image_id).replace(/^sha256:/, ''));
    // And the registry has it: the route reads the real registry.
    const listing = await api('GET', '/api/build/registry/images');
    expect(listing.status, listing.text).toBe(200);
    expect(listing.body.registry).toBe(registryHost());
    expect(listing.body.images).toContainEqual({
      name: repo,
      tags: ['v1'],
      full_image: `${registryHost()}/${repo}`,
    });
  });

  it('refuses a Dockerfile outside the build root with 403, and pushes nothing', async () => {
    const res = await api('POST', '/api/build/build', {
      image_name: `${repo}-outside`,
      tag: 'v1',
      dockerfile_path: join(root, 'Dockerfile'),
      build_args: {},
    });
    expect(res.status, res.text).toBe(403);
    expect(res.body.detail).toMatch(/outside the build root/);
    const listing = await api('GET', '/api/build/registry/images');
    expect((listing.body.images as { name: string }[]).map((i) => i.name)).not.toContain(`${repo}-outside`);
  });

  it('deploys the built image as a service on the cluster; its container runs that image', async () => {
    const image = `${registryHost()}/${repo}:v1`;
    const res = await api('POST', '/api/build/deploy', {
      image,
      service_name: `${runId}-svc`,
      cluster: 'vision',
      replicas: 1,
    });
    expect(res.status, `${res.text}\n${agent.logTail(20)}`).toBe(201);
    expect(res.body).toMatchObject({
      name: `${runId}-svc`,
      image,
      replicas: 1,
      action: 'created',
      constraints: ['node.labels.cluster==vision'],
    });
    const [c] = await eventually('the service container running', async () => {
      const found = await engineContainers(docker, [nodeName]);
      expect(found.filter((x) => x.state === 'running')).toHaveLength(1);
      return found;
    });
    const inspected = await docker.getContainer(c!.id).inspect();
    expect(inspected.Config.Image).toBe(image);
    await eventually('the built content in its logs', async () => {
      const logs = (await docker.getContainer(c!.id).logs({ stdout: true, stderr: true })).toString('utf8');
      expect(logs).toContain('greeting=hello-v1');
      expect(logs).toContain(`from the build context of ${runId}`);
    });
    // Deploying again scales the same service.
    const again = await api('POST', '/api/build/deploy', {
      image,
      service_name: `${runId}-svc`,
      cluster: 'vision',
      replicas: 2,
    });
    expect(again.status, again.text).toBe(200);
    expect(again.body).toMatchObject({ action: 'scaled', replicas: 2 });
    // Another cluster than the service's: refused, nothing changed.
    const moved = await api('POST', '/api/build/deploy', {
      image,
      service_name: `${runId}-svc`,
      cluster: 'other',
      replicas: 1,
    });
    expect(moved.status, moved.text).toBe(409);
    const services = (await api('GET', '/api/swarm/services')).body as { name: string; replicas: number }[];
    expect(services.find((s) => s.name === `${runId}-svc`)?.replicas).toBe(2);
  });

  it('build-and-deploy builds v2 and deploys it; a failing build deploys nothing', async () => {
    const res = await api('POST', '/api/build/build-and-deploy', {
      image_name: repo,
      tag: 'v2',
      dockerfile_path: 'app/Dockerfile',
      build_args: { GREETING: 'hello-v2' },
      service_name: `${runId}-bd`,
      cluster: 'vision',
      replicas: 1,
    });
    const image = `${registryHost()}/${repo}:v2`;
    built.push(image);
    expect(res.status, `${res.text}\n${agent.logTail(20)}`).toBe(201);
    expect(res.body.build).toMatchObject({ image, pushed: true });
    expect(res.body.deploy).toMatchObject({ name: `${runId}-bd`, image, action: 'created' });
    await eventually('the v2 container running', async () => {
      const found = (await engineContainers(docker, [nodeName])).filter((x) => x.state === 'running');
      const images = await Promise.all(
        found.map(async (x) => (await docker.getContainer(x.id).inspect()).Config.Image),
      );
      expect(images).toContain(image);
    });
    const listing = await api('GET', '/api/build/registry/images');
    expect(
      (listing.body.images as { name: string; tags: string[] }[]).find((i) => i.name === repo)?.tags.sort(),
    ).toEqual(['v1', 'v2']);

    await writeFile(join(root, 'builds', 'app', 'Dockerfile.bad'), `FROM ${BUSYBOX_IMAGE}\nRUN exit 3\n`);
    const bad = await api('POST', '/api/build/build-and-deploy', {
      image_name: repo,
      tag: 'bad',
      dockerfile_path: 'app/Dockerfile.bad',
      service_name: `${runId}-bad`,
    });
    expect(bad.status, bad.text).toBe(422);
    expect(bad.body.detail).toMatch(/build of .* failed/);
    const services = (await api('GET', '/api/swarm/services')).body as { name: string }[];
    expect(services.map((s) => s.name)).not.toContain(`${runId}-bad`);
  });
});
