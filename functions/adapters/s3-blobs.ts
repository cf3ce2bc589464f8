import type { BucketLocationConstraint, S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../core/config.js';
import type { BlobInfo, Blobs, PresignedUrl } from '../ports/blobs.js';
import { s3Client } from './aws-clients.js';

/** Loaded on first use with its client (see aws-clients.ts). */
type Sdk = typeof import('@aws-sdk/client-s3');

const statusOf = (err: unknown) =>
  (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
// HeadObject answers a bare 404 (no body, so no error code): the status is what tells.
const isMissing = (err: unknown) =>
  err instanceof Error && (err.name === 'NoSuchKey' || err.name === 'NotFound' || statusOf(err) === 404);

/** Artifacts in ARTIFACTS_BUCKET. */
export class S3Blobs implements Blobs {
  constructor(
    private readonly config: Pick<Config, 'AWS_REGION' | 'AWS_ENDPOINT_URL' | 'ARTIFACTS_BUCKET'>,
    private readonly injected?: S3Client,
  ) {}

  private apiPromise?: Promise<{ client: S3Client; m: Sdk }>;

  /** The client and the SDK's commands, loaded on first use. */
  private api(): Promise<{ client: S3Client; m: Sdk }> {
    return (this.apiPromise ??= (async () => ({
      client: this.injected ?? (await s3Client(this.config)),
      m: await import('@aws-sdk/client-s3'),
    }))());
  }

  private get bucket(): string {
    return this.config.ARTIFACTS_BUCKET;
  }

  /** Creates the bucket if missing. For emulators and tests: deployments create it with the stack. */
  async ensure(): Promise<void> {
    const { client, m } = await this.api();
    const region = this.config.AWS_REGION;
    try {
      await client.send(
        new m.CreateBucketCommand({
          Bucket: this.bucket,
          // us-east-1 is the one region that rejects an explicit location constraint.
          ...(region === 'us-east-1'
            ? {}
            : { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } }),
        }),
      );
    } catch (err) {
      if (!(err instanceof Error && err.name === 'BucketAlreadyOwnedByYou')) throw err;
    }
  }

  async put(key: string, body: Uint8Array, contentType?: string): Promise<void> {
    const { client, m } = await this.api();
    await client.send(
      new m.PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Body: body,
        ContentType: contentType,
      }),
    );
  }

  async get(key: string): Promise<{ body: Uint8Array; contentType?: string } | undefined> {
    const { client, m } = await this.api();
    try {
      const out = await client.send(new m.GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const body = out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
      return out.ContentType ? { body, contentType: out.ContentType } : { body };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async delete(key: string): Promise<boolean> {
    const { client, m } = await this.api();
    // DeleteObject succeeds whether or not the key exists, so ask first to answer the port's question.
    try {
      await client.send(new m.HeadObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
    await client.send(new m.DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    return true;
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    const { client, m } = await this.api();
    const out: BlobInfo[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await client.send(
        new m.ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: prefix || undefined,
          ContinuationToken,
        }),
      );
      for (const o of page.Contents ?? []) {
        if (!o.Key) continue;
        out.push({
          key: o.Key,
          size: o.Size ?? 0,
          modifiedAt: (o.LastModified ?? new Date(0)).toISOString(),
        });
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return out;
  }

  /**
   * A SigV4 query-signed URL for this one key, signed with the function's own (temporary)
   * credentials: its holder can do that one request until it expires, and nothing else.
   */
  async presign(
    method: 'GET' | 'PUT',
    key: string,
    expiresSeconds: number,
    options: { sha256?: string } = {},
  ): Promise<PresignedUrl> {
    const { client } = await this.api();
    const { SignatureV4 } = await import('@smithy/signature-v4');
    const region = await client.config.region();
    const path = key.split('/').map(encodeURIComponent).join('/');
    const endpoint = this.config.AWS_ENDPOINT_URL?.replace(/\/+$/, '');
    const url = new URL(
      endpoint
        ? `${endpoint}/${this.bucket}/${path}`
        : `https://${this.bucket}.s3.${region}.amazonaws.com/${path}`,
    );
    const signer = new SignatureV4({
      service: 's3',
      region,
      credentials: client.config.credentials,
      sha256: client.config.sha256,
      uriEscapePath: false,
      applyChecksum: false,
    });
    // The body's SHA-256 as signed headers (kept headers, not hoisted to the query): the holder
    // must send them as they are, and S3 refuses a body whose SHA-256 is another (BadDigest).
    const checksum: Record<string, string> =
      method === 'PUT' && options.sha256
        ? {
            'x-amz-checksum-sha256': Buffer.from(options.sha256, 'hex').toString('base64'),
            'x-amz-sdk-checksum-algorithm': 'SHA256',
          }
        : {};
    const signed = await signer.presign(
      {
        method,
        protocol: url.protocol,
        hostname: url.hostname,
        ...(url.port ? { port: Number(url.port) } : {}),
        path: url.pathname,
        query: {},
        // The body is not known when signing: S3's documented marker for presigned uploads.
        headers: { host: url.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...checksum },
      },
      { expiresIn: expiresSeconds, unhoistableHeaders: new Set(Object.keys(checksum)) },
    );
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(signed.query ?? {}))
      for (const one of Array.isArray(v) ? v : [v]) if (one !== null) query.append(k, one);
    url.search = query.toString();
    return { url: url.toString(), headers: checksum };
  }

  async ping(): Promise<void> {
    const { client, m } = await this.api();
    await client.send(new m.HeadBucketCommand({ Bucket: this.bucket }));
  }
}
