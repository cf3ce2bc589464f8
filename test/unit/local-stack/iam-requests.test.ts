import { describe, expect, it } from 'vitest';
import { describeRequest, s3Target, type RawRequest } from '../../../local/stack/iam/requests.js';

// What the real SDK clients send is covered by test/integration/adapters/aws-call-checker.test.ts; these
// are the shapes those clients do not make here: AWS hosts, the SQS query protocol, presigned URLs.
const ACCOUNT = '123456789012';
const auth = (service: string, region = 'eu-west-1') =>
  `AWS4-HMAC-SHA256 Credential=AKIAFUNCTION000000001/20261206/${region}/${service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=00`;
const request = (r: Partial<RawRequest> & { service?: string }): RawRequest => ({
  method: r.method ?? 'GET',
  url: r.url ?? '/',
  headers: { host: 'localhost', ...(r.service ? { authorization: auth(r.service) } : {}), ...r.headers },
  body: r.body ?? Buffer.alloc(0),
});
const pairs = (r: RawRequest) => {
  const d = describeRequest(r, ACCOUNT);
  if ('error' in d) throw new Error(d.error);
  return { operation: d.operation, auth: d.authorizations.map((a) => `${a.action} ${a.resource}`) };
};

describe('describeRequest', () => {
  it('reads the bucket of a virtual-hosted AWS request from its host', () => {
    expect(s3Target({ url: '/a/b.txt', headers: { host: 'my.bucket.s3.eu-west-1.amazonaws.com' } })).toEqual({
      bucket: 'my.bucket',
      key: 'a/b.txt',
    });
    expect(s3Target({ url: '/my-bucket/a%20b', headers: { host: 's3.eu-west-1.amazonaws.com' } })).toEqual({
      bucket: 'my-bucket',
      key: 'a b',
    });
    expect(
      pairs(request({ service: 's3', method: 'HEAD', url: '/', headers: { host: 'b1.s3.amazonaws.com' } })),
    ).toEqual({
      operation: 'HeadBucket',
      auth: ['s3:ListBucket arn:aws:s3:::b1'],
    });
  });

  it('maps S3 subresources and versions to their own actions', () => {
    const s3 = (method: string, url: string) => pairs(request({ service: 's3', method, url }));
    expect(s3('GET', '/b1?versioning').auth).toEqual(['s3:GetBucketVersioning arn:aws:s3:::b1']);
    expect(s3('GET', '/b1/k?versionId=3').auth).toEqual(['s3:GetObjectVersion arn:aws:s3:::b1/k']);
    expect(s3('DELETE', '/b1/k?uploadId=u').auth).toEqual(['s3:AbortMultipartUpload arn:aws:s3:::b1/k']);
    expect(s3('POST', '/b1/k?uploads').auth).toEqual(['s3:PutObject arn:aws:s3:::b1/k']);
  });

  it('reads the SQS query protocol (Action in a form body) as the JSON protocol', () => {
    const body = Buffer.from(
      `Action=DeleteMessageBatch&QueueUrl=${encodeURIComponent(`https://sqs.eu-west-1.amazonaws.com/${ACCOUNT}/q1`)}`,
    );
    expect(pairs(request({ service: 'sqs', method: 'POST', body }))).toEqual({
      operation: 'DeleteMessageBatch',
      auth: [`sqs:DeleteMessage arn:aws:sqs:eu-west-1:${ACCOUNT}:q1`],
    });
  });

  it('takes the credential scope of a presigned URL, and refuses an unsigned request', () => {
    const url = `/b1/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${encodeURIComponent('AKIAX/20261206/eu-west-1/s3/aws4_request')}&X-Amz-Signature=00`;
    const d = describeRequest(request({ url }), ACCOUNT);
    expect(d).toMatchObject({ accessKeyId: 'AKIAX', service: 's3', operation: 'GetObject' });
    expect(describeRequest(request({ url: '/b1/k' }), ACCOUNT)).toEqual({
      error: 'unsigned request (no SigV4 credential scope)',
    });
  });

  it('names SSM parameters with and without a leading slash, and schedules in the default group', () => {
    const ssm = (Target: string, body: object) =>
      pairs(
        request({
          service: 'ssm',
          method: 'POST',
          headers: { 'x-amz-target': Target },
          body: Buffer.from(JSON.stringify(body)),
        }),
      );
    expect(ssm('AmazonSSM.GetParameter', { Name: 'plain' }).auth).toEqual([
      `ssm:GetParameter arn:aws:ssm:eu-west-1:${ACCOUNT}:parameter/plain`,
    ]);
    expect(ssm('AmazonSSM.DeleteParameters', { Names: ['/a/b', '/a/c'] }).auth).toEqual([
      `ssm:DeleteParameters arn:aws:ssm:eu-west-1:${ACCOUNT}:parameter/a/b`,
      `ssm:DeleteParameters arn:aws:ssm:eu-west-1:${ACCOUNT}:parameter/a/c`,
    ]);
    expect(pairs(request({ service: 'scheduler', method: 'GET', url: '/schedules/s1' })).auth).toEqual([
      `scheduler:GetSchedule arn:aws:scheduler:eu-west-1:${ACCOUNT}:schedule/default/s1`,
    ]);
  });

  it('says what it does not know instead of guessing', () => {
    const target = (t: string) =>
      request({
        service: 'dynamodb',
        method: 'POST',
        headers: { 'x-amz-target': t },
        body: Buffer.from('{}'),
      });
    expect(describeRequest(target('DynamoDB_20120810.ExportTableToPointInTime'), ACCOUNT)).toMatchObject({
      error: 'DynamoDB operation ExportTableToPointInTime is not one the checker knows',
    });
    expect(describeRequest(target('DynamoDB_20120810.GetItem'), ACCOUNT)).toMatchObject({
      error: 'dynamodb:GetItem without TableName',
    });
    expect(
      describeRequest(request({ service: 'lambda', url: '/2015-03-31/functions' }), ACCOUNT),
    ).toMatchObject({
      error: 'service "lambda" is not one the checker knows',
    });
  });
});
