import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { QueueCredentialsResponse } from '../protocol/messages.js';

/** Asked again this long before `expiration`, so a long poll never runs on credentials about to lapse. */
export const REFRESH_BEFORE_EXPIRY_MS = 5 * 60_000;

export interface VendedCredentialsProvider extends AwsCredentialIdentityProvider {
  /** Drops the cached credentials (SQS refused them): the next call asks the control plane again. */
  invalidate(): void;
}

/**
 * An AWS SDK credential provider backed by the control plane (POST /agent/credentials), never by
 * the node's environment: the credentials are cached until shortly before they expire, and
 * concurrent callers share one request.
 */
export function vendedCredentials(
  fetchCredentials: () => Promise<QueueCredentialsResponse>,
  options: { now?: () => number; refreshBeforeMs?: number } = {},
): VendedCredentialsProvider {
  const now = options.now ?? Date.now;
  const margin = options.refreshBeforeMs ?? REFRESH_BEFORE_EXPIRY_MS;
  let cached: AwsCredentialIdentity | undefined;
  let pending: Promise<AwsCredentialIdentity> | undefined;

  const fresh = (c: AwsCredentialIdentity | undefined): c is AwsCredentialIdentity =>
    c !== undefined && c.expiration !== undefined && c.expiration.getTime() - margin > now();

  const provider = (async () => {
    if (fresh(cached)) return cached;
    pending ??= fetchCredentials()
      .then((r) => {
        cached = {
          accessKeyId: r.accessKeyId,
          secretAccessKey: r.secretAccessKey,
          sessionToken: r.sessionToken,
          expiration: new Date(r.expiration),
        };
        return cached;
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  }) as VendedCredentialsProvider;
  provider.invalidate = () => {
    cached = undefined;
  };
  return provider;
}
