import { createHash } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { ConflictError, HttpError, NotFoundError } from '../core/errors.js';
import {
  checkpointManifest,
  CHUNK_HASH,
  type CheckpointFile,
  type CheckpointFileIn,
  type CheckpointManifest,
  type ChunkTransfer,
} from '../../protocol/checkpoints.js';
import { getJob, getRun, JOB_ID_RE, parseInstanceId, type RunItem } from './model.js';
import { trainingSettings } from './settings.js';

/**
 * A job's checkpoint in the artifacts store, under `checkpoints/<job_id>/`: `chunks/<sha256>`
 * (content-addressed pieces of files), `manifest.json` (names → chunks; written last, only once
 * every chunk it names is stored) and `refused.json` (why the last upload was refused). Nodes get
 * access to one job's chunks only while they run its current attempt.
 */

const PREFIX = 'checkpoints/';
/** Chunk size on S3 (presigned URLs); embedded, chunks travel through the API and its body limit. */
const S3_CHUNK_BYTES = 8 * 1024 * 1024;

function checkedJobId(jobId: string): string {
  // Keys are built from checked ids only: nothing a caller sends can reach outside the job's prefix.
  if (!JOB_ID_RE.test(jobId))
    throw new NotFoundError(`Job ${jobId} not found`, 'NOT_FOUND', { error_type: 'JobNotFoundError' });
  return jobId;
}
const jobPrefix = (jobId: string) => `${PREFIX}${checkedJobId(jobId)}/`;
const chunkKey = (jobId: string, hash: string) => {
  if (!CHUNK_HASH.test(hash)) throw new HttpError(422, 'chunk hash must be a SHA-256 in lowercase hex');
  return `${jobPrefix(jobId)}chunks/${hash}`;
};
const manifestKey = (jobId: string) => `${jobPrefix(jobId)}manifest.json`;
const refusedKey = (jobId: string) => `${jobPrefix(jobId)}refused.json`;

export interface CheckpointRefusal {
  at: string;
  attempt: number;
  reason: string;
}

export const chunkBytesOf = (ctx: AppContext) =>
  ctx.blobs.presign ? S3_CHUNK_BYTES : ctx.config.MAX_BODY_BYTES;

export async function readManifest(ctx: AppContext, jobId: string): Promise<CheckpointManifest | null> {
  const blob = await ctx.blobs.get(manifestKey(jobId));
  if (!blob) return null;
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(blob.body).toString('utf8'));
  } catch {
    json = undefined;
  }
  const parsed = checkpointManifest.safeParse(json);
  if (!parsed.success) {
    ctx.logger.error('checkpoint manifest unreadable; treated as none', { jobId });
    return null;
  }
  return parsed.data;
}

async function readRefusal(ctx: AppContext, jobId: string): Promise<CheckpointRefusal | null> {
  const blob = await ctx.blobs.get(refusedKey(jobId));
  return blob ? (JSON.parse(Buffer.from(blob.body).toString('utf8')) as CheckpointRefusal) : null;
}

/**
 * The run a node's checkpoint call names, when it is that job's attempt placed on this node and
 * still in flight; anything else is refused (403), so a node's access ends with its run.
 */
export async function requireNodeRun(
  ctx: AppContext,
  nodeId: string,
  jobId: string,
  instanceId: string,
): Promise<RunItem> {
  const id = parseInstanceId(instanceId);
  const run = id && id.jobId === jobId ? await getRun(ctx, jobId, id.slot, id.attempt) : undefined;
  if (!run || run.nodeId !== nodeId || (run.status !== 'pending' && run.status !== 'running'))
    throw new HttpError(403, `run ${instanceId} of job ${jobId} is not in flight on this node`, 'FORBIDDEN');
  return run;
}

/** A relative URL is an agent route (sent with the node credential); an absolute one is presigned. */
async function transfer(
  ctx: AppContext,
  method: 'GET' | 'PUT',
  jobId: string,
  hash: string,
  instanceId: string,
): Promise<ChunkTransfer> {
  const key = chunkKey(jobId, hash);
  if (ctx.blobs.presign) {
    // An upload's URL carries the chunk's SHA-256: S3 stores no other body under its name.
    const signed = await ctx.blobs.presign(
      method,
      key,
      trainingSettings(ctx).checkpointUrlSeconds,
      method === 'PUT' ? { sha256: hash } : {},
    );
    return { hash, url: signed.url, headers: signed.headers };
  }
  return {
    hash,
    url: `/agent/checkpoints/${jobId}/runs/${encodeURIComponent(instanceId)}/chunks/${hash}`,
    headers: {},
  };
}

export async function restoreAccess(ctx: AppContext, nodeId: string, jobId: string, instanceId: string) {
  await requireNodeRun(ctx, nodeId, jobId, instanceId);
  const manifest = await readManifest(ctx, jobId);
  const hashes = [...new Set(manifest?.files.flatMap((f) => f.chunks) ?? [])];
  const downloads = [];
  for (const h of hashes) downloads.push(await transfer(ctx, 'GET', jobId, h, instanceId));
  return {
    chunkBytes: chunkBytesOf(ctx),
    maxBytes: trainingSettings(ctx).checkpointMaxBytes,
    manifest,
    downloads,
  };
}

/** Past the job's limit: recorded for the listing, answered 413 with the same words. */
async function refuse(ctx: AppContext, jobId: string, attempt: number, totalBytes: number): Promise<never> {
  const max = trainingSettings(ctx).checkpointMaxBytes;
  const reason = `checkpoint of ${totalBytes} bytes is over this job's limit of ${max} bytes (TRAINING_CHECKPOINT_MAX_BYTES); it was not stored`;
  const refusal: CheckpointRefusal = { at: new Date(ctx.now()).toISOString(), attempt, reason };
  await ctx.blobs.put(refusedKey(jobId), Buffer.from(JSON.stringify(refusal)), 'application/json');
  throw new HttpError(413, reason, 'CHECKPOINT_TOO_LARGE', { error_type: 'CheckpointTooLargeError' });
}

/** The chunks the store lacks, each with where to upload it; refused past the size limit. */
export async function uploadAccess(
  ctx: AppContext,
  nodeId: string,
  jobId: string,
  body: { instanceId: string; totalBytes: number; chunks: { hash: string; size: number }[] },
) {
  const run = await requireNodeRun(ctx, nodeId, jobId, body.instanceId);
  if (body.totalBytes > trainingSettings(ctx).checkpointMaxBytes)
    await refuse(ctx, jobId, run.attempt, body.totalBytes);
  const stored = new Set((await ctx.blobs.list(`${jobPrefix(jobId)}chunks/`)).map((b) => b.key));
  const uploads = [];
  for (const c of new Map(body.chunks.map((c) => [c.hash, c])).values()) {
    if (stored.has(chunkKey(jobId, c.hash))) continue;
    uploads.push(await transfer(ctx, 'PUT', jobId, c.hash, body.instanceId));
  }
  return { uploads };
}

/**
 * Writes the manifest once every chunk it names is stored with the right size, keeping each
 * unchanged file's attempt and time, then drops the chunks no file names any more.
 */
export async function commitManifest(
  ctx: AppContext,
  nodeId: string,
  jobId: string,
  body: { instanceId: string; chunkBytes: number; files: CheckpointFileIn[] },
) {
  const run = await requireNodeRun(ctx, nodeId, jobId, body.instanceId);
  const totalBytes = body.files.reduce((n, f) => n + f.size, 0);
  if (totalBytes > trainingSettings(ctx).checkpointMaxBytes)
    await refuse(ctx, jobId, run.attempt, totalBytes);
  const names = new Set<string>();
  for (const f of body.files) {
    if (names.has(f.name)) throw new HttpError(422, `file ${f.name} is listed twice`);
    names.add(f.name);
    if (f.chunks.length !== Math.ceil(f.size / body.chunkBytes))
      throw new HttpError(422, `file ${f.name}: ${f.chunks.length} chunks do not make ${f.size} bytes`);
  }
  const stored = new Map((await ctx.blobs.list(`${jobPrefix(jobId)}chunks/`)).map((b) => [b.key, b.size]));
  for (const f of body.files) {
    for (const [i, h] of f.chunks.entries()) {
      const want = Math.min(body.chunkBytes, f.size - i * body.chunkBytes);
      const have = stored.get(chunkKey(jobId, h));
      if (have !== want)
        throw new ConflictError(
          `chunk ${h} of ${f.name} is ${have === undefined ? 'not stored' : `${have} bytes, not ${want}`}`,
        );
    }
  }
  const before = new Map((await readManifest(ctx, jobId))?.files.map((f) => [f.name, f]) ?? []);
  const now = new Date(ctx.now()).toISOString();
  const files: CheckpointFile[] = body.files.map((f) => {
    const old = before.get(f.name);
    const same = old && old.size === f.size && old.chunks.join() === f.chunks.join();
    return { ...f, attempt: same ? old.attempt : run.attempt, updatedAt: same ? old.updatedAt : now };
  });
  const manifest: CheckpointManifest = { jobId, chunkBytes: body.chunkBytes, updatedAt: now, files };
  await ctx.blobs.put(manifestKey(jobId), Buffer.from(JSON.stringify(manifest)), 'application/json');
  await ctx.blobs.delete(refusedKey(jobId));
  const used = new Set(files.flatMap((f) => f.chunks.map((h) => chunkKey(jobId, h))));
  for (const key of stored.keys()) if (!used.has(key)) await ctx.blobs.delete(key);
  return { files: files.length, totalBytes, updatedAt: now };
}

/** Embedded: a chunk's bytes, checked against its name (the hash) before they are stored. */
export async function putChunk(
  ctx: AppContext,
  nodeId: string,
  jobId: string,
  hash: string,
  instanceId: string,
  body: Buffer | undefined,
) {
  await requireNodeRun(ctx, nodeId, jobId, instanceId);
  const bytes = body ?? Buffer.alloc(0);
  if (createHash('sha256').update(bytes).digest('hex') !== hash)
    throw new HttpError(422, 'the body does not hash to the chunk name');
  await ctx.blobs.put(chunkKey(jobId, hash), bytes, 'application/octet-stream');
  return { hash, size: bytes.length };
}

export async function getChunk(
  ctx: AppContext,
  nodeId: string,
  jobId: string,
  hash: string,
  instanceId: string,
) {
  await requireNodeRun(ctx, nodeId, jobId, instanceId);
  const blob = await ctx.blobs.get(chunkKey(jobId, hash));
  if (!blob) throw new NotFoundError(`chunk ${hash} is not stored`);
  return Buffer.from(blob.body);
}

async function requireJobOf(ctx: AppContext, jobId: string) {
  if (!JOB_ID_RE.test(jobId) || !(await getJob(ctx, jobId)))
    throw new NotFoundError(`Job ${jobId} not found`, 'NOT_FOUND', { error_type: 'JobNotFoundError' });
}

/** GET /jobs/{job_id}/checkpoint */
export async function checkpointListing(ctx: AppContext, jobId: string) {
  await requireJobOf(ctx, jobId);
  const [manifest, refusal] = await Promise.all([readManifest(ctx, jobId), readRefusal(ctx, jobId)]);
  const files = (manifest?.files ?? []).map((f) => ({
    name: f.name,
    size: f.size,
    updated_at: f.updatedAt,
    attempt: f.attempt,
  }));
  return {
    job_id: jobId,
    files,
    total_bytes: files.reduce((n, f) => n + f.size, 0),
    max_bytes: trainingSettings(ctx).checkpointMaxBytes,
    updated_at: manifest?.updatedAt ?? null,
    error: refusal?.reason ?? null,
  };
}

/** Removes everything stored under the job's checkpoint prefix; answers how many files the manifest named. */
export async function clearCheckpoint(ctx: AppContext, jobId: string): Promise<number> {
  const manifest = await readManifest(ctx, jobId);
  // The manifest first: a reader never sees one that names deleted chunks.
  await ctx.blobs.delete(manifestKey(jobId));
  for (const b of await ctx.blobs.list(jobPrefix(jobId))) await ctx.blobs.delete(b.key);
  return manifest?.files.length ?? 0;
}

/** DELETE /jobs/{job_id}/checkpoint: not while a run may be writing it. */
export async function deleteCheckpoint(ctx: AppContext, jobId: string): Promise<number> {
  await requireJobOf(ctx, jobId);
  const job = await getJob(ctx, jobId);
  if (job?.status === 'running')
    throw new ConflictError(`Cannot delete the checkpoint of job ${jobId} while it is running`, 'CONFLICT', {
      error_type: 'JobRunningError',
    });
  return clearCheckpoint(ctx, jobId);
}
