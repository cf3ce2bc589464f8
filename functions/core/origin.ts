import type { AppContext } from './context.js';
import { HttpError } from './errors.js';
import { sameSecret } from './limits.js';

/**
 * Behind the CloudFront distribution that carries the WAF (lib/console.ts), the HTTP API's own
 * execute-api URL would let callers round the web ACL. CloudFront adds this header, holding a
 * secret from Secrets Manager, to every request it sends the API; with ORIGIN_SECRET_PARAMETER set
 * the functions refuse any request without it. (Disabling the execute-api endpoint would cut
 * CloudFront off as well: without a custom domain that endpoint is CloudFront's origin.)
 */
export const ORIGIN_HEADER = 'x-fleet-origin';

/** Read again after this long, so a rotated secret is taken up without a cold start. */
const CACHE_MS = 5 * 60_000;
let cached: { value: string; at: number } | undefined;

async function originSecret(ctx: AppContext, parameter: string): Promise<string> {
  if (cached && ctx.now() - cached.at < CACHE_MS) return cached.value;
  if (!ctx.originSecret)
    throw new Error(
      `ORIGIN_SECRET_PARAMETER ${parameter} is set, but this runtime has no SSM to read it from`,
    );
  // `/aws/reference/secretsmanager/<name>` on AWS: Parameter Store hands out the Secrets Manager value.
  const value = await ctx.originSecret();
  if (!value) throw new Error(`ORIGIN_SECRET_PARAMETER ${parameter} holds no value`);
  cached = { value, at: ctx.now() };
  return value;
}

/** For tests: read the secret again on the next request. */
export const resetOriginSecretCache = () => (cached = undefined);

/**
 * Refuses (403) a request that did not come through the distribution, and takes the header out
 * of `headers` so no handler, hook or log sees the secret.
 */
export async function assertThroughFront(ctx: AppContext, headers: Record<string, string>): Promise<void> {
  const parameter = ctx.config.ORIGIN_SECRET_PARAMETER;
  const given = headers[ORIGIN_HEADER];
  delete headers[ORIGIN_HEADER];
  if (!parameter) return;
  if (given !== undefined && sameSecret(given, await originSecret(ctx, parameter))) return;
  throw new HttpError(
    403,
    'This API is served through its CloudFront URL (the GpuFleetConsole stack output ApiUrl); call that instead',
    'FORBIDDEN',
  );
}
