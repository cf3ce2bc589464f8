/**
 * What a browser app on another origin may send and read: one declaration for the HTTP API's
 * CORS preflight on AWS (lib/api.ts) and the pipeline's answer to OPTIONS everywhere else.
 */
export const CORS_ALLOW_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export const CORS_ALLOW_HEADERS = ['authorization', 'content-type', 'x-request-id'] as const;
export const CORS_EXPOSE_HEADERS = [
  'x-request-id',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
  // GET /api/swarm/nodes: the next page of an array body.
  'x-next-cursor',
] as const;
export const CORS_MAX_AGE_SECONDS = 3600;

/** The preflight's own headers (the allowed origin is added by the CORS middleware). */
export const preflightHeaders = (): Record<string, string> => ({
  'access-control-allow-methods': CORS_ALLOW_METHODS.join(', '),
  'access-control-allow-headers': CORS_ALLOW_HEADERS.join(', '),
  'access-control-max-age': String(CORS_MAX_AGE_SECONDS),
});
