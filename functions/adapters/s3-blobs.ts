import type { BucketLocationConstraint, S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../core/config.js';
import type { BlobInfo, Blobs } from '../ports/blobs.js';
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

  async ping(): Promise<void> {
    const { client, m } = await this.api();
    await client.send(new m.HeadBucketCommand({ Bucket: this.bucket }));
  }
}
