import { lstat, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type CheckpointFileIn,
  type CheckpointRestoreResponse,
  type CheckpointSpec,
  type CheckpointUploadsResponse,
  type ChunkTransfer,
} from '../protocol/checkpoints.js';
import type { ContainerSpec } from '../protocol/commands.js';
import { sleep } from './backoff.js';
import { ControlPlaneError } from './client.js';
import { downloadFile, hashFile, listFiles, readChunk, safeTarget, sha256 } from './checkpoint-files.js';
import { inNewOperation, type Logger } from './log.js';

export { hashFile, listFiles } from './checkpoint-files.js';

/**
 * Keeps a training run's checkpoint folder in the artifacts store: restored before the container
 * starts, uploaded every `syncSeconds` while it runs and once more after it exits. Files are cut in
 * chunks named by their SHA-256; only files whose size or mtime changed since the last stored
 * manifest are read again, only chunks the store lacks are sent, and the manifest is committed
 * last (by the control plane, which checks every chunk is there), so a sync cut short leaves the
 * previous checkpoint whole. Symbolic links are neither followed nor written through: what a
 * container leaves in the folder cannot make the agent read or write elsewhere on the host. The
 * same for every driver: the executor runs it around a start on Docker/Podman and on the process
 * driver alike. Reading and writing the folder's files: checkpoint-files.ts.
 */

/** The control plane's checkpoint calls (ControlPlaneClient). */
export interface CheckpointApi {
  checkpointRestore(jobId: string, instanceId: string): Promise<CheckpointRestoreResponse>;
  checkpointUploads(
    jobId: string,
    body: { instanceId: string; totalBytes: number; chunks: { hash: string; size: number }[] },
  ): Promise<CheckpointUploadsResponse>;
  checkpointCommit(
    jobId: string,
    body: { instanceId: string; chunkBytes: number; files: CheckpointFileIn[] },
  ): Promise<void>;
  checkpointChunk(t: ChunkTransfer, body?: Uint8Array): Promise<Buffer>;
}

/** Labels that let an agent restarted mid-run pick the sync up again. */
export const CHECKPOINT_LABELS = {
  dir: 'fleet.checkpoint.dir',
  job: 'fleet.checkpoint.job',
  attempt: 'fleet.checkpoint.attempt',
  containerPath: 'fleet.checkpoint.path',
  syncSeconds: 'fleet.checkpoint.sync',
} as const;

interface LocalFile {
  size: number;
  mtimeMs: number;
  chunks: string[];
}

interface Tracked {
  instanceId: string;
  spec: CheckpointSpec;
  dir: string;
  chunkBytes: number;
  /** Files as of the last stored manifest. */
  stored: Map<string, LocalFile>;
  /** The stored manifest's files, to skip a sync that would change nothing. */
  storedPrint: string;
  stop: AbortController;
  busy: Promise<SyncOutcome> | null;
  refused: string | null;
}

export type SyncOutcome = 'stored' | 'unchanged' | 'refused' | 'gone' | 'failed';

export interface CheckpointSyncOptions {
  api: CheckpointApi;
  logger: Logger;
  /** This node's own checkpoint root (FLEET_CHECKPOINT_ROOT): `<root>/<job_id>` replaces the control plane's path. */
  root?: string;
}

const UPLOADS_PER_REQUEST = 5_000;
const printOf = (files: { name: string; size: number; chunks: string[] }[]) =>
  JSON.stringify(files.map((f) => [f.name, f.size, f.chunks]).sort());

export class CheckpointSync {
  private readonly runs = new Map<string, Tracked>();
  private readonly log: Logger;

  constructor(private readonly options: CheckpointSyncOptions) {
    this.log = options.logger.child({ component: 'checkpoints' });
  }

  /** The spec with the checkpoint volume on this node's root, and labels to resume from. */
  place(spec: ContainerSpec): ContainerSpec {
    const cp = spec.checkpoint;
    if (!cp) return spec;
    const volume = spec.volumes.find((v) => v.containerPath === cp.containerPath);
    const dir = this.options.root ? join(this.options.root, cp.jobId) : volume?.hostPath;
    if (!dir) return spec;
    const volumes = volume
      ? spec.volumes.map((v) => (v === volume ? { ...v, hostPath: dir } : v))
      : [...spec.volumes, { hostPath: dir, containerPath: cp.containerPath, readOnly: false }];
    return {
      ...spec,
      volumes,
      labels: {
        ...spec.labels,
        [CHECKPOINT_LABELS.dir]: dir,
        [CHECKPOINT_LABELS.job]: cp.jobId,
        [CHECKPOINT_LABELS.attempt]: String(cp.attempt),
        [CHECKPOINT_LABELS.containerPath]: cp.containerPath,
        [CHECKPOINT_LABELS.syncSeconds]: String(cp.syncSeconds),
      },
    };
  }

  /** Writes the stored checkpoint into the run's folder (before its container exists). */
  async restore(spec: ContainerSpec): Promise<{ files: number; bytes: number }> {
    const t = this.trackedOf(spec);
    if (!t) return { files: 0, bytes: 0 };
    await mkdir(t.dir, { recursive: true });
    const access = await this.options.api.checkpointRestore(t.spec.jobId, t.instanceId);
    t.chunkBytes = access.chunkBytes;
    this.runs.set(t.instanceId, t);
    const manifest = access.manifest;
    if (!manifest) return { files: 0, bytes: 0 };
    const where = new Map(access.downloads.map((d) => [d.hash, d]));
    let bytes = 0;
    for (const f of manifest.files) {
      const path = await safeTarget(t.dir, f.name);
      const local = await hashFile(path, manifest.chunkBytes).catch(() => null);
      if (!local || local.size !== f.size || local.chunks.join() !== f.chunks.join()) {
        await downloadFile((c) => this.options.api.checkpointChunk(c), path, f.chunks, where);
        bytes += f.size;
      }
      const s = await lstat(path);
      if (manifest.chunkBytes === t.chunkBytes)
        t.stored.set(f.name, { size: s.size, mtimeMs: s.mtimeMs, chunks: f.chunks });
    }
    if (manifest.chunkBytes === t.chunkBytes) t.storedPrint = printOf(manifest.files);
    this.log.info('checkpoint restored', {
      jobId: t.spec.jobId,
      instanceId: t.instanceId,
      files: manifest.files.length,
      bytes,
      presigned: access.downloads.some((d) => /^https?:\/\//.test(d.url)),
    });
    return { files: manifest.files.length, bytes };
  }

  /** Starts the periodic upload of a started run's folder. */
  track(spec: ContainerSpec): void {
    const t = this.runs.get(spec.instanceId) ?? this.trackedOf(spec);
    if (!t) return;
    this.runs.set(t.instanceId, t);
    void this.loop(t);
  }

  /** After an agent restart: picks up the runs whose containers still carry the labels. */
  resume(containers: { instanceId: string; running: boolean; labels: Record<string, string> }[]): number {
    let n = 0;
    for (const c of containers) {
      const l = c.labels;
      const dir = l[CHECKPOINT_LABELS.dir];
      if (!c.running || !dir || this.runs.has(c.instanceId)) continue;
      const spec: CheckpointSpec = {
        jobId: l[CHECKPOINT_LABELS.job] ?? '',
        attempt: Number(l[CHECKPOINT_LABELS.attempt]),
        containerPath: l[CHECKPOINT_LABELS.containerPath] ?? '/checkpoints',
        syncSeconds: Number(l[CHECKPOINT_LABELS.syncSeconds]) || 60,
      };
      if (!spec.jobId || !Number.isInteger(spec.attempt)) continue;
      const t = this.newTracked(c.instanceId, spec, dir);
      this.runs.set(c.instanceId, t);
      void this.loop(t);
      n++;
    }
    return n;
  }

  /** The run's container exited: one last upload, then its sync ends. Resolves when stored (or given up). */
  async finish(instanceId: string, labels: Record<string, string> = {}): Promise<SyncOutcome | null> {
    let t = this.runs.get(instanceId);
    if (!t && labels[CHECKPOINT_LABELS.dir]) {
      this.resume([{ instanceId, running: true, labels }]);
      t = this.runs.get(instanceId);
    }
    if (!t) return null;
    t.stop.abort();
    this.runs.delete(instanceId);
    await t.busy?.catch(() => undefined);
    const outcome = await this.syncOnce(t);
    this.log.info('checkpoint synced after the run ended', { jobId: t.spec.jobId, instanceId, outcome });
    return outcome;
  }

  /** The container did not start after all: nothing to sync. */
  forget(instanceId: string): void {
    this.runs.get(instanceId)?.stop.abort();
    this.runs.delete(instanceId);
  }

  /** Stops every periodic sync (the agent is stopping; containers keep running). */
  close(): void {
    for (const t of this.runs.values()) t.stop.abort();
    this.runs.clear();
  }

  /** Uploads what changed since the last stored manifest; one at a time per run. */
  sync(instanceId: string): Promise<SyncOutcome | null> {
    const t = this.runs.get(instanceId);
    return t ? this.syncOnce(t) : Promise.resolve(null);
  }

  private syncOnce(t: Tracked): Promise<SyncOutcome> {
    const previous = t.busy ?? Promise.resolve<SyncOutcome>('unchanged');
    const next = previous.catch(() => undefined).then(() => this.upload(t));
    t.busy = next;
    return next;
  }

  private async loop(t: Tracked): Promise<void> {
    const signal = t.stop.signal;
    while (!signal.aborted) {
      await sleep(t.spec.syncSeconds * 1000, signal);
      if (signal.aborted) return;
      // Each round is an operation of its own: its lines and calls share one requestId.
      const outcome = await inNewOperation(() => this.syncOnce(t));
      if (outcome === 'gone') {
        this.runs.delete(t.instanceId);
        return;
      }
    }
  }

  private trackedOf(spec: ContainerSpec): Tracked | null {
    const placed = spec.labels[CHECKPOINT_LABELS.dir] ? spec : this.place(spec);
    const dir = placed.labels[CHECKPOINT_LABELS.dir];
    return spec.checkpoint && dir ? this.newTracked(spec.instanceId, spec.checkpoint, dir) : null;
  }

  private newTracked(instanceId: string, spec: CheckpointSpec, dir: string): Tracked {
    return {
      instanceId,
      spec,
      dir,
      chunkBytes: 0,
      stored: new Map(),
      storedPrint: '',
      stop: new AbortController(),
      busy: null,
      refused: null,
    };
  }

  private async upload(t: Tracked): Promise<SyncOutcome> {
    const { api } = this.options;
    const jobId = t.spec.jobId;
    try {
      if (!t.chunkBytes) t.chunkBytes = (await api.checkpointRestore(jobId, t.instanceId)).chunkBytes;
      const current = new Map<string, LocalFile>();
      const changed: string[] = [];
      for (const name of await listFiles(t.dir)) {
        const s = await lstat(join(t.dir, name));
        const before = t.stored.get(name);
        if (before && before.size === s.size && before.mtimeMs === s.mtimeMs) current.set(name, before);
        else {
          const hashed = await hashFile(join(t.dir, name), t.chunkBytes);
          current.set(name, { size: hashed.size, mtimeMs: s.mtimeMs, chunks: hashed.chunks });
          changed.push(name);
        }
      }
      const files = [...current].map(([name, f]) => ({ name, size: f.size, chunks: f.chunks }));
      const print = printOf(files);
      if (print === t.storedPrint) return 'unchanged';
      const totalBytes = files.reduce((n, f) => n + f.size, 0);
      // Where each new chunk lies, to read it again for its upload.
      const at = new Map<string, { name: string; index: number; size: number }>();
      for (const name of changed) {
        const f = current.get(name)!;
        for (const [index, hash] of f.chunks.entries())
          at.set(hash, { name, index, size: Math.min(t.chunkBytes, f.size - index * t.chunkBytes) });
      }
      // In batches: one request carries at most UPLOADS_PER_REQUEST chunks.
      const wanted = [...at].map(([hash, c]) => ({ hash, size: c.size }));
      const uploads: ChunkTransfer[] = [];
      for (let i = 0; i === 0 || i < wanted.length; i += UPLOADS_PER_REQUEST) {
        const batch = wanted.slice(i, i + UPLOADS_PER_REQUEST);
        uploads.push(
          ...(await api.checkpointUploads(jobId, { instanceId: t.instanceId, totalBytes, chunks: batch }))
            .uploads,
        );
      }
      for (const u of uploads) {
        const c = at.get(u.hash);
        if (!c) continue;
        const bytes = await readChunk(join(t.dir, c.name), c.index * t.chunkBytes, c.size);
        // Changed since it was hashed: the next round sees the new mtime and sends it then.
        if (sha256(bytes) !== u.hash) return 'failed';
        await api.checkpointChunk(u, bytes);
      }
      await api.checkpointCommit(jobId, { instanceId: t.instanceId, chunkBytes: t.chunkBytes, files });
      t.stored = current;
      t.storedPrint = print;
      t.refused = null;
      this.log.info('checkpoint stored', {
        jobId,
        instanceId: t.instanceId,
        files: files.length,
        changed: changed.length,
        uploaded: uploads.length,
        bytes: totalBytes,
      });
      return 'stored';
    } catch (error) {
      if (error instanceof ControlPlaneError && error.status === 413) {
        // Said once per refusal, not every round; the listing (GET /jobs/{id}/checkpoint) says it too.
        if (t.refused !== error.body)
          this.log.error('checkpoint not stored: over the size limit', {
            jobId,
            instanceId: t.instanceId,
            error: error.body,
          });
        t.refused = error.body;
        return 'refused';
      }
      if (error instanceof ControlPlaneError && (error.status === 403 || error.status === 404)) {
        this.log.warn('checkpoint sync ended: the run is no longer this node’s', {
          jobId,
          instanceId: t.instanceId,
        });
        return 'gone';
      }
      this.log.warn('checkpoint sync failed; the next round tries again', {
        jobId,
        instanceId: t.instanceId,
        error,
      });
      return 'failed';
    }
  }
}
