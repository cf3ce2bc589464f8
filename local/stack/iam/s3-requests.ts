/** S3 requests (REST XML, path-style and virtual-hosted) as IAM authorises them. */
import {
  header,
  type Authorization,
  type Described,
  type Done,
  type Fail,
  type RawRequest,
} from './request-parts.js';

/** Bucket subresources: query parameter → [GET, PUT, DELETE] actions. */
const BUCKET_SUBRESOURCES: Record<string, [string?, string?, string?]> = {
  versioning: ['GetBucketVersioning', 'PutBucketVersioning'],
  policy: ['GetBucketPolicy', 'PutBucketPolicy', 'DeleteBucketPolicy'],
  tagging: ['GetBucketTagging', 'PutBucketTagging', 'PutBucketTagging'],
  cors: ['GetBucketCORS', 'PutBucketCORS', 'PutBucketCORS'],
  lifecycle: ['GetLifecycleConfiguration', 'PutLifecycleConfiguration', 'PutLifecycleConfiguration'],
  encryption: ['GetEncryptionConfiguration', 'PutEncryptionConfiguration', 'PutEncryptionConfiguration'],
  publicAccessBlock: [
    'GetBucketPublicAccessBlock',
    'PutBucketPublicAccessBlock',
    'PutBucketPublicAccessBlock',
  ],
  ownershipControls: [
    'GetBucketOwnershipControls',
    'PutBucketOwnershipControls',
    'PutBucketOwnershipControls',
  ],
  notification: ['GetBucketNotification', 'PutBucketNotification'],
  logging: ['GetBucketLogging', 'PutBucketLogging'],
  acl: ['GetBucketAcl', 'PutBucketAcl'],
  location: ['GetBucketLocation'],
  versions: ['ListBucketVersions'],
  uploads: ['ListBucketMultipartUploads'],
};

/** Bucket and key of an S3 request: virtual-hosted (`bucket.s3.region.amazonaws.com`, `bucket.localhost`) or path-style. */
export function s3Target(req: Pick<RawRequest, 'url' | 'headers'>): { bucket?: string; key?: string } {
  const url = new URL(req.url, 'http://x');
  const host = (header(req as RawRequest, 'host') ?? '').replace(/:\d+$/, '');
  const path = url.pathname.slice(1);
  const virtual = host.match(/^(.+?)\.s3[.-]/)?.[1] ?? host.match(/^(.+)\.localhost$/)?.[1];
  const decode = (s: string) => decodeURIComponent(s);
  if (virtual) return path ? { bucket: virtual, key: decode(path) } : { bucket: virtual };
  if (!path) return {};
  const slash = path.indexOf('/');
  if (slash < 0 || slash === path.length - 1) return { bucket: decode(path.replace(/\/$/, '')) };
  return { bucket: decode(path.slice(0, slash)), key: decode(path.slice(slash + 1)) };
}

export function describeS3(req: RawRequest, done: Done, fail: Fail): Described {
  const url = new URL(req.url, 'http://x');
  const q = url.searchParams;
  const method = req.method.toUpperCase();
  const { bucket, key } = s3Target(req);
  const one = (op: string, action: string, resource: string, context?: Authorization['context']) =>
    done(op, [{ action: `s3:${action}`, resource, ...(context ? { context } : {}) }]);
  if (!bucket) {
    if (method === 'GET') return one('ListBuckets', 'ListAllMyBuckets', '*');
    return fail(`S3 ${method} / is not an operation the checker knows`);
  }
  const bucketArn = `arn:aws:s3:::${bucket}`;
  if (key === undefined) {
    if (method === 'POST' && q.has('delete')) {
      // DeleteObjects is authorised as DeleteObject on each key of the body.
      const keys = [...req.body.toString('utf8').matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) =>
        unescapeXml(m[1] ?? ''),
      );
      if (keys.length === 0) return fail('S3 DeleteObjects without keys');
      return done(
        'DeleteObjects',
        keys.map((k) => ({ action: 's3:DeleteObject', resource: `${bucketArn}/${k}` })),
      );
    }
    for (const [sub, actions] of Object.entries(BUCKET_SUBRESOURCES)) {
      if (!q.has(sub)) continue;
      const action = { GET: actions[0], PUT: actions[1], DELETE: actions[2] }[method];
      if (!action) return fail(`S3 ${method} ?${sub} is not an operation the checker knows`);
      return one(action, action, bucketArn);
    }
    if (method === 'HEAD') return one('HeadBucket', 'ListBucket', bucketArn);
    if (method === 'GET') {
      const context: Record<string, string> = {};
      for (const k of ['prefix', 'delimiter', 'max-keys']) {
        const v = q.get(k);
        if (v !== null) context[`s3:${k}`] = v;
      }
      return one(
        q.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects',
        'ListBucket',
        bucketArn,
        context,
      );
    }
    if (method === 'PUT') return one('CreateBucket', 'CreateBucket', bucketArn);
    if (method === 'DELETE') return one('DeleteBucket', 'DeleteBucket', bucketArn);
    return fail(`S3 ${method} on a bucket is not an operation the checker knows`);
  }
  const objectArn = `${bucketArn}/${key}`;
  const versioned = q.has('versionId');
  if (method === 'GET' || method === 'HEAD') {
    if (q.has('tagging'))
      return one('GetObjectTagging', versioned ? 'GetObjectVersionTagging' : 'GetObjectTagging', objectArn);
    if (q.has('acl'))
      return one('GetObjectAcl', versioned ? 'GetObjectVersionAcl' : 'GetObjectAcl', objectArn);
    if (q.has('uploadId')) return one('ListParts', 'ListMultipartUploadParts', objectArn);
    const op = method === 'GET' ? 'GetObject' : 'HeadObject';
    return one(op, versioned ? 'GetObjectVersion' : 'GetObject', objectArn);
  }
  if (method === 'PUT') {
    if (q.has('tagging')) return one('PutObjectTagging', 'PutObjectTagging', objectArn);
    if (q.has('acl')) return one('PutObjectAcl', 'PutObjectAcl', objectArn);
    const op = q.has('uploadId') ? 'UploadPart' : 'PutObject';
    const auths: Authorization[] = [{ action: 's3:PutObject', resource: objectArn }];
    // A copy also reads its source: `/bucket/key` (optionally ?versionId=).
    const source = header(req, 'x-amz-copy-source');
    if (source) {
      const [path = '', query = ''] = decodeURIComponent(source).split('?');
      auths.push({
        action: query.includes('versionId=') ? 's3:GetObjectVersion' : 's3:GetObject',
        resource: `arn:aws:s3:::${path.replace(/^\//, '')}`,
      });
    }
    return done(source ? (op === 'UploadPart' ? 'UploadPartCopy' : 'CopyObject') : op, auths);
  }
  if (method === 'DELETE') {
    if (q.has('uploadId')) return one('AbortMultipartUpload', 'AbortMultipartUpload', objectArn);
    if (q.has('tagging')) return one('DeleteObjectTagging', 'DeleteObjectTagging', objectArn);
    return one('DeleteObject', versioned ? 'DeleteObjectVersion' : 'DeleteObject', objectArn);
  }
  if (method === 'POST') {
    // Multipart uploads are authorised as PutObject, start to finish.
    if (q.has('uploads')) return one('CreateMultipartUpload', 'PutObject', objectArn);
    if (q.has('uploadId')) return one('CompleteMultipartUpload', 'PutObject', objectArn);
    if (q.has('restore')) return one('RestoreObject', 'RestoreObject', objectArn);
    if (q.has('select')) return one('SelectObjectContent', 'GetObject', objectArn);
  }
  return fail(`S3 ${method} on an object is not an operation the checker knows`);
}

const unescapeXml = (s: string) =>
  s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
