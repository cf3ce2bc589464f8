import { readdir } from 'node:fs/promises';
import type Docker from 'dockerode';
import type { Logger } from '../log.js';
import { engineCall, type EngineTimeouts, type LooseDocker } from './call.js';
import { bytes } from './disk.js';
import { EngineError, engineMessage, ImageStreamError, statusCodeOf } from './errors.js';
import type { ImageBuildInput, ImagePruneOutcome } from './types.js';

const loose = (docker: Docker): LooseDocker => docker as unknown as LooseDocker;

/** Images on the engine: pull when missing, build, push, prune dangling ones. */
export class DockerImages {
  constructor(
    private readonly docker: Docker,
    private readonly timeouts: EngineTimeouts,
    private readonly log: Logger,
  ) {}

  async ensureImage(ref: string): Promise<{ pulled: boolean }> {
    try {
      await engineCall('image.inspect', this.timeouts.inspectMs, (s) =>
        this.docker.getImage(ref).inspect({ abortSignal: s } as Docker.ImageInspectOptions),
      );
      return { pulled: false };
    } catch (error) {
      if ((error as EngineError).statusCode !== 404) throw error;
    }
    this.log.info('pulling image', { image: ref });
    try {
      await engineCall('image.pull', this.timeouts.pullMs, async (s) => {
        const stream = (await this.docker.pull(ref, { abortSignal: s })) as NodeJS.ReadableStream;
        await new Promise<void>((resolve, reject) => {
          this.docker.modem.followProgress(stream, (err: Error | null, events: Array<{ error?: string }>) => {
            const failed = (events ?? []).find((e) => e.error);
            if (err || failed) reject(err ?? new Error(failed?.error));
            else resolve();
          });
        });
      });
    } catch (error) {
      throw new EngineError(
        'image.pull',
        `image ${ref} is not on this node and could not be pulled: ${engineMessage(error)}`,
        statusCodeOf(error),
        { cause: error },
      );
    }
    return { pulled: true };
  }

  async pruneDanglingImages(): Promise<ImagePruneOutcome> {
    const out = await engineCall('image.prune', this.timeouts.pruneMs, (s) =>
      loose(this.docker).pruneImages({ filters: { dangling: ['true'] }, abortSignal: s }),
    );
    return {
      imagesDeleted: (out.ImagesDeleted ?? []).flatMap((d) => (d.Deleted ? [d.Deleted] : [])),
      spaceReclaimedBytes: bytes(out.SpaceReclaimed),
    };
  }

  async buildImage(input: ImageBuildInput): Promise<{ imageId: string; log: string[] }> {
    const src = await readdir(input.contextDir);
    const log: string[] = [];
    let imageId: string | undefined;
    const events = await engineCall('image.build', input.timeoutMs, async (s) => {
      const stream = (await this.docker.buildImage({ context: input.contextDir, src }, {
        t: input.tag,
        dockerfile: input.dockerfile,
        buildargs: input.buildArgs,
        rm: true,
        forcerm: true,
        abortSignal: s,
      } as Docker.ImageBuildOptions)) as NodeJS.ReadableStream;
      return this.followImageStream(stream, log);
    });
    for (const e of events) imageId = e.aux?.ID ?? imageId;
    const failed = events.find((e) => e.error);
    if (failed) throw new ImageStreamError('image.build', `build failed: ${failed.error}`, log);
    // Podman streams the id as its last line; inspecting the tag is the one answer both engines agree on.
    const inspected = await engineCall('image.inspect', this.timeouts.inspectMs, (s) =>
      this.docker.getImage(input.tag).inspect({ abortSignal: s } as Docker.ImageInspectOptions),
    );
    return { imageId: inspected.Id ?? imageId ?? '', log };
  }

  async pushImage(
    ref: string,
    options: { insecure: boolean; timeoutMs: number },
  ): Promise<{ digest: string | null; log: string[] }> {
    const { repo, tag } = splitImageRef(ref);
    const log: string[] = [];
    const events = await engineCall('image.push', options.timeoutMs, async (s) => {
      // tlsVerify is Podman's compat query (Docker ignores it and trusts 127.0.0.0/8 and its insecure-registries).
      const stream = (await this.docker.getImage(repo).push({
        tag,
        ...(options.insecure ? { tlsVerify: false } : {}),
        authconfig: {},
        abortSignal: s,
      } as Docker.ImagePushOptions)) as NodeJS.ReadableStream;
      return this.followImageStream(stream, log);
    });
    const failed = events.find((e) => e.error);
    if (failed) throw new ImageStreamError('image.push', `push failed: ${failed.error}`, log);
    const digest =
      events
        .map((e) => e.aux?.Digest ?? /digest: (sha256:[0-9a-f]{64})/.exec(e.status ?? '')?.[1])
        .find(Boolean) ?? null;
    return { digest, log };
  }

  /** Collects a build/push progress stream: its events, and its text lines into `log`. */
  private followImageStream(stream: NodeJS.ReadableStream, log: string[]): Promise<ImageStreamEvent[]> {
    return new Promise((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (err: Error | null, events: ImageStreamEvent[]) => (err ? reject(err) : resolve(events ?? [])),
        (e: ImageStreamEvent) => {
          const text =
            e.stream ?? e.error ?? (e.status ? `${e.status}${e.progress ? ` ${e.progress}` : ''}` : '');
          for (const line of text.split('\n')) if (line.trim()) log.push(line);
          if (log.length > 2000) log.splice(0, log.length - 2000);
        },
      );
    });
  }
}

interface ImageStreamEvent {
  stream?: string;
  status?: string;
  progress?: string;
  error?: string;
  aux?: { ID?: string; Digest?: string };
}

/** `host:5000/a/b:tag` → repo `host:5000/a/b`, tag `tag` (latest when none; a port is not a tag). */
export function splitImageRef(ref: string): { repo: string; tag: string } {
  const at = ref.indexOf('@');
  const base = at >= 0 ? ref.slice(0, at) : ref;
  const colon = base.lastIndexOf(':');
  if (colon > base.lastIndexOf('/')) return { repo: base.slice(0, colon), tag: base.slice(colon + 1) };
  return { repo: base, tag: 'latest' };
}
