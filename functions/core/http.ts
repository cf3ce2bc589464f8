import { randomUUID } from 'node:crypto';
import middy from '@middy/core';
import httpCors from '@middy/http-cors';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import {
  actorOf,
  assertRole,
  authenticate,
  recordAudit,
  resetBootstrapKeyCache,
  type Principal,
} from './access.js';
import type { AppContext } from './context.js';
import { CORS_EXPOSE_HEADERS, preflightHeaders } from './cors.js';
import { invalidInputStatus } from './documents.js';
import { HttpError, ValidationError, renderError, type ErrorStyle } from './errors.js';
import { findLimitIssue } from './limits.js';
import { Reply, type AnyRoute, type HookOut, type ResponseOut } from './route.js';

export { Reply };
import { UnstorableError } from '../ports/store.js';
import { Router, styleForPath } from './router.js';
import { logRequest } from './request-log.js';
import { assertThroughFront } from './origin.js';
import { countHttpRequest } from '../observability/counters.js';
import { parseOrThrow } from './validation.js';
import { addToLogContext, currentLogContext, withLogContext } from './log-context.js';
import { annotateTrace } from './tracing.js';

export type HttpEvent = APIGatewayProxyEventV2;
export type HttpResult = APIGatewayProxyStructuredResultV2;

export const reply = (status: number, body?: unknown, headers?: Record<string, string>) =>
  new Reply(status, body, headers);

export const rawReply = (
  status: number,
  raw: Buffer | string,
  contentType: string,
  headers: Record<string, string> = {},
) => new Reply(status, undefined, { 'content-type': contentType, ...headers }, raw);

interface Internal {
  requestId: string;
  style: ErrorStyle;
  startedAt: number;
  /** What the route's hook returned, applied to the final response. */
  hook?: HookOut;
  /** For the audit log. */
  route?: AnyRoute;
  params?: Record<string, string>;
  principal?: Principal;
}

const internals = new WeakMap<object, Internal>();

/** The caller's `x-request-id`, when it is a plain id (it is logged, so nothing else is taken). */
function clientRequestId(headers: HttpEvent['headers']): string | undefined {
  const raw = Object.entries(headers ?? {}).find(([k]) => k.toLowerCase() === 'x-request-id')?.[1];
  return raw && /^[A-Za-z0-9._:-]{1,128}$/.test(raw) ? raw : undefined;
}

function lowerHeaders(headers: HttpEvent['headers']): Record<string, string> {
  // Already lower-case (the local server's): the same object, so what a check before the body
  // noted about these headers (the agent's node: nodes/auth.ts) serves the handler too.
  const entries = Object.entries(headers ?? {});
  if (headers && entries.every(([k, v]) => v !== undefined && k === k.toLowerCase()))
    return headers as Record<string, string>;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) if (v !== undefined) out[k.toLowerCase()] = v;
  return out;
}

function queryObject(event: HttpEvent): Record<string, string> {
  const out: Record<string, string> = {};
  new URLSearchParams(event.rawQueryString ?? '').forEach((v, k) => {
    if (!(k in out)) out[k] = v;
  });
  return out;
}

function bodyBytes(event: HttpEvent): Buffer | undefined {
  if (event.body === undefined || event.body === null || event.body === '') return undefined;
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body, 'utf8');
}

function isJson(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const media = contentType.split(';')[0]!.trim().toLowerCase();
  return media === 'application/json' || media.endsWith('+json');
}

function toResult(out: unknown, route: AnyRoute): HttpResult {
  const r: ResponseOut = out instanceof Reply ? out : { body: out };
  const status = r.status ?? route.successStatus ?? 200;
  if (r.raw !== undefined) {
    const isText = typeof r.raw === 'string';
    return {
      statusCode: status,
      headers: { ...r.headers },
      body: isText ? (r.raw as string) : (r.raw as Buffer).toString('base64'),
      isBase64Encoded: !isText,
    };
  }
  if (status === 204 || r.body === undefined) return { statusCode: status, headers: { ...r.headers } };
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json', ...r.headers },
    body: JSON.stringify(r.body),
  };
}

/** Tests that change the `api-key` secret: the next call reads it again. */
export const resetApiKeyCache = () => resetBootstrapKeyCache();

/** A write the store refused before sending it: too large is 413, the rest is the request's fault as a validation error. */
function unstorable(error: UnstorableError): HttpError {
  if (error.reason === 'item_too_large') return new HttpError(413, error.message, 'PAYLOAD_TOO_LARGE');
  return new ValidationError([{ loc: ['body'], msg: error.message, type: error.reason }]);
}

export interface HttpHandlerOptions {
  routes: AnyRoute[];
  context: () => Promise<AppContext>;
  corsOrigins: string[];
}

/**
 * The middy pipeline every HTTP entry point runs, in Lambda and in the local runtime:
 * request id → CORS → routing, auth, body parsing and validation → errors in the route's shape.
 */
export function createHttpHandler(options: HttpHandlerOptions) {
  const router = new Router(options.routes);

  const dispatch = async function dispatch(event: HttpEvent, lambdaContext: Context): Promise<HttpResult> {
    const ctx = await options.context();
    const internal = internals.get(lambdaContext)!;
    const method = event.requestContext.http.method.toUpperCase();
    const path = event.rawPath || event.requestContext.http.path;
    const headers = lowerHeaders(event.headers);
    await assertThroughFront(ctx, headers);

    if (method === 'OPTIONS') return { statusCode: 204, headers: preflightHeaders() };

    const match = router.match(method === 'HEAD' ? 'GET' : method, path);
    if (match.kind === 'none') throw new HttpError(404, `Not Found: ${method} ${path}`, 'NOT_FOUND');
    if (match.kind === 'method') {
      throw new HttpError(405, 'Method Not Allowed', 'METHOD_NOT_ALLOWED', undefined, {
        allow: match.allowed.join(', '),
      });
    }
    const { route } = match;
    internal.style = route.errorStyle;
    annotateTrace({ route: `${method} ${route.path}` });
    // A command's result call: its lines and trace carry the command id.
    if (match.params['commandId']) {
      addToLogContext({ commandId: match.params['commandId'] });
      annotateTrace({ commandId: match.params['commandId'] });
    }

    internal.route = route;
    internal.params = match.params;
    if (route.scope === 'user') {
      internal.principal = await authenticate(ctx, headers, route);
      assertRole(internal.principal, route);
    }
    if (route.hook) {
      const hookIn = {
        method,
        path,
        headers,
        requestId: internal.requestId,
        sourceIp: event.requestContext.http.sourceIp,
      };
      internal.hook = (await route.hook(hookIn, ctx)) ?? undefined;
    }

    const raw = bodyBytes(event);
    if (raw && raw.length > ctx.config.MAX_BODY_BYTES && route.bodyType !== 'multipart') {
      throw new HttpError(
        413,
        `Request body exceeds ${ctx.config.MAX_BODY_BYTES} bytes`,
        'PAYLOAD_TOO_LARGE',
      );
    }
    const params = route.params ? parseOrThrow(route.params, match.params, 'path') : match.params;
    const query = route.query ? parseOrThrow(route.query, queryObject(event), 'query') : queryObject(event);

    let body: unknown = undefined;
    const bodyType = route.bodyType ?? (route.body ? 'json' : 'none');
    if (bodyType === 'json') {
      if (raw) {
        if (!isJson(headers['content-type'])) {
          throw new HttpError(415, 'Content-Type must be application/json', 'UNSUPPORTED_MEDIA_TYPE');
        }
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch (error) {
          throw new ValidationError(
            [
              {
                loc: ['body'],
                msg: `JSON decode error: ${(error as Error).message}`,
                type: 'value_error.jsondecode',
              },
            ],
            invalidInputStatus(route.path),
          );
        }
        const issue = findLimitIssue(body);
        if (issue)
          throw new ValidationError([{ loc: ['body', ...issue.path], msg: issue.msg, type: issue.type }]);
      }
      if (route.body) body = parseOrThrow(route.body, body, 'body');
    }

    const out = await route.handler(
      {
        params,
        query,
        body,
        headers,
        rawBody: raw,
        requestId: internal.requestId,
        sourceIp: event.requestContext.http.sourceIp,
        principal: internal.principal,
      },
      ctx,
    );
    const result = toResult(out, route);
    if (method === 'HEAD') delete result.body;
    return result;
  };

  async function tagResponse(request: middy.Request<HttpEvent, HttpResult, Error, Context>): Promise<void> {
    const internal = internals.get(request.context);
    if (!internal || !request.response) return;
    request.response = {
      ...request.response,
      headers: { ...internal.hook?.headers, ...request.response.headers, 'x-request-id': internal.requestId },
    };
    const ctx = await options.context().catch(() => undefined);
    if (internal.hook?.done) {
      await internal.hook
        .done(request.response.statusCode ?? 200, Date.now() - internal.startedAt)
        .catch((error: unknown) =>
          ctx?.logger.warn('route hook failed after the response', { error: error as Error }),
        );
    }
    // Every state-changing user call, refused or not, in the audit log.
    const method = request.event.requestContext.http.method.toUpperCase();
    if (ctx && internal.route?.scope === 'user' && !['GET', 'HEAD', 'OPTIONS'].includes(method)) {
      await recordAudit(ctx, {
        requestId: internal.requestId,
        actor: actorOf(internal.principal),
        method,
        route: internal.route.path,
        path: request.event.rawPath,
        targets: internal.params ?? {},
        status: request.response.statusCode ?? 200,
      }).catch((error: unknown) => ctx.logger.error('audit record failed', { error: error as Error }));
    }
    if (ctx) {
      // By route template; a path no route claims is one series, whatever was asked.
      await countHttpRequest(
        ctx,
        request.event.requestContext.http.method.toUpperCase(),
        internal.route?.path ?? 'unmatched',
        request.response.statusCode ?? 200,
        Date.now() - internal.startedAt,
      ).catch((error: unknown) => ctx.logger.warn('request count failed', { error: error as Error }));
    }
    if (ctx)
      logRequest(ctx.logger, {
        requestId: internal.requestId,
        method: request.event.requestContext.http.method,
        path: request.event.rawPath,
        status: request.response.statusCode,
        durationMs: Date.now() - internal.startedAt,
      });
  }

  const handler = middy<HttpEvent, HttpResult>(dispatch)
    .use({
      before: async function assignRequestId(request) {
        const requestId = currentLogContext().requestId ?? randomUUID();
        internals.set(request.context, {
          requestId,
          style: styleForPath(request.event.rawPath ?? ''),
          startedAt: Date.now(),
        });
      },
      after: tagResponse,
      onError: tagResponse,
    })
    .use(
      httpCors({
        origins: options.corsOrigins,
        credentials: false,
        exposeHeaders: CORS_EXPOSE_HEADERS.join(', '),
      }),
    )
    .use({
      onError: async function mapError(request) {
        const internal = internals.get(request.context) ?? {
          requestId: randomUUID(),
          style: 'fastapi' as ErrorStyle,
          startedAt: Date.now(),
        };
        const ctx = await options.context().catch(() => undefined);
        let error = request.error as unknown;
        if (error instanceof UnstorableError) error = unstorable(error);
        if (!(error instanceof HttpError)) {
          ctx?.logger.error('unhandled error', { requestId: internal.requestId, error: error as Error });
          error = new HttpError(500, 'Internal Server Error', 'INTERNAL_ERROR');
        }
        const httpError = error as HttpError;
        // Invalid input: 422 as FastAPI (the NVIDIA document), 400 where the other documents say so.
        const status =
          httpError instanceof ValidationError && httpError.status === 422
            ? invalidInputStatus(internal.route?.path ?? '')
            : httpError.status;
        request.response = {
          statusCode: status,
          headers: { 'content-type': 'application/json', ...httpError.headers },
          body: JSON.stringify(
            renderError(internal.style, {
              error: httpError,
              requestId: internal.requestId,
              now: new Date(ctx?.now() ?? Date.now()),
            }),
          ),
        };
      },
    });

  // Every log line and trace of the request carries its id (API Gateway's, or a new one locally).
  return (event: HttpEvent, context: Context): Promise<HttpResult> => {
    const requestId = event.requestContext?.requestId || randomUUID();
    annotateTrace({ requestId });
    const client = clientRequestId(event.headers);
    return withLogContext({ requestId, ...(client ? { clientRequestId: client } : {}) }, () =>
      handler(event, context),
    );
  };
}
