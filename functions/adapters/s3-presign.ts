import type { Config } from '../core/config.js';
import type { InstallFiles } from '../ports/install-files.js';
import { s3Client } from './aws-clients.js';
import { Sha256 } from './sha256.js';

type S3Config = Pick<Config, 'AWS_REGION' | 'AWS_ENDPOINT_URL'>;

/** RFC 3986 encoding, as SigV4 canonicalizes: encodeURIComponent leaves !'()* alone. */
const rfc3986 = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * A presigned GET URL of `bucket`/`key`, valid `expiresIn` seconds, signed with the S3 client's own
 * credentials (the function's role on Lambda): a download too big for a Lambda response goes
 * straight from S3. Virtual-hosted on AWS, path style on an emulator (as the S3 client addresses it).
 */
export async function presignedGetUrl(
  config: S3Config,
  bucket: string,
  key: string,
  expiresIn = 900,
): Promise<string> {
  const client = await s3Client(config);
  // Loaded here: only the install route signs URLs.
  const { SignatureV4 } = await import('@smithy/signature-v4');
  const base = config.AWS_ENDPOINT_URL
    ? new URL(`${config.AWS_ENDPOINT_URL.replace(/\/+$/, '')}/${bucket}/`)
    : new URL(`https://${bucket}.s3.${config.AWS_REGION}.amazonaws.com/`);
  const path = `${base.pathname}${key.split('/').map(rfc3986).join('/')}`;
  const signer = new SignatureV4({
    service: 's3',
    region: config.AWS_REGION,
    sha256: Sha256,
    credentials: client.config.credentials,
    // S3 signs the path as sent: encoded once, not twice.
    uriEscapePath: false,
  });
  const signed = await signer.presign(
    {
      method: 'GET',
      protocol: base.protocol,
      hostname: base.hostname,
      ...(base.port ? { port: Number(base.port) } : {}),
      path,
      query: {},
      // S3 signs a presigned URL's payload as UNSIGNED-PAYLOAD (the header goes to the query).
      headers: { host: base.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    },
    { expiresIn },
  );
  const query = Object.entries(signed.query ?? {})
    .map(([k, v]) => `${rfc3986(k)}=${rfc3986(String(v))}`)
    .join('&');
  return `${base.origin}${path}?${query}`;
}

/** Whether `bucket`/`key` exists (HeadObject; a 404 is false, any other failure throws). */
export async function objectExists(config: S3Config, bucket: string, key: string): Promise<boolean> {
  const client = await s3Client(config);
  const { HeadObjectCommand } = await import('@aws-sdk/client-s3');
  try {
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404 || (err as Error).name === 'NotFound' || (err as Error).name === 'NoSuchKey')
      return false;
    throw err;
  }
}

/** Install files as objects `<prefix><file>` of `bucket` (INSTALL_ASSETS_BUCKET), by presigned URL. */
export class S3InstallFiles implements InstallFiles {
  constructor(
    private readonly config: S3Config,
    private readonly bucket: string,
    private readonly prefix: string,
  ) {}

  async downloadUrl(file: string, seconds: number): Promise<string | undefined> {
    const key = `${this.prefix}${file}`;
    if (!(await objectExists(this.config, this.bucket, key))) return undefined;
    return presignedGetUrl(this.config, this.bucket, key, seconds);
  }
}
