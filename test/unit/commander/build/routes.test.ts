/**
 * Build API validation and dispatch on the embedded local runtime (no engine, no agent): bad input
 * answers 4xx and sends nothing; a good build sends one image.build to the node and, with no agent
 * answering, returns 202 with the command to follow.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeCommands } from '../../../../functions/nodes/commands.js';
import { startRuntime, type Runtime } from '../../../../local/runtime.js';
import { call } from '../../../e2e/harness.js';

const base = { LOG_LEVEL: 'SILENT', AWS_ENDPOINT_URL: undefined, COMMAND_WAIT_MS: '0' };
const registration = (nodeName: string) => ({
  nodeName,
  hostname: nodeName,
  arch: 'x64',
  os: 'linux',
  cpuCount: 2,
  memoryMb: 1024,
  diskGb: 10,
  agentVersion: 'test',
});
const good = {
  image_name: 'team/app',
  tag: 'v1',
  dockerfile_path: 'app/Dockerfile',
  build_args: { GREETING: 'hi' },
};

describe('Build API without a registry configured', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await startRuntime({ port: 0, env: { ...base, REGISTRY_URL: undefined } });
  });
  afterAll(() => rt?.stop());

  it('answers 503 saying how to configure the registry', async () => {
    for (const [method, path, body] of [
      ['GET', '/api/build/registry/images', undefined],
      ['POST', '/api/build/build', good],
    ] as const) {
      const res = await call(rt.url, method, path, body);
      expect(res.status, res.text).toBe(503);
      expect(res.body.detail).toMatch(/REGISTRY_URL/);
    }
  });
});

describe('a registry on loopback that OUTBOUND_ALLOWLIST does not name', () => {
  it('stops the runtime at start, naming REGISTRY_URL and OUTBOUND_ALLOWLIST; nothing is served', async () => {
    const started = startRuntime({
      port: 0,
      env: { ...base, REGISTRY_URL: 'http://127.0.0.1:5999', OUTBOUND_ALLOWLIST: '' },
    });
    await expect(started).rejects.toThrow(
      'REGISTRY_URL: http://127.0.0.1:5999 is refused: 127.0.0.1 is a loopback address (OUTBOUND_ALLOWLIST may name it)',
    );
    // The cloud metadata address is refused whatever the allowlist names short of it.
    await expect(
      startRuntime({
        port: 0,
        env: { ...base, REGISTRY_URL: 'http://169.254.169.254', OUTBOUND_ALLOWLIST: '10.0.0.0/8' },
      }),
    ).rejects.toThrow(/REGISTRY_URL: http:\/\/169\.254\.169\.254 is refused: .*metadata/);
  });
});

describe('Build API validation and dispatch', () => {
  let rt: Runtime;
  let nodeId: string;
  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);

  beforeAll(async () => {
    // A registry on loopback: OUTBOUND_ALLOWLIST must name it.
    rt = await startRuntime({
      port: 0,
      env: { ...base, REGISTRY_URL: 'http://127.0.0.1:5999', OUTBOUND_ALLOWLIST: '127.0.0.1' },
    });
  });
  afterAll(() => rt?.stop());

  it('answers 409 while no node is online, and 404 for an unknown node', async () => {
    const none = await api('POST', '/api/build/build', good);
    expect(none.status, none.text).toBe(409);
    expect(none.body.detail).toMatch(/No node is online/);
    const unknown = await api('POST', '/api/build/build', { ...good, node_id: 'nope' });
    expect(unknown.status, unknown.text).toBe(404);
  });

  it('refuses bad bodies with 400 naming the field, and sends nothing', async () => {
    const reg = await api('POST', '/agent/register', registration('build-unit-a'));
    expect(reg.status, reg.text).toBe(200);
    nodeId = reg.body.nodeId;
    const cases: [string, Record<string, unknown>, unknown[]][] = [
      ['/api/build/build', { ...good, image_name: 'Team/App' }, ['body', 'image_name']],
      ['/api/build/build', { ...good, image_name: 'a//b' }, ['body', 'image_name']],
      ['/api/build/build', { ...good, tag: '-v1' }, ['body', 'tag']],
      ['/api/build/build', { ...good, tag: 'a'.repeat(129) }, ['body', 'tag']],
      ['/api/build/build', { ...good, dockerfile_path: '' }, ['body', 'dockerfile_path']],
      ['/api/build/build', { ...good, build_args: { 'BAD-NAME': 'x' } }, ['body', 'build_args', 'BAD-NAME']],
      ['/api/build/build', { ...good, build_args: { A: 1 } }, ['body', 'build_args', 'A']],
      ['/api/build/build', { tag: 'v1', dockerfile_path: 'Dockerfile' }, ['body', 'image_name']],
      ['/api/build/deploy', { image: 'x/y:1', service_name: 'bad name' }, ['body', 'service_name']],
      ['/api/build/deploy', { image: 'x/y:1', service_name: 's', replicas: 101 }, ['body', 'replicas']],
      ['/api/build/deploy', { image: 'x/y:1', service_name: 's', cluster: 'a b' }, ['body', 'cluster']],
      ['/api/build/deploy', { service_name: 's' }, ['body', 'image']],
      ['/api/build/build-and-deploy', { ...good }, ['body', 'service_name']],
    ];
    for (const [path, body, loc] of cases) {
      const res = await api('POST', path, body);
      expect(res.status, `${JSON.stringify(body)}: ${res.text}`).toBe(400);
      expect(
        (res.body.detail as { loc: unknown[] }[]).map((d) => d.loc),
        res.text,
      ).toContainEqual(loc);
    }
    expect(await nodeCommands(rt.ctx, nodeId)).toEqual([]);
    expect((await api('GET', '/api/swarm/services')).body).toEqual([]);
  });

  it('sends one image.build for <registry>/<name>:<tag> and answers 202 with the command to follow', async () => {
    const res = await api('POST', '/api/build/build', good);
    expect(res.status, res.text).toBe(202);
    expect(res.body).toMatchObject({
      status: 'pending',
      node_id: nodeId,
      image: '127.0.0.1:5999/team/app:v1',
      follow: `GET /commands/${res.body.command_id}`,
      pending_commands: [res.body.command_id],
    });
    const [sent] = await nodeCommands(rt.ctx, nodeId);
    expect(sent).toMatchObject({
      commandId: res.body.command_id,
      type: 'image.build',
      command: {
        type: 'image.build',
        image: '127.0.0.1:5999/team/app:v1',
        dockerfilePath: 'app/Dockerfile',
        buildArgs: { GREETING: 'hi' },
        push: true,
        insecureRegistry: true,
      },
    });
    const followed = await api('GET', `/commands/${res.body.command_id}`);
    expect(followed.status, followed.text).toBe(200);
    expect(followed.body).toMatchObject({ type: 'image.build', status: 'pending' });
  });

  it('build-and-deploy whose build is still running deploys nothing and says how to finish', async () => {
    const res = await api('POST', '/api/build/build-and-deploy', { ...good, tag: 'v2', service_name: 'app' });
    expect(res.status, res.text).toBe(202);
    expect(res.body).toMatchObject({ deployed: false, image: '127.0.0.1:5999/team/app:v2' });
    expect(res.body.deploy).toMatch(/POST \/api\/build\/deploy/);
    expect((await api('GET', '/api/swarm/services')).body).toEqual([]);
  });
});
