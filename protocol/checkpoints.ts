import * as z from 'zod';

/**
 * Training checkpoints in the artifacts store: what the agent and the control plane exchange to
 * restore a run's checkpoint folder and to upload it. Content-addressed: files are cut in chunks,
 * each stored once under its SHA-256; the manifest (names → chunks) is written last, by the
 * control plane, only once every chunk it names is stored, so a partial upload never replaces a
 * good checkpoint.
 */

export const CHUNK_HASH = /^[0-9a-f]{64}$/;
export const chunkHash = z.string().regex(CHUNK_HASH, 'a SHA-256 in lowercase hex');

/** At most this many files in one checkpoint; the size limit is the job's setting. */
export const MAX_CHECKPOINT_FILES = 10_000;

/**
 * A relative path under the checkpoint folder, `/`-separated, with no `.`/`..`/empty segment, no
 * backslash or NUL: the agent writes it under the run's folder on restore, so it can never escape it.
 */
export function isSafeCheckpointName(name: string): boolean {
  if (!name || name.length > 512 || name.startsWith('/') || /[\\\0]/.test(name)) return false;
  return name.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}
export const checkpointName = z
  .string()
  .refine(isSafeCheckpointName, 'a relative path with no . or .. segment');

/** One file of a checkpoint as the agent proposes it. */
export const checkpointFileIn = z.object({
  name: checkpointName,
  size: z.number().int().nonnegative(),
  chunks: z.array(chunkHash).max(100_000),
});
export type CheckpointFileIn = z.infer<typeof checkpointFileIn>;

/** One file as stored in the manifest: with the attempt that wrote this content, and when. */
export const checkpointFile = checkpointFileIn.extend({
  attempt: z.number().int().positive(),
  updatedAt: z.string(),
});
export type CheckpointFile = z.infer<typeof checkpointFile>;

export const checkpointManifest = z.object({
  jobId: z.string(),
  chunkBytes: z.number().int().positive(),
  updatedAt: z.string(),
  files: z.array(checkpointFile),
});
export type CheckpointManifest = z.infer<typeof checkpointManifest>;

/**
 * Where to send or fetch one chunk: a presigned URL (absolute, used without the node's
 * credential) or an agent route of the control plane (a path, used with it).
 */
export const chunkTransfer = z.object({
  hash: chunkHash,
  url: z.string(),
  headers: z.record(z.string(), z.string()).default({}),
});
export type ChunkTransfer = z.infer<typeof chunkTransfer>;

/** Every agent call names the run (its container's instance id): access is that run's only. */
export const checkpointRunRequest = z.object({ instanceId: z.string().min(1).max(128) });

/** POST /agent/checkpoints/{job_id}/restore */
export const checkpointRestoreResponse = z.object({
  chunkBytes: z.number().int().positive(),
  maxBytes: z.number().int().positive(),
  manifest: checkpointManifest.nullable(),
  downloads: z.array(chunkTransfer),
});
export type CheckpointRestoreResponse = z.infer<typeof checkpointRestoreResponse>;

/** POST /agent/checkpoints/{job_id}/uploads: the chunks the agent is about to need. */
export const checkpointUploadsRequest = checkpointRunRequest.extend({
  /** The whole checkpoint's size once written (checked against the job's limit before any upload). */
  totalBytes: z.number().int().nonnegative(),
  chunks: z.array(z.object({ hash: chunkHash, size: z.number().int().nonnegative() })).max(10_000),
});
export const checkpointUploadsResponse = z.object({
  /** Only the chunks the store does not hold yet. */
  uploads: z.array(chunkTransfer),
});
export type CheckpointUploadsResponse = z.infer<typeof checkpointUploadsResponse>;

/** PUT /agent/checkpoints/{job_id}/manifest */
export const checkpointCommitRequest = checkpointRunRequest.extend({
  chunkBytes: z.number().int().positive(),
  files: z.array(checkpointFileIn).max(MAX_CHECKPOINT_FILES),
});
export const checkpointCommitResponse = z.object({
  files: z.number().int().nonnegative(),
  totalBytes: z.number().int().nonnegative(),
  updatedAt: z.string(),
});

/**
 * What a container.start spec carries for a training run: the folder the agent restores before
 * the start and uploads while it runs (the volume mounted at `containerPath`).
 */
export const checkpointSpec = z.object({
  jobId: z.string().min(1).max(64),
  attempt: z.number().int().positive(),
  containerPath: z.string().startsWith('/'),
  syncSeconds: z.number().int().positive(),
});
export type CheckpointSpec = z.infer<typeof checkpointSpec>;
