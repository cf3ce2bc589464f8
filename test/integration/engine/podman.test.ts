/**
 * The Docker Engine API as Podman serves it, driven by dockerode: the calls the node agent relies on.
 * The image is built here from busybox-static (no registry is reachable).
 */
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BUSYBOX_IMAGE, buildBusyboxImage, type ImportMethod } from '../../harness/images.js';
import { describeWithEngine, engine, uniqueName } from '../../harness/services.js';

const MEMORY = 64 * 1024 * 1024;
const NANO_CPUS = 500_000_000; // half a CPU

/** Splits a non-TTY log stream: 8-byte frames (stream type, 3 zero bytes, big-endian length). */
function demux(buffer: Buffer): { stdout: string; stderr: string } {
  const out = { stdout: '', stderr: '' };
  for (let at = 0; at + 8 <= buffer.length;) {
    const type = buffer[at];
    const length = buffer.readUInt32BE(at + 4);
    const text = buffer.subarray(at + 8, at + 8 + length).toString('utf8');
    if (type === 2) out.stderr += text;
    else out.stdout += text;
    at += 8 + length;
  }
  return out;
}

async function eventually<T>(probe: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await probe();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

describeWithEngine('container engine (Podman through the Docker API)', () => {
  let docker: Docker;
  let method: ImportMethod;
  const run = uniqueName('run');
  const labels = { 'fleet.test.run': run, 'fleet.owner': 'integration-test' };
  let server: Docker.Container;

  beforeAll(async () => {
    docker = engine();
    await docker.ping();
    method = await buildBusyboxImage(docker, BUSYBOX_IMAGE);
  });

  afterAll(async () => {
    // Whatever a failed test left behind, found by the run's label.
    const left = await docker.listContainers({ all: true, filters: { label: [`fleet.test.run=${run}`] } });
    await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  });

  it('imported the busybox image built from a local root filesystem', async () => {
    const image = await docker.getImage(BUSYBOX_IMAGE).inspect();
    expect(image.RepoTags).toContain(BUSYBOX_IMAGE);
    // Podman 4.3 accepts POST /images/create?fromSrc=- (with the tag inside `repo`): no CLI needed.
    expect(method).toBe('api');
  });

  it('creates and starts a container with labels, limits and a published port on a free host port', async () => {
    server = await docker.createContainer({
      name: `${run}-server`,
      Image: BUSYBOX_IMAGE,
      Cmd: [
        'sh',
        '-c',
        'echo server-starting; echo hello-from-busybox > /www/index.html; exec httpd -f -p 8080 -h /www',
      ],
      Labels: labels,
      ExposedPorts: { '8080/tcp': {} },
      HostConfig: {
        Memory: MEMORY,
        NanoCpus: NANO_CPUS,
        PortBindings: { '8080/tcp': [{ HostPort: '0' }] },
      },
    });
    await server.start();

    const info = await server.inspect();
    expect(info.State.Running).toBe(true);
    expect(info.Config.Labels).toMatchObject(labels);
    expect(info.HostConfig.Memory).toBe(MEMORY);
    expect(info.HostConfig.NanoCpus).toBe(NANO_CPUS);
    const hostPort = Number(info.NetworkSettings.Ports['8080/tcp']?.[0]?.HostPort);
    expect(hostPort).toBeGreaterThan(0);

    const body = await eventually(async () => {
      const res = await fetch(`http://127.0.0.1:${hostPort}/index.html`, {
        signal: AbortSignal.timeout(2_000),
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return res.text();
    });
    expect(body.trim()).toBe('hello-from-busybox');
  });

  it('reports one stats sample with the memory limit applied', async () => {
    const stats = await server.stats({ stream: false });
    expect(stats.memory_stats.usage).toBeGreaterThan(0);
    expect(stats.memory_stats.limit).toBe(MEMORY);
    expect(stats.cpu_stats.cpu_usage.total_usage).toBeGreaterThan(0);
  });

  it('returns logs split into stdout and stderr', async () => {
    const job = await docker.createContainer({
      name: `${run}-job`,
      Image: BUSYBOX_IMAGE,
      Cmd: ['sh', '-c', 'echo to-stdout; echo to-stderr >&2; exit 3'],
      Labels: { ...labels, 'fleet.role': 'job' },
    });
    await job.start();
    expect(await job.wait()).toMatchObject({ StatusCode: 3 });

    const logs = demux(await job.logs({ stdout: true, stderr: true, follow: false }));
    expect(logs.stdout).toBe('to-stdout\n');
    expect(logs.stderr).toBe('to-stderr\n');

    const serverLogs = demux(await server.logs({ stdout: true, stderr: true, follow: false }));
    expect(serverLogs.stdout).toContain('server-starting');
  });

  it('lists containers by label filter', async () => {
    const mine = await docker.listContainers({ all: true, filters: { label: [`fleet.test.run=${run}`] } });
    expect(mine.map((c) => c.Names[0]?.replace(/^\//, '')).sort()).toEqual([`${run}-job`, `${run}-server`]);

    const running = await docker.listContainers({ filters: { label: [`fleet.test.run=${run}`] } });
    expect(running.map((c) => c.Id)).toEqual([server.id]);

    const jobs = await docker.listContainers({
      all: true,
      filters: { label: [`fleet.test.run=${run}`, 'fleet.role=job'] },
    });
    expect(jobs).toHaveLength(1);
    expect(jobs[0]?.Labels['fleet.role']).toBe('job');
  });

  it('stops and removes containers', async () => {
    await server.stop({ t: 1 });
    expect((await server.inspect()).State.Running).toBe(false);

    const mine = await docker.listContainers({ all: true, filters: { label: [`fleet.test.run=${run}`] } });
    for (const c of mine) await docker.getContainer(c.Id).remove();

    await expect(server.inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(await docker.listContainers({ all: true, filters: { label: [`fleet.test.run=${run}`] } })).toEqual(
      [],
    );
  });
});
