import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_LABELS, CheckpointSync, hashFile, listFiles } from '../../../agent/checkpoints.js';
import { ControlPlaneClient } from '../../../agent/client.js';
import { createLogger } from '../../../agent/log.js';
import { isSafeCheckpointName } from '../../../protocol/checkpoints.js';
import { containerSpec } from '../../../protocol/commands.js';

const logger = createLogger({ level: 'error', write: () => undefined });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('checkpoint file names', () => {
  it('takes relative paths and refuses anything that could leave the folder', () => {
    for (const ok of ['step', 'model/weights.pt', 'a/b/c.json', '.hidden', 'x..y'])
      expect(isSafeCheckpointName(ok), ok).toBe(true);
    for (const bad of [
      '',
      '/etc/passwd',
      '../x',
      'a/../../x',
      'a/./b',
      'a//b',
      'a/',
      'a\\b',
      'nul\0',
      'x'.repeat(513),
    ])
      expect(isSafeCheckpointName(bad), JSON.stringify(bad)).toBe(false);
  });
});

describe('the checkpoint folder as the sync reads it', () => {
  let dir: string;
  let outside: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ckpt-unit-'));
    outside = await mkdtemp(join(tmpdir(), 'ckpt-outside-'));
    await writeFile(join(outside, 'secret'), 'not for the store');
    await mkdir(join(dir, 'model'));
    await writeFile(join(dir, 'model', 'w.bin'), Buffer.alloc(2500, 3));
    await writeFile(join(dir, 'step'), '5\n');
    await writeFile(join(dir, 'step.fleet-0a1b2c3d.part'), 'half a download');
    // Links a container may leave behind are never followed.
    await symlink(join(outside, 'secret'), join(dir, 'link-to-file'));
    await symlink(outside, join(dir, 'link-to-folder'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('lists regular files only, with / names, sorted; links and partial downloads are left out', async () => {
    expect(await listFiles(dir)).toEqual(['model/w.bin', 'step']);
  });

  it('cuts a file in chunks of the given size, each named by its SHA-256', async () => {
    const h = await hashFile(join(dir, 'model', 'w.bin'), 1000);
    expect(h.size).toBe(2500);
    expect(h.chunks).toEqual([
      sha(Buffer.alloc(1000, 3)),
      sha(Buffer.alloc(1000, 3)),
      sha(Buffer.alloc(500, 3)),
    ]);
    expect(await hashFile(join(dir, 'step'), 1000)).toEqual({ size: 2, chunks: [sha(Buffer.from('5\n'))] });
    await expect(hashFile(join(dir, 'link-to-file'), 1000)).rejects.toThrow('not a regular file');
  });
});

describe('where a run’s checkpoint folder lies on this node', () => {
  const spec = containerSpec.parse({
    instanceId: 'train-0a1b2c3d-20260115020000000-a2',
    imageId: 'busybox',
    name: 'train-0a1b2c3d-20260115020000000-a2',
    kind: 'run',
    volumes: [{ hostPath: '/var/lib/fleet/checkpoints/train-0a1b2c3d', containerPath: '/ckpt' }],
    checkpoint: { jobId: 'train-0a1b2c3d', attempt: 2, containerPath: '/ckpt', syncSeconds: 30 },
  });
  const client = new ControlPlaneClient({ baseUrl: 'http://127.0.0.1:9', logger });

  it("keeps the control plane's folder unless the node has a root of its own, and labels the container", () => {
    const plain = new CheckpointSync({ api: client, logger }).place(spec);
    expect(plain.volumes).toEqual(spec.volumes);
    const own = new CheckpointSync({ api: client, logger, root: '/data/ckpt' }).place(spec);
    expect(own.volumes).toEqual([
      { hostPath: '/data/ckpt/train-0a1b2c3d', containerPath: '/ckpt', readOnly: false },
    ]);
    expect(own.labels).toEqual({
      [CHECKPOINT_LABELS.dir]: '/data/ckpt/train-0a1b2c3d',
      [CHECKPOINT_LABELS.job]: 'train-0a1b2c3d',
      [CHECKPOINT_LABELS.attempt]: '2',
      [CHECKPOINT_LABELS.containerPath]: '/ckpt',
      [CHECKPOINT_LABELS.syncSeconds]: '30',
    });
  });

  it('leaves a spec without a checkpoint as it is', () => {
    const { checkpoint: _, ...service } = spec;
    const placed = new CheckpointSync({ api: client, logger, root: '/data/ckpt' }).place({
      ...service,
      kind: 'service',
    });
    expect(placed).toEqual({ ...service, kind: 'service' });
  });
});
