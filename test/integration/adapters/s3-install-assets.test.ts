import { createHash, createHmac, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { resetAwsClients } from '../../../functions/adapters/aws-clients.js';
import { S3Blobs } from '../../../functions/adapters/s3-blobs.js';
import { objectExists, presignedGetUrl, S3InstallFiles } from '../../../functions/adapters/s3-presign.js';
import { createAwsContext } from '../../../functions/core/aws-context.js';
import type { AppContext } from '../../../functions/core/context.js';
import { NotFoundError } from '../../../functions/core/errors.js';
import type { Reply } from '../../../functions/core/http.js';
import { INSTALL_ASSETS_PREFIX } from '../../../functions/system/install.js';
import { installRoutes } from '../../../functions/system/install-routes.js';
import { describeWithMoto, testConfig } from '../../harness/services.js';

/**
 * Install files on AWS: objects under install/ in their own bucket (lib/install-assets.ts), and
 * GET /install/{file} answering a presigned redirect to them. Against the emulator: the suite's own
 * bucket (testConfig's unique name), the route's handler with that configuration, and the URL it
 * gives fetched as curl would.
 */
/**
 * SigV4 of a presigned GET computed here from the URL alone (AWS's documented steps), so the
 * signer's output is checked by something other than itself: the emulator does not check it.
 */
function expectedSignature(url: URL, secret: string): string {
  const params = [...url.searchParams.entries()].filter(([k]) => k !== 'X-Amz-Signature');
  const enc = (s: string) =>
    encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const query = params
    .map(([k, v]) => [enc(k), enc(v)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonical = ['GET', url.pathname, query, `host:${url.host}\n`, 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const date = url.searchParams.get('X-Amz-Date')!;
  const scope = url.searchParams.get('X-Amz-Credential')!.split('/').slice(1).join('/');
  const toSign = ['AWS4-HMAC-SHA256', date, scope, createHash('sha256').update(canonical).digest('hex')].join(
    '\n',
  );
  const [day, region, service, term] = scope.split('/') as [string, string, string, string];
  let key: Buffer = Buffer.from(`AWS4${secret}`);
  for (const part of [day, region, service, term]) key = createHmac('sha256', key).update(part).digest();
  return createHmac('sha256', key).update(toSign).digest('hex');
}

describeWithMoto('install files in S3, served by presigned redirect', () => {
  const config = testConfig();
  const bucket = config.ARTIFACTS_BUCKET;
  const installFiles = new S3InstallFiles(config, bucket, INSTALL_ASSETS_PREFIX);
  // Past Lambda's 6 MB answer: what the redirect exists for.
  const runtime = randomBytes(7 * 1024 * 1024);
  const bundle = Buffer.from('#!/usr/bin/env node\nconsole.log("agent")\n');
  const route = installRoutes().find((r) => r.path === '/install/{file}')!;
  const get = (file: string) =>
    route.handler({ params: { file }, query: {}, body: undefined, headers: {}, requestId: 'r-1' }, {
      config,
      installFiles,
    } as unknown as AppContext) as Promise<Reply>;

  beforeAll(async () => {
    const blobs = new S3Blobs(config);
    await blobs.ensure();
    await blobs.put(`${INSTALL_ASSETS_PREFIX}agent.mjs`, bundle, 'text/javascript');
    await blobs.put(`${INSTALL_ASSETS_PREFIX}node-x86_64.tar.gz`, runtime, 'application/gzip');
  });

  afterAll(() => resetAwsClients());

  it('a presigned URL fetches the object without any credential', async () => {
    const url = await presignedGetUrl(config, bucket, `${INSTALL_ASSETS_PREFIX}agent.mjs`, 60);
    const parsed = new URL(url);
    expect(parsed.searchParams.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(parsed.searchParams.get('X-Amz-Expires')).toBe('60');
    expect(parsed.searchParams.get('X-Amz-SignedHeaders')).toBe('host');
    expect(parsed.searchParams.get('X-Amz-Credential')).toMatch(
      new RegExp(`^${process.env.AWS_ACCESS_KEY_ID}/\\d{8}/${config.AWS_REGION}/s3/aws4_request$`),
    );
    expect(parsed.searchParams.get('X-Amz-Signature')).toBe(
      expectedSignature(parsed, process.env.AWS_SECRET_ACCESS_KEY!),
    );
    // The bucket is private: the same URL without its signature is refused.
    expect((await fetch(url.split('?')[0]!)).status).toBe(403);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(bundle)).toBe(true);
  });

  it('createAwsContext wires the install files from INSTALL_ASSETS_BUCKET, and none without it', () => {
    expect(
      createAwsContext({ ...config, INSTALL_ASSETS_BUCKET: bucket }, { mode: 'emulator' }).installFiles,
    ).toBeInstanceOf(S3InstallFiles);
    expect(createAwsContext(config, { mode: 'emulator' }).installFiles).toBeUndefined();
  });

  it('objectExists tells a present key from a missing one', async () => {
    expect(await objectExists(config, bucket, `${INSTALL_ASSETS_PREFIX}agent.mjs`)).toBe(true);
    expect(await objectExists(config, bucket, `${INSTALL_ASSETS_PREFIX}agent-image-aarch64.tar`)).toBe(false);
  });

  it('GET /install/{file} answers 302 to the object, and the redirect downloads all of it', async () => {
    const answer = await get('node-x86_64.tar.gz');
    expect(answer.status).toBe(302);
    expect(answer.headers?.['cache-control']).toBe('no-store');
    const location = answer.headers!['location']!;
    expect(new URL(location).pathname).toBe(`/${bucket}/${INSTALL_ASSETS_PREFIX}node-x86_64.tar.gz`);
    expect(new URL(location).searchParams.get('X-Amz-Expires')).toBe('900');
    const res = await fetch(location);
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.length).toBe(runtime.length);
    expect(body.equals(runtime)).toBe(true);
  });

  it('a file the bucket does not hold is a 404, with no redirect', async () => {
    await expect(get('agent-image-aarch64.tar')).rejects.toBeInstanceOf(NotFoundError);
    await expect(get('agent-image-aarch64.tar')).rejects.toThrow(/agent-image-aarch64.tar is not among/);
  });
});
