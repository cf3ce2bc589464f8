/** The parts of a signed AWS API request every service describer reads. */

export interface RawRequest {
  method: string;
  /** Path with query string, as received. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One authorisation IAM makes for a request: a call may need several (CreateSchedule also passes a role). */
export interface Authorization {
  action: string;
  /** Resource ARN, or `*` for actions without resource-level permissions. */
  resource: string;
  /** Request-specific condition keys (`iam:PassedToService`, `s3:prefix`, ...). */
  context?: Record<string, string | string[]>;
}

export interface DescribedRequest {
  /** SigV4 signing name from the credential scope: `dynamodb`, `sqs`, `s3`, ... */
  service: string;
  /** The API operation, e.g. `Query`, `SendMessageBatch`, `HeadBucket`. */
  operation: string;
  accessKeyId: string;
  region: string;
  authorizations: Authorization[];
}

export type Described = DescribedRequest | { error: string; accessKeyId?: string; service?: string };

export interface Scope {
  accessKeyId: string;
  region: string;
  service: string;
}

export const header = (req: RawRequest, name: string): string | undefined => {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
};

export type Arn = (service: string, resource: string) => string;
export type Done = (operation: string, authorizations: Authorization[]) => DescribedRequest;
export type Fail = (error: string) => Described;

export const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);
export const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
export const keysOf = (v: unknown): string[] => (v && typeof v === 'object' ? Object.keys(v) : []);
