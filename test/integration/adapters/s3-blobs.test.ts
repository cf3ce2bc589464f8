import { afterAll, beforeAll, expect, it } from 'vitest';
import { resetAwsClients } from '../../../functions/adapters/aws-clients.js';
import { S3Blobs } from '../../../functions/adapters/s3-blobs.js';
import { describeWithMoto, resetMoto, testConfig } from '../../harness/services.js';

const bytes = (s: string) => new TextEncoder().encode(s);

describeWithMoto('S3Blobs against the AWS emulator', () => {
  let blobs: S3Blobs;

  beforeAll(async () => {
    await resetMoto();
    blobs = new S3Blobs(testConfig());
    await blobs.ensure();
    await blobs.ensure(); // idempotent
  });

  afterAll(() => resetAwsClients());

  it('round-trips bytes and content type', async () => {
    const body = new Uint8Array([0, 1, 2, 250, 255, ...bytes('weights')]);
    await blobs.put('models/m-1/weights.bin', body, 'application/octet-stream');
    const got = await blobs.get('models/m-1/weights.bin');
    expect(got?.contentType).toBe('application/octet-stream');
    expect(Array.from(got!.body)).toEqual(Array.from(body));
  });

  it('get answers undefined for a missing key', async () => {
    expect(await blobs.get('models/none')).toBeUndefined();
  });

  it('lists a prefix with sizes and times, across pages', async () => {
    await blobs.put('logs/a.txt', bytes('hello'), 'text/plain');
    await blobs.put('logs/b.txt', bytes('hello world'), 'text/plain');
    await blobs.put('other/c.txt', bytes('x'));
    const listed = await blobs.list('logs/');
    expect(listed.map(({ key, size }) => ({ key, size }))).toEqual([
      { key: 'logs/a.txt', size: 5 },
      { key: 'logs/b.txt', size: 11 },
    ]);
    for (const b of listed) expect(Date.now() - Date.parse(b.modifiedAt)).toBeLessThan(60_000);

    // ListObjectsV2 pages at 1000 keys.
    const keys = Array.from({ length: 1005 }, (_, i) => `bulk/${String(i).padStart(4, '0')}`);
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(keys.slice(i, i + 50).map((k) => blobs.put(k, bytes(k))));
    }
    const bulk = await blobs.list('bulk/');
    expect(bulk.map((b) => b.key)).toEqual(keys);
  });

  it('delete reports whether the key existed', async () => {
    await blobs.put('tmp/x', bytes('x'));
    expect(await blobs.delete('tmp/x')).toBe(true);
    expect(await blobs.get('tmp/x')).toBeUndefined();
    expect(await blobs.delete('tmp/x')).toBe(false);
  });

  it('ping answers for the bucket and fails for a missing one', async () => {
    await blobs.ping();
    await expect(new S3Blobs(testConfig()).ping()).rejects.toBeDefined();
  });
});
