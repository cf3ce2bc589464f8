import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../../functions/adapters/atomic-file.js';
import { LocalBlobs } from '../../../functions/adapters/local-blobs.js';
import { LocalSecrets, SecretsFileError } from '../../../functions/adapters/local-secrets.js';
import { startRuntime } from '../../../local/runtime.js';

const quiet = { LOG_LEVEL: 'SILENT', AWS_ENDPOINT_URL: undefined };

describe('files the embedded runtime writes', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleet-files-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps every one of 200 concurrent secret writes, in one owner-only JSON file', async () => {
    const file = join(dir, 'secrets.json');
    const secrets = new LocalSecrets(file);
    await secrets.open();
    await Promise.all(Array.from({ length: 200 }, (_, i) => secrets.put(`vault/${i}`, `pw-${i}`)));
    await Promise.all(Array.from({ length: 50 }, (_, i) => secrets.delete(`vault/${i * 4}`)));

    const onDisk = JSON.parse(await readFile(file, 'utf8')) as Record<string, string>;
    expect(Object.keys(onDisk)).toHaveLength(150);
    expect(onDisk['vault/1']).toBe('pw-1');
    expect(onDisk['vault/4']).toBeUndefined();
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    // No temp file is left beside it.
    expect(await readdir(dir)).toEqual(['secrets.json']);

    const reopened = new LocalSecrets(file);
    await reopened.open();
    expect(await reopened.list()).toHaveLength(150);
    expect(await reopened.get('vault/199')).toBe('pw-199');
  });

  it('reads the file once for concurrent first calls (none sees an empty set and writes over it)', async () => {
    const file = join(dir, 'secrets.json');
    await writeFile(file, JSON.stringify({ 'api-key': 'k1', 'vault/a': 'x' }));
    const secrets = new LocalSecrets(file);
    await Promise.all([secrets.put('vault/b', 'y'), secrets.get('api-key'), secrets.put('vault/c', 'z')]);
    const onDisk = JSON.parse(await readFile(file, 'utf8')) as Record<string, string>;
    expect(onDisk).toEqual({ 'api-key': 'k1', 'vault/a': 'x', 'vault/b': 'y', 'vault/c': 'z' });
  });

  it.each([
    ['an empty file', '', /is empty/],
    ['whitespace only', '  \n', /is empty/],
    ['a truncated file', '{"api-key":"k', /is not valid JSON/],
    ['a JSON array', '["k"]', /does not hold a JSON object/],
    ['a non-string value', '{"api-key":1}', /holds a value that is not a string/],
  ])('refuses to open %s instead of taking it as no secrets', async (_label, content, message) => {
    const file = join(dir, 'secrets.json');
    await writeFile(file, content);
    const secrets = new LocalSecrets(file);
    const failure = secrets.open();
    await expect(failure).rejects.toBeInstanceOf(SecretsFileError);
    await expect(failure).rejects.toThrow(message);
    // Nothing was written over the damaged file.
    expect(await readFile(file, 'utf8')).toBe(content);
    await expect(secrets.put('x', 'y')).rejects.toBeInstanceOf(SecretsFileError);
    expect(await readFile(file, 'utf8')).toBe(content);
  });

  it('refuses a secrets path it cannot read', async () => {
    const file = join(dir, 'secrets.json');
    await mkdir(file);
    await expect(new LocalSecrets(file).open()).rejects.toThrow(/cannot be read \(EISDIR\)/);
  });

  it('starts with no secrets when the file does not exist yet, and removes temp files a crash left', async () => {
    const file = join(dir, 'secrets.json');
    await writeFile(`${file}.4242.0badc0de.tmp`, '{"half');
    const secrets = new LocalSecrets(file);
    await secrets.open();
    expect(await secrets.list()).toEqual([]);
    expect(await readdir(dir)).toEqual([]);
  });

  it('replaces a file whole: the old content or the new, and no temp file stays', async () => {
    const file = join(dir, 'a', 'b.json');
    await writeFileAtomic(file, 'old');
    await writeFileAtomic(file, 'new');
    expect(await readFile(file, 'utf8')).toBe('new');
    expect(await readdir(join(dir, 'a'))).toEqual(['b.json']);
  });

  it('lists no blob that is still a temp file', async () => {
    const blobs = new LocalBlobs(join(dir, 'artifacts'));
    await blobs.put('runs/1/out.bin', new Uint8Array([1, 2, 3]));
    await writeFile(join(dir, 'artifacts', 'runs', '1', 'out.bin.77.deadbeef.tmp'), 'partial');
    const listed = await blobs.list('runs/');
    expect(listed.map((b) => b.key)).toEqual(['runs/1/out.bin']);
    expect((await blobs.get('runs/1/out.bin'))?.body).toEqual(Buffer.from([1, 2, 3]));
  });

  it('the runtime does not start on an empty secrets file', async () => {
    await writeFile(join(dir, 'secrets.json'), '');
    await expect(startRuntime({ port: 0, dataDir: dir, env: quiet })).rejects.toThrow(
      /secrets\.json is empty/,
    );
    // The data folder's database was closed again: a start after the repair opens it.
    await rm(join(dir, 'secrets.json'));
    const rt = await startRuntime({ port: 0, dataDir: dir, env: quiet });
    await rt.stop();
  });

  it('npm start says which file is damaged and exits 1', async () => {
    await writeFile(join(dir, 'secrets.json'), '{"api-key":');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'local/main.ts', '--data-dir', dir, '--port', '0', '--no-agent'],
      {
        cwd: new URL('../../..', import.meta.url).pathname,
        env: { ...process.env, AWS_ENDPOINT_URL: '', LOG_LEVEL: 'SILENT' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(1);
    expect(out).toContain(`Secrets file ${join(dir, 'secrets.json')} is not valid JSON`);
    expect(out).not.toContain('listening on');
  }, 60_000);
});
