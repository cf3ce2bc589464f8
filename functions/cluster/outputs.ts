import type { AppContext } from '../core/context.js';
import type { BlobInfo } from '../ports/blobs.js';
import { isSafeFilename } from './validation.js';

/** Generated files live in blobs under `outputs/` and are served from /api/vision/outputs/{filename}. */
export const OUTPUTS_PREFIX = 'outputs/';
export const LORAS_PREFIX = 'loras/';

/** Where the agent routes park a large task event's file until the task's handler moves it to outputs/. */
export const agentEventBlobKey = (nodeId: string, taskId: string, index: number) =>
  `agent-events/${nodeId}/${taskId}/${index}`;

export const outputUrl = (filename: string) => `/api/vision/outputs/${encodeURIComponent(filename)}`;

const CONTENT_TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  gif: 'image/gif',
  json: 'application/json',
  txt: 'text/plain; charset=utf-8',
  mp4: 'video/mp4',
  wav: 'audio/wav',
};

/** Every content type an output is served with. */
export const OUTPUT_CONTENT_TYPES = [
  ...new Set([...Object.values(CONTENT_TYPES), 'application/octet-stream']),
];

/** From the name's extension only: a node or model server never chooses how a stored file is served. */
export function contentTypeOf(filename: string): string {
  const ext = filename.split('.').pop()?.toLowerCase() ?? '';
  return CONTENT_TYPES[ext] ?? 'application/octet-stream';
}

/**
 * The stored name of a task's file: the task id in front keeps names from two tasks apart, and
 * only safe characters survive (the agent's name is untrusted input).
 */
export function outputName(taskId: string, agentName: string): string {
  const base = agentName.split(/[\\/]/).pop() ?? 'output';
  const clean =
    base
      .replace(/[^A-Za-z0-9._-]/g, '_')
      .replace(/\.{2,}/g, '.')
      .replace(/^[._-]+/, '')
      .slice(-80) || 'output';
  const name = `${taskId}_${clean}`;
  return isSafeFilename(name) ? name : `${taskId}_output`;
}

export interface OutputFile {
  filename: string;
  url: string;
  size: number;
  created_at: string;
}

const toOutput = (b: BlobInfo): OutputFile => {
  const filename = b.key.slice(OUTPUTS_PREFIX.length);
  return { filename, url: outputUrl(filename), size: b.size, created_at: b.modifiedAt };
};

/** Newest first. Only direct children: nothing under outputs/ has another folder. */
export async function listOutputs(ctx: AppContext): Promise<OutputFile[]> {
  const blobs = await ctx.blobs.list(OUTPUTS_PREFIX);
  return blobs
    .filter((b) => !b.key.slice(OUTPUTS_PREFIX.length).includes('/'))
    .map(toOutput)
    .sort((a, b) =>
      a.created_at < b.created_at
        ? 1
        : a.created_at > b.created_at
          ? -1
          : a.filename.localeCompare(b.filename),
    );
}

export async function putOutput(ctx: AppContext, filename: string, body: Uint8Array): Promise<void> {
  await ctx.blobs.put(OUTPUTS_PREFIX + filename, body, contentTypeOf(filename));
}

/** The content type comes from the allowlist by extension, whatever was stored with the blob. */
export async function getOutput(
  ctx: AppContext,
  filename: string,
): Promise<{ body: Uint8Array; contentType: string } | undefined> {
  const blob = await ctx.blobs.get(OUTPUTS_PREFIX + filename);
  return blob ? { body: blob.body, contentType: contentTypeOf(filename) } : undefined;
}

export async function deleteOutput(ctx: AppContext, filename: string): Promise<boolean> {
  return ctx.blobs.delete(OUTPUTS_PREFIX + filename);
}

export async function clearOutputs(ctx: AppContext): Promise<number> {
  const all = await listOutputs(ctx);
  let n = 0;
  for (const o of all) if (await deleteOutput(ctx, o.filename)) n++;
  return n;
}
