/**
 * Errors that cross the HTTP boundary. Each route renders them in its documented style: FastAPI's
 * `detail`; the same with the training document's `error_type` beside it; or the Novita `error`.
 */
export type ErrorStyle = 'fastapi' | 'training' | 'novita';

export interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Machine-readable code, used by the Novita style (`INSTANCE_NOT_FOUND`). */
    readonly code: string = defaultCode(status),
    /** Extra structured details (Novita `details`) or extra top-level fields (FastAPI, e.g. `error_type`). */
    readonly details?: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export class ValidationError extends HttpError {
  constructor(
    readonly issues: ValidationIssue[],
    status = 422,
  ) {
    super(status, issues[0]?.msg ?? 'Invalid request', 'VALIDATION_ERROR');
    this.name = 'ValidationError';
  }
}

/**
 * What domain code throws: the kind of failure in the domain's words. The status each kind is
 * answered with is chosen here, once; the pipeline renders it in the route's style.
 */
const DOMAIN_STATUS = {
  /** The caller has no valid credential for this. */
  unauthenticated: 401,
  /** The credential is valid, the act is not allowed (a node's policy, a role). */
  forbidden: 403,
  not_found: 404,
  /** A conditional write lost, or a state that forbids the change. */
  conflict: 409,
  /** A node's agent or an outside service answered a failure, or nothing readable. */
  upstream: 502,
  /** A dependency or feature is not available now; trying later may work. */
  unavailable: 503,
  /** The work ran past its time on the node or the outside service. */
  timed_out: 504,
} as const;

export type DomainErrorKind = keyof typeof DOMAIN_STATUS;

export abstract class DomainError extends HttpError {
  constructor(
    readonly kind: DomainErrorKind,
    message: string,
    code: string = defaultCode(DOMAIN_STATUS[kind]),
    details?: Record<string, unknown>,
    headers: Record<string, string> = {},
  ) {
    super(DOMAIN_STATUS[kind], message, code, details, headers);
  }
}

export class UnauthenticatedError extends DomainError {
  constructor(
    message: string,
    code?: string,
    details?: Record<string, unknown>,
    headers?: Record<string, string>,
  ) {
    super('unauthenticated', message, code, details, headers);
    this.name = 'UnauthenticatedError';
  }
}

export class ForbiddenError extends DomainError {
  constructor(
    message: string,
    code?: string,
    details?: Record<string, unknown>,
    headers?: Record<string, string>,
  ) {
    super('forbidden', message, code, details, headers);
    this.name = 'ForbiddenError';
  }
}

export class NotFoundError extends DomainError {
  constructor(message: string, code = 'NOT_FOUND', details?: Record<string, unknown>) {
    super('not_found', message, code, details);
    this.name = 'NotFoundError';
  }
}

export class ConflictError extends DomainError {
  constructor(message: string, code = 'CONFLICT', details?: Record<string, unknown>) {
    super('conflict', message, code, details);
    this.name = 'ConflictError';
  }
}

export class UpstreamError extends DomainError {
  constructor(
    message: string,
    code?: string,
    details?: Record<string, unknown>,
    headers?: Record<string, string>,
  ) {
    super('upstream', message, code, details, headers);
    this.name = 'UpstreamError';
  }
}

export class UnavailableError extends DomainError {
  constructor(
    message: string,
    code?: string,
    details?: Record<string, unknown>,
    headers?: Record<string, string>,
  ) {
    super('unavailable', message, code, details, headers);
    this.name = 'UnavailableError';
  }
}

export class TimedOutError extends DomainError {
  constructor(
    message: string,
    code?: string,
    details?: Record<string, unknown>,
    headers?: Record<string, string>,
  ) {
    super('timed_out', message, code, details, headers);
    this.name = 'TimedOutError';
  }
}

function defaultCode(status: number): string {
  switch (status) {
    case 400:
    case 422:
      return 'VALIDATION_ERROR';
    case 401:
      return 'AUTHENTICATION_ERROR';
    case 403:
      return 'FORBIDDEN';
    case 404:
      return 'NOT_FOUND';
    case 405:
      return 'METHOD_NOT_ALLOWED';
    case 409:
      return 'CONFLICT';
    case 413:
      return 'PAYLOAD_TOO_LARGE';
    case 415:
      return 'UNSUPPORTED_MEDIA_TYPE';
    case 429:
      return 'RATE_LIMIT_EXCEEDED';
    case 503:
      return 'SERVICE_UNAVAILABLE';
    default:
      return status >= 500 ? 'INTERNAL_ERROR' : 'BAD_REQUEST';
  }
}

export interface ErrorBodyInput {
  error: HttpError;
  requestId: string;
  now: Date;
}

/** The body for an error in the route's documented shape. */
export function renderError(style: ErrorStyle, { error, requestId, now }: ErrorBodyInput): unknown {
  if (style === 'novita') {
    const details =
      error instanceof ValidationError
        ? {
            field: error.issues[0]?.loc
              .filter((p) => p !== 'body' && p !== 'query' && p !== 'path')
              .join('.'),
            reason: error.issues[0]?.msg,
            issues: error.issues,
          }
        : error.details;
    return {
      error: {
        code: error.code,
        message: error.message,
        ...(details ? { details } : {}),
        timestamp: now.toISOString(),
        requestId,
      },
    };
  }
  const body =
    error instanceof ValidationError
      ? { detail: error.issues }
      : { detail: error.message, ...(error.details ?? {}) };
  if (style === 'training' && !('error_type' in body)) return { ...body, error_type: errorType(error) };
  return body;
}

/** The training document's `error_type` for errors that do not name their own. */
function errorType(error: HttpError): string {
  if (error instanceof ValidationError) return 'ValidationError';
  switch (error.status) {
    case 404:
      return 'NotFoundError';
    case 405:
      return 'MethodNotAllowedError';
    case 409:
      return 'ConflictError';
    case 413:
      return 'PayloadTooLargeError';
    case 415:
      return 'UnsupportedMediaTypeError';
    default:
      return error.status >= 500 ? 'InternalServerError' : 'HTTPError';
  }
}
