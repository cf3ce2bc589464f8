import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pinnedNode } from '../../../../functions/system/install.js';
import { copyForeignLibraries, sharedLibraries } from '../../../../scripts/agent-image.js';

/**
 * The multi-arch image build finds a foreign node's libraries from its ELF headers (ldd cannot run
 * it). Checked on this machine's node with / as the "sysroot": the same files ldd names.
 */
describe('agent image: libraries from ELF headers', () => {
  const dirs: string[] = [];
  afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it("finds what ldd finds, and copies each to its path under the image's root", async () => {
    const node = pinnedNode()!.binary;
    const root = await mkdtemp(join(tmpdir(), 'fleet-libs-'));
    dirs.push(root);
    const copied = await copyForeignLibraries(node, '/', root);
    const viaLdd = await sharedLibraries(node);
    // The loader can be named twice (the interpreter's /lib64 path, and libc's NEEDED entry found in
    // the library folder): both are copied. ldd names each library once.
    const base = (p: string) => p.split('/').at(-1)!;
    expect([...new Set(copied.map(base))].sort()).toEqual(viaLdd.map(base).sort());
    expect(copied.length).toBeGreaterThanOrEqual(4);
    for (const path of copied) expect(await readdir(join(root, path, '..'))).toContain(base(path));
  });

  it('names the library it cannot find', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'fleet-sysroot-'));
    dirs.push(empty);
    const root = await mkdtemp(join(tmpdir(), 'fleet-libs-'));
    dirs.push(root);
    await expect(copyForeignLibraries(pinnedNode()!.binary, empty, root)).rejects.toThrow(
      /is not in .*'s library folders|ENOENT/,
    );
  });
});
