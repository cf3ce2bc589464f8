import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointSync, type CheckpointApi } from '../../../agent/checkpoints.js';
import { ControlPlaneClient } from '../../../agent/client.js';
import { createLogger } from '../../../agent/log.js';
import type { CommandEnvelope, ContainerSpec } from '../../../protocol/commands.js';
import type { ChunkTransfer } from '../../../protocol/checkpoints.js';
import { overrideTrainingSettings } from '../../../functions/training/settings.js';
import type { Runtime } from '../../../local/runtime.js';
import { requireMoto } from '../../harness/services.js';
import { ScriptedAgent } from '../../harness/scripted-agent.js';
import { call, embeddedEnv, emulatorEnv, eventually, jobBody, startTrainingRuntime } from './harness.js';

/**
 * The agent's checkpoint sync (agent/checkpoints.ts, with the agent's own HTTP client) against the
 * control plane's checkpoint routes and the artifacts store: the local folder when embedded
 * (chunks through the agent routes), S3 on moto (presigned URLs). A scripted agent holds the
 * node and takes the container.start commands; the sync works on a temp folder.
 */
const moto = requireMoto();
const modes = [
  { name: 'embedded (agent blob routes)', env: embeddedEnv, skip: false, presigned: false },
  {
    name: `emulator (moto S3, presigned URLs)${moto.available ? '' : ` [skipped: ${moto.reason}]`}`,
    env: emulatorEnv(process.env.AWS_ENDPOINT_URL),
    skip: !moto.available,
    presigned: true,
  },
];

/** The real client, with every call counted (and one upload made to fail on demand). */
class CountingApi implements CheckpointApi {
  uploads: string[] = [];
  downloads: string[] = [];
  commits = 0;
  failUploadAfter: number | null = null;
  constructor(private readonly client: ControlPlaneClient) {}
  checkpointRestore(jobId: string, instanceId: string) {
    return this.client.checkpointRestore(jobId, instanceId);
  }
  checkpointUploads(...args: Parameters<CheckpointApi['checkpointUploads']>) {
    return this.client.checkpointUploads(...args);
  }
  async checkpointCommit(...args: Parameters<CheckpointApi['checkpointCommit']>) {
    await this.client.checkpointCommit(...args);
    this.commits++;
  }
  async checkpointChunk(t: ChunkTransfer, body?: Uint8Array) {
    if (body) {
      if (this.failUploadAfter !== null && this.uploads.length >= this.failUploadAfter)
        throw new Error('connection reset (test)');
      this.uploads.push(t.hash);
    } else this.downloads.push(t.hash);
    return this.client.checkpointChunk(t, body);
  }
}

describe.each(modes)('training checkpoints in the artifacts store, $name', (mode) => {
  let rt: Runtime;
  let agent: ScriptedAgent;
  let other: ScriptedAgent;
  let root: string;
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', write: (l) => void lines.push(l) });
  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
  const clientOf = (a: ScriptedAgent) =>
    new ControlPlaneClient({ baseUrl: rt.url, logger, token: a.token, backoff: { baseMs: 10, maxMs: 50 } });

  beforeAll(async () => {
    if (mode.skip) return;
    rt = await startTrainingRuntime(mode.env);
    overrideTrainingSettings(rt.ctx, { retry: { baseSeconds: 1, maxSeconds: 1 }, webhooks: [] });
    agent = new ScriptedAgent(rt.url, 'ckpt-a', { gpus: 1 });
    await agent.register();
    agent.start(100);
    other = new ScriptedAgent(rt.url, 'ckpt-b', { gpus: 0 });
    await other.register();
    root = await mkdtemp(join(tmpdir(), 'ckpt-it-'));
  });
  afterAll(async () => {
    await agent?.stop();
    await rt?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  const startOf = (jobId: string, attempt: number) =>
    eventually(async () => {
      const s = agent.seen.find(
        (e: CommandEnvelope) =>
          e.command.type === 'container.start' &&
          e.command.spec.env.TRAINING_JOB_ID === jobId &&
          e.command.spec.env.TRAINING_ATTEMPT === String(attempt),
      );
      expect(s).toBeDefined();
      return (s!.command as { spec: ContainerSpec }).spec;
    }, 30_000);
  const createJob = async () => {
    const res = await api(
      'POST',
      '/jobs',
      jobBody({ schedule: null, max_retries: 2, resources: { gpus: 1 } }),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.job_id as string;
  };
  const listing = async (jobId: string) => {
    const res = await api('GET', `/jobs/${jobId}/checkpoint`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body;
  };

  it.skipIf(mode.skip)(
    'uploads changed files only, writes the manifest last, refuses past the size limit, restores elsewhere',
    async () => {
      const jobId = await createJob();
      const spec1 = await startOf(jobId, 1);
      expect(spec1.checkpoint).toMatchObject({ jobId, attempt: 1, containerPath: '/checkpoints/resnet50' });
      const counted = new CountingApi(clientOf(agent));
      const sync = new CheckpointSync({ api: counted, logger, root: join(root, 'node-a') });
      const placed = sync.place(spec1);
      const dirA = join(root, 'node-a', jobId);
      expect(placed.volumes).toEqual([
        { hostPath: dirA, containerPath: '/checkpoints/resnet50', readOnly: false },
      ]);

      // Nothing stored yet: the restore writes nothing.
      expect(await sync.restore(placed)).toEqual({ files: 0, bytes: 0 });
      expect(await listing(jobId)).toMatchObject({
        files: [],
        total_bytes: 0,
        updated_at: null,
        error: null,
      });

      // A file bigger than a chunk (1 MiB through the API, 8 MiB presigned) and two small ones.
      const big = Buffer.alloc(9 * 1024 * 1024 + 5, 7);
      await mkdir(join(dirA, 'model'), { recursive: true });
      await writeFile(join(dirA, 'model', 'weights.bin'), big);
      await writeFile(join(dirA, 'step'), '3\n');
      await writeFile(join(dirA, 'notes.txt'), 'hello\n');
      expect(await sync.sync(spec1.instanceId)).toBe('stored');
      // The big file's identical full chunks are sent once, then its short last one; each small file is one chunk.
      expect(new Set(counted.uploads).size).toBe(counted.uploads.length);
      expect(counted.uploads).toHaveLength(4);
      const first = await listing(jobId);
      expect(first.files.map((f: Record<string, unknown>) => [f.name, f.size, f.attempt])).toEqual([
        ['model/weights.bin', big.length, 1],
        ['notes.txt', 6, 1],
        ['step', 2, 1],
      ]);
      expect(first.total_bytes).toBe(big.length + 8);

      // Nothing changed: no request at all beyond reading the folder.
      counted.uploads = [];
      expect(await sync.sync(spec1.instanceId)).toBe('unchanged');
      expect(counted.uploads).toEqual([]);

      // One small file changed: only its chunk goes up.
      await writeFile(join(dirA, 'step'), '5\n');
      expect(await sync.sync(spec1.instanceId)).toBe('stored');
      expect(counted.uploads).toHaveLength(1);
      const second = await listing(jobId);
      expect(second.files.find((f: { name: string }) => f.name === 'step').size).toBe(2);

      // An upload cut short leaves the stored checkpoint as it was: the manifest comes last.
      counted.uploads = [];
      counted.failUploadAfter = 0;
      await writeFile(join(dirA, 'step'), '6\n');
      await writeFile(join(dirA, 'extra.txt'), 'new file\n');
      const commitsBefore = counted.commits;
      expect(await sync.sync(spec1.instanceId)).toBe('failed');
      expect(counted.commits).toBe(commitsBefore);
      expect(await listing(jobId)).toEqual(second);
      // Back to step 5, as stored.
      await rm(join(dirA, 'extra.txt'));
      await writeFile(join(dirA, 'step'), '5\n');
      counted.failUploadAfter = null;

      // Past the size limit: refused with a clear error in the listing and the agent's log; nothing replaced.
      overrideTrainingSettings(rt.ctx, { checkpointMaxBytes: big.length });
      lines.length = 0;
      await writeFile(join(dirA, 'more.bin'), Buffer.alloc(100, 1));
      expect(await sync.sync(spec1.instanceId)).toBe('refused');
      const refused = await listing(jobId);
      expect(refused.error).toBe(
        `checkpoint of ${big.length + 108} bytes is over this job's limit of ${big.length} bytes (TRAINING_CHECKPOINT_MAX_BYTES); it was not stored`,
      );
      expect(refused.files).toEqual(second.files);
      expect(refused.max_bytes).toBe(big.length);
      expect(lines.filter((l) => l.includes('checkpoint not stored: over the size limit'))).toHaveLength(1);
      await rm(join(dirA, 'more.bin'));
      overrideTrainingSettings(rt.ctx, { checkpointMaxBytes: 20 * 1024 ** 3 });

      // Another node cannot read or write this run's checkpoint; keys stay under the job.
      const stranger = clientOf(other);
      await expect(stranger.checkpointRestore(jobId, spec1.instanceId)).rejects.toMatchObject({
        status: 403,
      });
      const bad = await call(
        rt.url,
        'POST',
        `/agent/checkpoints/..%2F..%2Fx/restore`,
        { instanceId: spec1.instanceId },
        agent.auth,
      );
      expect([403, 404]).toContain(bad.status);
      const badHash = await call(
        rt.url,
        'GET',
        `/agent/checkpoints/${jobId}/runs/${spec1.instanceId}/chunks/..%2Fmanifest.json`,
        undefined,
        agent.auth,
      );
      expect(badHash.status).toBe(422);

      // Attempt 1 fails; attempt 2 restores step 5 into another node folder and adds its own file.
      expect(
        (
          await agent.events([
            {
              type: 'container.exited',
              instanceId: spec1.instanceId,
              kind: 'run',
              exitCode: 1,
              logTail: 'x',
              at: new Date().toISOString(),
            },
          ])
        ).status,
      ).toBe(200);
      // The ended attempt's access is gone.
      await writeFile(join(dirA, 'step'), '6\n');
      await eventually(async () => expect(await sync.sync(spec1.instanceId)).toBe('gone'));
      const spec2 = await startOf(jobId, 2);
      const counted2 = new CountingApi(clientOf(agent));
      const syncB = new CheckpointSync({ api: counted2, logger, root: join(root, 'node-b') });
      const placed2 = syncB.place(spec2);
      const dirB = join(root, 'node-b', jobId);
      expect(await syncB.restore(placed2)).toEqual({ files: 3, bytes: big.length + 8 });
      expect(await readFile(join(dirB, 'step'), 'utf8')).toBe('5\n');
      expect((await readFile(join(dirB, 'model', 'weights.bin'))).equals(big)).toBe(true);
      await writeFile(join(dirB, 'step'), '8\n');
      expect(await syncB.sync(spec2.instanceId)).toBe('stored');
      expect(counted2.uploads).toHaveLength(1);
      const third = await listing(jobId);
      expect(third.files.map((f: Record<string, unknown>) => [f.name, f.attempt])).toEqual([
        ['model/weights.bin', 1],
        ['notes.txt', 1],
        ['step', 2],
      ]);

      // DELETE clears it; deleting the job takes it along.
      expect((await api('DELETE', `/jobs/${jobId}/checkpoint`)).status).toBe(409); // running
      await agent.events([
        {
          type: 'container.exited',
          instanceId: spec2.instanceId,
          kind: 'run',
          exitCode: 0,
          logTail: 'ok',
          at: new Date().toISOString(),
        },
      ]);
      await eventually(async () =>
        expect((await api('GET', `/jobs/${jobId}`)).body.status).toBe('completed'),
      );
      expect((await api('DELETE', `/jobs/${jobId}/checkpoint`)).status).toBe(204);
      expect(await listing(jobId)).toMatchObject({ files: [], updated_at: null });
      expect(await rt.ctx.blobs.list(`checkpoints/${jobId}/`)).toEqual([]);

      const job2 = await createJob();
      const s = await startOf(job2, 1);
      const sync3 = new CheckpointSync({ api: clientOf(agent), logger, root: join(root, 'node-a') });
      await sync3.restore(sync3.place(s));
      await writeFile(join(root, 'node-a', job2, 'step'), '1\n');
      await mkdir(join(root, 'node-a', job2, 'sub'));
      await writeFile(join(root, 'node-a', job2, 'sub', 'x'), 'nested\n');
      expect(await sync3.sync(s.instanceId)).toBe('stored');
      // Two chunks and the manifest.
      expect((await rt.ctx.blobs.list(`checkpoints/${job2}/`)).length).toBe(3);

      // A folder a container replaced by a link is not written through on restore.
      const outside = join(root, 'outside');
      await mkdir(outside);
      await mkdir(join(root, 'node-c', job2), { recursive: true });
      await symlink(outside, join(root, 'node-c', job2, 'sub'));
      const syncC = new CheckpointSync({ api: clientOf(agent), logger, root: join(root, 'node-c') });
      await expect(syncC.restore(syncC.place(s))).rejects.toThrow('not a folder');
      expect(await readdir(outside)).toEqual([]);
      await agent.events([
        {
          type: 'container.exited',
          instanceId: s.instanceId,
          kind: 'run',
          exitCode: 0,
          logTail: 'ok',
          at: new Date().toISOString(),
        },
      ]);
      await eventually(async () => expect((await api('GET', `/jobs/${job2}`)).body.status).toBe('completed'));
      expect((await api('DELETE', `/jobs/${job2}`)).status).toBe(204);
      expect(await rt.ctx.blobs.list(`checkpoints/${job2}/`)).toEqual([]);
      expect((await api('GET', `/jobs/${job2}/checkpoint`)).status).toBe(404);
    },
    120_000,
  );

  it.skipIf(mode.skip)(
    'a chunk changed in the store is refused on restore: nothing is written',
    async () => {
      const jobId = await createJob();
      const spec = await startOf(jobId, 1);
      const sync = new CheckpointSync({ api: clientOf(agent), logger, root: join(root, 'tamper-a') });
      const placed = sync.place(spec);
      await sync.restore(placed);
      const body = Buffer.from('step 7\n');
      await writeFile(join(root, 'tamper-a', jobId, 'step'), body);
      expect(await sync.sync(spec.instanceId)).toBe('stored');
      const hash = createHash('sha256').update(body).digest('hex');
      const key = `checkpoints/${jobId}/chunks/${hash}`;
      expect((await rt.ctx.blobs.list(`checkpoints/${jobId}/chunks/`)).map((b) => b.key)).toEqual([key]);

      // Someone with access to the bucket swaps the chunk's bytes (same length).
      await rt.ctx.blobs.put(key, Buffer.from('step 9\n'));
      const other = new CheckpointSync({ api: clientOf(agent), logger, root: join(root, 'tamper-b') });
      await expect(other.restore(other.place(spec))).rejects.toThrow(`chunk ${hash} arrived corrupt`);
      expect(await readdir(join(root, 'tamper-b', jobId))).toEqual([]);
      await agent.events([
        {
          type: 'container.exited',
          instanceId: spec.instanceId,
          kind: 'run',
          exitCode: 0,
          logTail: 'ok',
          at: new Date().toISOString(),
        },
      ]);
    },
    60_000,
  );

  // S3 only: the presigned upload itself.
  (mode.presigned ? it.skipIf(mode.skip) : undefined)?.(
    'another body sent through a chunk’s presigned URL is refused by S3, or by the restore where the store took it',
    async () => {
      const jobId = await createJob();
      const spec = await startOf(jobId, 1);
      const body = Buffer.from('step 3\n');
      const hash = createHash('sha256').update(body).digest('hex');
      const client = clientOf(agent);
      const [upload] = (
        await client.checkpointUploads(jobId, {
          instanceId: spec.instanceId,
          totalBytes: body.length,
          chunks: [{ hash, size: body.length }],
        })
      ).uploads;
      // A broken (or hostile) uploader sends other bytes with the signed checksum headers.
      const wrong = await fetch(upload!.url, {
        method: 'PUT',
        headers: upload!.headers,
        body: Buffer.from('step 4\n'),
      });
      // AWS S3 answers 400 BadDigest. moto 5.2.6 stores the body as it came (its PutObject keeps
      // the x-amz-checksum-sha256 value it is given unverified, and does not check presigned
      // signatures): then the sync sees the chunk as present, and the restore must refuse it.
      const sync = new CheckpointSync({ api: client, logger, root: join(root, 'digest-a') });
      await sync.restore(sync.place(spec));
      await writeFile(join(root, 'digest-a', jobId, 'step'), body);
      expect(await sync.sync(spec.instanceId)).toBe('stored');
      const other = new CheckpointSync({ api: client, logger, root: join(root, 'digest-b') });
      if (wrong.ok) {
        await expect(other.restore(other.place(spec))).rejects.toThrow(`chunk ${hash} arrived corrupt`);
        expect(await readdir(join(root, 'digest-b', jobId))).toEqual([]);
      } else {
        expect(wrong.status).toBe(400);
        expect(await other.restore(other.place(spec))).toEqual({ files: 1, bytes: body.length });
        expect(await readFile(join(root, 'digest-b', jobId, 'step'))).toEqual(body);
      }
      await agent.events([
        {
          type: 'container.exited',
          instanceId: spec.instanceId,
          kind: 'run',
          exitCode: 0,
          logTail: 'ok',
          at: new Date().toISOString(),
        },
      ]);
    },
    60_000,
  );

  // Only S3 hands out URLs: the embedded mode has no such test (rather than a skipped one).
  const onS3 = mode.presigned ? it.skipIf(mode.skip) : undefined;
  onS3?.(
    'hands out presigned URLs on S3, never credentials',
    async () => {
      const jobId = await createJob();
      const spec = await startOf(jobId, 1);
      const res = await call(
        rt.url,
        'POST',
        `/agent/checkpoints/${jobId}/uploads`,
        {
          instanceId: spec.instanceId,
          totalBytes: 3,
          chunks: [{ hash: 'a'.repeat(64), size: 3 }],
        },
        agent.auth,
      );
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const url = new URL(res.body.uploads[0].url);
      expect(url.origin).toBe(new URL(process.env.AWS_ENDPOINT_URL!).origin);
      expect(url.pathname.endsWith(`/checkpoints/${jobId}/chunks/${'a'.repeat(64)}`)).toBe(true);
      expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
      expect(Number(url.searchParams.get('X-Amz-Expires'))).toBe(900);
      // A signature and the signer's key id, never a secret.
      expect(Object.keys(res.body)).toEqual(['uploads']);
      expect([...url.searchParams.keys()].every((k) => k.toLowerCase().startsWith('x-amz-'))).toBe(true);
      expect(JSON.stringify(res.body)).not.toMatch(/secret|sessionToken/i);
      // The chunk's SHA-256 is signed into the upload: the agent must send it, and S3 refuses another body.
      expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe(
        'host;x-amz-checksum-sha256;x-amz-sdk-checksum-algorithm',
      );
      expect(res.body.uploads[0].headers).toEqual({
        'x-amz-checksum-sha256': Buffer.from('a'.repeat(64), 'hex').toString('base64'),
        'x-amz-sdk-checksum-algorithm': 'SHA256',
      });
      await agent.events([
        {
          type: 'container.exited',
          instanceId: spec.instanceId,
          kind: 'run',
          exitCode: 0,
          logTail: 'ok',
          at: new Date().toISOString(),
        },
      ]);
    },
    60_000,
  );
});
