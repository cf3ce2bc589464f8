/**
 * The registry client against a real Docker Registry (REGISTRY_URL, .ci/services.sh): repositories
 * and tags are uploaded through the registry's own HTTP API, then read back in pages of two.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { HttpError } from '../../../../functions/core/errors.js';
import { nextLink, RegistryClient, type RegistryTarget } from '../../../../functions/commander/build/registry.js';
import { describeWith, requireRegistry, uniqueName } from '../../../harness/services.js';

const target = (url: string): RegistryTarget => ({
  url: new URL(url),
  host: new URL(url).host,
  insecure: true,
});
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Pushes a blob monolithically (POST then PUT ?digest=). */
async function pushBlob(base: string, name: string, data: Buffer): Promise<string> {
  const digest = sha(data);
  const start = await fetch(`${base}/v2/${name}/blobs/uploads/`, { method: 'POST' });
  expect(start.status).toBe(202);
  const location = new URL(start.headers.get('location')!, base);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, {
    method: 'PUT',
    body: data,
    headers: { 'content-type': 'application/octet-stream' },
  });
  expect(put.status, await put.clone().text()).toBe(201);
  return digest;
}

async function pushTag(base: string, name: string, tag: string): Promise<void> {
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, tag }),
  );
  const layer = Buffer.from(`layer of ${name}:${tag}`);
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: {
      mediaType: 'application/vnd.docker.container.image.v1+json',
      size: config.length,
      digest: await pushBlob(base, name, config),
    },
    layers: [
      {
        mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
        size: layer.length,
        digest: await pushBlob(base, name, layer),
      },
    ],
  };
  const res = await fetch(`${base}/v2/${name}/manifests/${tag}`, {
    method: 'PUT',
    body: JSON.stringify(manifest),
    headers: { 'content-type': manifest.mediaType },
  });
  expect(res.status, await res.clone().text()).toBe(201);
}

describeWith(requireRegistry(), 'RegistryClient against a real registry', () => {
  const base = () => process.env.REGISTRY_URL!.replace(/\/+$/, '');

  it('follows Link pagination through the catalogue and the tags', async () => {
    const prefix = `unit/${uniqueName('reg')}`;
    const names = ['a', 'b', 'c'].map((x) => `${prefix}-${x}`);
    for (const n of names) for (const t of ['t1', 't2', 't3']) await pushTag(base(), n, t);
    const asked: string[] = [];
    const client = new RegistryClient(target(base()), undefined, 10_000, {
      pageSize: 2,
      allowlist: new URL(base()).hostname,
      fetch: (url, init) => {
        asked.push(String(url));
        return fetch(url, init);
      },
    });
    // The registry's tag order is its own: compared sorted.
    const images = (await client.images())
      .filter((i) => i.name.startsWith(prefix))
      .map((i) => ({ ...i, tags: [...i.tags].sort() }));
    expect(images).toEqual(
      names.map((name) => ({
        name,
        tags: ['t1', 't2', 't3'],
        full_image: `${new URL(base()).host}/${name}`,
      })),
    );
    // At least three repositories in pages of two: the catalogue's Link was followed. (Registry 2.8
    // answers tags/list in one page whatever n says; the same Link code serves both lists.)
    const catalogPages = asked.filter((u) => u.includes('/v2/_catalog'));
    expect(catalogPages.length).toBeGreaterThanOrEqual(2);
    expect(catalogPages.slice(1).every((u) => /[?&]last=/.test(u))).toBe(true);
  });

  it('answers a repository the registry does not know with no tags', async () => {
    const client = new RegistryClient(target(base()), undefined, 10_000, {
      allowlist: new URL(base()).hostname,
    });
    expect(await client.tags(`unit/${uniqueName('absent')}`)).toEqual([]);
  });
});

describe('RegistryClient failures and Link parsing', () => {
  it('an unreachable registry is a 503 naming it', async () => {
    const client = new RegistryClient(target('http://127.0.0.1:1'), 'user:secret-password', 2_000, {
      allowlist: '127.0.0.1',
    });
    const error = await client.images().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).status).toBe(503);
    expect((error as HttpError).message).toMatch(/registry at 127\.0\.0\.1:1 is unreachable/);
    expect((error as HttpError).message).not.toContain('secret-password');
  });

  it('reaches a registry on loopback only when the allowlist names it, follows no redirect, and checks the resolved address', async () => {
    const asked: string[] = [];
    const server = createServer((req, res) => {
      asked.push(req.url ?? '');
      if (req.url?.startsWith('/v2/_catalog?n=100')) {
        res.writeHead(307, { location: 'http://169.254.169.254/latest/meta-data/' });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ repositories: ['only'] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const errorOf = async (client: RegistryClient): Promise<HttpError> => {
        const outcome = await client.images().catch((e: unknown) => e);
        expect(outcome).toBeInstanceOf(HttpError);
        return outcome as HttpError;
      };
      // Refused before any connection: no allowlist entry.
      const refused = await errorOf(new RegistryClient(target(`http://127.0.0.1:${port}`), undefined, 2_000));
      expect(refused).toMatchObject({ status: 503 });
      expect(refused.message).toMatch(
        /127\.0\.0\.1 is a loopback address \(OUTBOUND_ALLOWLIST may name it\)/,
      );
      // A name that resolves to loopback is judged by its address at connection time.
      const byName = await errorOf(new RegistryClient(target(`http://localhost:${port}`), undefined, 2_000));
      expect(byName).toMatchObject({ status: 503 });
      expect(byName.message).toMatch(/localhost resolves to .*loopback address/);
      expect(asked).toEqual([]);
      // Allowed: the registry's redirect (to the metadata address) is not followed.
      const redirected = await errorOf(
        new RegistryClient(target(`http://127.0.0.1:${port}`), undefined, 2_000, { allowlist: '127.0.0.1' }),
      );
      expect(redirected).toMatchObject({ status: 503 });
      expect(redirected.message).toMatch(/redirect \(HTTP 307\) not followed/);
      expect(asked).toEqual(['/v2/_catalog?n=100']);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('parses rel="next" relative to the page, ignoring other relations', () => {
    const page = new URL('http://r:5000/v2/_catalog?n=2');
    expect(nextLink('</v2/_catalog?last=b&n=2>; rel="next"', page)?.href).toBe(
      'http://r:5000/v2/_catalog?last=b&n=2',
    );
    expect(nextLink('<http://r:5000/x>; rel="prev", </v2/_catalog?last=d&n=2>; rel=next', page)?.href).toBe(
      'http://r:5000/v2/_catalog?last=d&n=2',
    );
    expect(nextLink('</v2/_catalog?last=b>; rel="prev"', page)).toBeUndefined();
    expect(nextLink(null, page)).toBeUndefined();
  });
});
