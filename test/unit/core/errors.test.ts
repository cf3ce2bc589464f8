import { describe, expect, it } from 'vitest';
import {
  ConflictError,
  DomainError,
  ForbiddenError,
  HttpError,
  NotFoundError,
  TimedOutError,
  UnauthenticatedError,
  UnavailableError,
  UpstreamError,
  renderError,
} from '../../../functions/core/errors.js';

const now = new Date('2026-01-01T00:00:00Z');

describe('domain errors', () => {
  it.each([
    [new UnauthenticatedError('no credential'), 401, 'AUTHENTICATION_ERROR'],
    [new ForbiddenError('not allowed'), 403, 'FORBIDDEN'],
    [new NotFoundError('gone'), 404, 'NOT_FOUND'],
    [new ConflictError('lost the race'), 409, 'CONFLICT'],
    [new UpstreamError('the agent failed'), 502, 'INTERNAL_ERROR'],
    [new UnavailableError('try later'), 503, 'SERVICE_UNAVAILABLE'],
    [new TimedOutError('too slow'), 504, 'INTERNAL_ERROR'],
  ])('%s is answered %i with the code %s', (error, status, code) => {
    // Assess: the status and code come from the kind, and the pipeline sees an HttpError.
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toBeInstanceOf(HttpError);
    expect(error.status).toBe(status);
    expect(error.code).toBe(code);
  });

  it('renders in each route style with its own code, details and headers', () => {
    // Prepare
    const error = new UnavailableError(
      'The registry is unreachable',
      'REGISTRY_UNAVAILABLE',
      { host: 'r' },
      {
        'retry-after': '5',
      },
    );

    // Act
    const fastapi = renderError('fastapi', { error, requestId: 'req-1', now });
    const training = renderError('training', { error, requestId: 'req-1', now });
    const novita = renderError('novita', { error, requestId: 'req-1', now });

    // Assess
    expect(error.headers).toEqual({ 'retry-after': '5' });
    expect(fastapi).toEqual({ detail: 'The registry is unreachable', host: 'r' });
    expect(training).toEqual({
      detail: 'The registry is unreachable',
      host: 'r',
      error_type: 'InternalServerError',
    });
    expect(novita).toEqual({
      error: {
        code: 'REGISTRY_UNAVAILABLE',
        message: 'The registry is unreachable',
        details: { host: 'r' },
        timestamp: now.toISOString(),
        requestId: 'req-1',
      },
    });
  });
});
