import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LABELS } from '../../../protocol/messages.js';
import { type ContainerSpec } from '../../../protocol/commands.js';
import type {
  ContainerStats,
  EngineCapabilities,
  EngineDiskUsage,
  ImagePruneOutcome,
  EngineDriver,
  EngineEvent,
  LogTail,
  ManagedContainer,
  ResourceLimits,
  StartOptions,
  UpdateOutcome,
  ImageBuildInput,
} from '../../../agent/engine/types.js';
import { containerLabels } from '../../../agent/engine/create-options.js';
import { ImageStreamError } from '../../../agent/engine/errors.js';

/** An in-memory engine for unit tests: records calls, keeps containers in a map. */
export class FakeEngine implements EngineDriver {
  readonly containers = new Map<string, ManagedContainer>();
  readonly calls: string[] = [];
  readonly logText = new Map<string, string>();
  /** stderr lines of a container, kept apart from logText (its stdout). */
  readonly stderrText = new Map<string, string>();
  private seq = 0;
  /** Host port handed out for a requested port 0. */
  nextHostPort = 40000;
  failCreate: Error | null = null;
  /** Ids of dangling images the next prune removes. */
  danglingImages: string[] = [];
  /** What the engine says its root is; null like an engine that does not say. */
  rootDir: string | null = '/var/lib/fake-engine';
  /** Containers remove() refuses, as an engine refuses a running one without force. */
  readonly refuseRemove = new Set<string>();

  constructor(readonly nodeName = 'node-1') {}

  async capabilities(): Promise<EngineCapabilities> {
    return {
      name: 'fake',
      version: '1',
      apiVersion: '1.41',
      storageDriver: 'overlay',
      backingFilesystem: 'extfs',
      diskLimit: { supported: false, reason: 'fake' },
      gpuMode: 'none',
      gpuRuntime: false,
      runtimes: ['runc'],
      rootDir: this.rootDir,
    };
  }

  async ping(): Promise<void> {}

  async ensureImage(ref: string): Promise<{ pulled: boolean }> {
    this.calls.push(`ensureImage ${ref}`);
    return { pulled: false };
  }

  async createAndStart(spec: ContainerSpec, options: StartOptions = {}): Promise<ManagedContainer> {
    this.calls.push(`createAndStart ${spec.instanceId}`);
    if (this.failCreate) throw this.failCreate;
    const id = `c${++this.seq}`;
    const c: ManagedContainer = {
      id,
      name: spec.name,
      instanceId: spec.instanceId,
      kind: spec.kind,
      imageId: spec.imageId,
      state: 'running',
      running: true,
      exitCode: null,
      startedAt: new Date().toISOString(),
      finishedAt: null,
      restartCount: 0,
      ports: spec.ports.map((p) => ({
        containerPort: p.containerPort,
        hostPort: p.hostPort || this.nextHostPort++,
        protocol: p.protocol,
      })),
      labels: containerLabels(spec, { nodeName: this.nodeName, ...options }),
    };
    this.containers.set(id, c);
    return { ...c };
  }

  /** Adds a container as if created earlier (e.g. by an agent that died mid-start). */
  add(partial: Partial<ManagedContainer> & { instanceId: string }): ManagedContainer {
    const id = partial.id ?? `c${++this.seq}`;
    const c: ManagedContainer = {
      id,
      name: partial.name ?? `name-${id}`,
      kind: 'service',
      imageId: 'img',
      state: 'running',
      running: true,
      exitCode: null,
      startedAt: null,
      finishedAt: null,
      restartCount: 0,
      ports: [],
      labels: {
        [LABELS.managed]: 'true',
        [LABELS.node]: this.nodeName,
        [LABELS.instance]: partial.instanceId,
      },
      ...partial,
    };
    this.containers.set(id, c);
    return c;
  }

  /** Marks a container exited as the engine would. */
  exit(id: string, exitCode: number, finishedAt = new Date().toISOString()): void {
    const c = this.containers.get(id)!;
    Object.assign(c, { state: 'exited', running: false, exitCode, finishedAt });
  }

  async findByInstance(instanceId: string): Promise<ManagedContainer | null> {
    this.calls.push(`findByInstance ${instanceId}`);
    const all = [...this.containers.values()].filter((c) => c.instanceId === instanceId);
    const c = all.find((x) => x.running) ?? all[0];
    return c ? { ...c } : null;
  }

  async inspect(id: string): Promise<ManagedContainer> {
    const c = this.containers.get(id);
    if (!c) throw Object.assign(new Error(`no such container ${id}`), { statusCode: 404 });
    return { ...c };
  }

  async start(id: string): Promise<void> {
    this.calls.push(`start ${id}`);
    const c = this.containers.get(id)!;
    Object.assign(c, { state: 'running', running: true, exitCode: null });
  }

  async stop(id: string): Promise<void> {
    this.calls.push(`stop ${id}`);
    const c = this.containers.get(id);
    if (c?.running) this.exit(id, 137);
  }

  async remove(id: string, force = false): Promise<void> {
    this.calls.push(`remove ${id}${force ? ' force' : ''}`);
    if (this.refuseRemove.has(id)) throw Object.assign(new Error(`cannot remove ${id}`), { statusCode: 409 });
    this.containers.delete(id);
  }

  async logs(id: string, tail: number): Promise<string> {
    this.calls.push(`logs ${id} ${tail}`);
    return this.logText.get(id) ?? '';
  }

  async logTail(id: string, tail: number): Promise<LogTail> {
    const text = await this.logs(id, tail);
    const stderr = this.stderrText.get(id) ?? '';
    return { text: text + stderr, stdout: text, stderr };
  }

  async updateLimits(id: string, limits: ResourceLimits): Promise<UpdateOutcome> {
    this.calls.push(`updateLimits ${id} ${JSON.stringify(limits)}`);
    return { container: await this.inspect(id), method: 'update' };
  }

  async list(): Promise<ManagedContainer[]> {
    return [...this.containers.values()].map((c) => ({ ...c }));
  }

  async stats(): Promise<ContainerStats> {
    return { cpuPercent: 1, memoryUsageMb: 2, memoryLimitMb: 3, memoryPercent: 4 };
  }

  async wait(): Promise<{ exitCode: number | null }> {
    return { exitCode: 0 };
  }

  async pruneDanglingImages(): Promise<ImagePruneOutcome> {
    this.calls.push('pruneDanglingImages');
    const imagesDeleted = this.danglingImages.splice(0);
    return { imagesDeleted, spaceReclaimedBytes: imagesDeleted.length * 1000 };
  }

  async diskUsage(): Promise<EngineDiskUsage> {
    this.calls.push('diskUsage');
    return {
      layersSizeBytes: 0,
      images: { count: 1, sizeBytes: 2000, reclaimableBytes: 0 },
      containers: { count: this.containers.size, sizeBytes: 0, reclaimableBytes: 0 },
      volumes: { count: 0, sizeBytes: 0 },
      buildCacheBytes: 0,
    };
  }

  async watchEvents(_onEvent: (event: EngineEvent) => void, signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  }

  // Image builds: the Dockerfile is read from the real context folder, so path checks are real.
  /** Tag → image id of what buildImage produced. */
  readonly images = new Map<string, string>();
  readonly builds: ImageBuildInput[] = [];
  readonly pushes: { ref: string; insecure: boolean }[] = [];
  /** The next build fails with this, after streaming `failLog`. */
  failBuild: string | null = null;
  failPush: string | null = null;

  async buildImage(input: ImageBuildInput): Promise<{ imageId: string; log: string[] }> {
    this.calls.push(`buildImage ${input.tag}`);
    this.builds.push(input);
    const dockerfile = await readFile(join(input.contextDir, input.dockerfile), 'utf8');
    const log = [`Step 1/1 : ${dockerfile.split('\n')[0]}`];
    if (this.failBuild)
      throw new ImageStreamError('image.build', `build failed: ${this.failBuild}`, [...log, this.failBuild]);
    // Same content and args, same id: as a layer cache would answer a rebuild.
    const imageId = `sha256:${createHash('sha256').update(dockerfile).update(JSON.stringify(input.buildArgs)).digest('hex')}`;
    this.images.set(input.tag, imageId);
    return { imageId, log: [...log, `Successfully tagged ${input.tag}`] };
  }

  async pushImage(
    ref: string,
    options: { insecure: boolean; timeoutMs: number },
  ): Promise<{ digest: string | null; log: string[] }> {
    this.calls.push(`pushImage ${ref}`);
    if (this.failPush)
      throw new ImageStreamError('image.push', `push failed: ${this.failPush}`, [this.failPush]);
    const id = this.images.get(ref);
    if (!id) throw new Error(`no such image: ${ref}`);
    this.pushes.push({ ref, insecure: options.insecure });
    return {
      digest: `sha256:${createHash('sha256').update(id).digest('hex')}`,
      log: [`The push refers to repository [${ref}]`],
    };
  }
}
