import type { z } from 'zod';
import type { Principal, Role } from './roles.js';
import type { AppContext } from './context.js';
import type { ErrorStyle } from './errors.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * Lambda groups: one function per group on AWS. Each is declared once, with its routes, in
 * `functions/groups/<group>.ts`; the CDK stack, the local runtime and /openapi.json derive from those.
 */
export type RouteGroup =
  'system' | 'orchestrator' | 'agent' | 'training' | 'cluster' | 'vision' | 'fleet' | 'novita';

/** Who may call: public (health, docs), user (API key when auth is on), agent (node credential). */
export type AuthScope = 'public' | 'user' | 'agent';

export interface RequestIn<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  headers: Record<string, string>;
  /** The raw body bytes, for multipart and binary routes. */
  rawBody?: Buffer;
  requestId: string;
  sourceIp?: string;
  /** Who calls (scope 'user'): a key with its role, a route's own credential, or anonymous. */
  principal?: Principal;
}

export interface ResponseOut {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Binary or text body sent as is, with its content type in headers. */
  raw?: Buffer | string;
}

/** What a route hook sees: the request before its body is parsed or validated. */
export interface HookIn {
  method: string;
  path: string;
  headers: Record<string, string>;
  requestId: string;
  sourceIp?: string;
}

/** A hook's answer: headers for the response (error or not), and a callback with the final status. */
export interface HookOut {
  headers?: Record<string, string>;
  done?: (status: number, durationMs: number) => Promise<void>;
}

/** A documented response whose body is not the route's error shape. */
export interface DocumentedResponse {
  description: string;
  schema: z.ZodType;
}

/** A handler's explicit response: status, headers, or a raw body. Anything else returned is the JSON body. */
export class Reply implements ResponseOut {
  constructor(
    readonly status: number,
    readonly body?: unknown,
    readonly headers?: Record<string, string>,
    readonly raw?: Buffer | string,
  ) {}
}

/**
 * A route's handler. `R` is its success body: a route that declares a `response` schema returns
 * that schema's output type (checked when compiled, so the view cannot drift from /openapi.json),
 * or a {@link Reply} for another status, headers or a raw body.
 */
export type Handler<P, Q, B, R = unknown> = (req: RequestIn<P, Q, B>, ctx: AppContext) => Promise<R | Reply>;

type Infer<S> = S extends z.ZodType ? z.output<S> : undefined;

export interface RouteSpec<
  PS extends z.ZodType | undefined = z.ZodType | undefined,
  QS extends z.ZodType | undefined = z.ZodType | undefined,
  BS extends z.ZodType | undefined = z.ZodType | undefined,
  R = unknown,
> {
  method: HttpMethod;
  /** API Gateway style: `/jobs/{job_id}`. */
  path: string;
  summary: string;
  tags: string[];
  errorStyle: ErrorStyle;
  scope: AuthScope;
  /** Scope 'user': the least role a key needs; GET routes default to viewer, the rest to operator. */
  role?: Role;
  params?: PS;
  query?: QS;
  body?: BS;
  /** `json` (default when a body schema is given), `multipart`, `binary` or `none`. */
  bodyType?: 'json' | 'multipart' | 'binary' | 'none';
  /** Path parameters that may hold `/` (image ids like `host:5000/repo:tag`). Local router and `$default` only. */
  greedy?: string[];
  /** The success body's schema: documents it in /openapi.json and types what the handler returns. */
  response?: z.ZodType<R>;
  successStatus?: number;
  /**
   * Extra documented responses for OpenAPI: status → description (an error in the route's error shape),
   * or a description with the body's schema (a 202 and other non-error answers).
   */
  responses?: Record<number, string | DocumentedResponse>;
  /** Content type(s) of a non-JSON success response (HTML pages, images): one, or each it may be. */
  produces?: string | readonly string[];
  handler: Handler<Infer<PS>, Infer<QS>, Infer<BS>, NoInfer<R>>;
  /**
   * Runs after routing and auth, before parsing and validation (rate limits, request counts).
   * It may throw an HttpError; its headers are added to whatever the response turns out to be.
   */
  hook?: (req: HookIn, ctx: AppContext) => Promise<HookOut | void>;
  /**
   * Scope 'user' with API_AUTH=true: another credential this route takes in place of the API key
   * (a join token on /agent/register). True lets the request through.
   */
  altAuth?: (headers: Record<string, string>, ctx: AppContext) => Promise<boolean>;
}

/** A route with its types erased, as the router and generators see it. */
export type AnyRoute = RouteSpec<
  z.ZodType | undefined,
  z.ZodType | undefined,
  z.ZodType | undefined,
  unknown
> & {
  handler: Handler<any, any, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
};

/** A route of the table: declared in a group, which names the Lambda function that serves it. */
export type TableRoute = AnyRoute & { readonly group: RouteGroup };

/** Declares a route; the schemas type the handler's request and its success body. */
export function route<
  PS extends z.ZodType | undefined = undefined,
  QS extends z.ZodType | undefined = undefined,
  BS extends z.ZodType | undefined = undefined,
  R = unknown,
>(spec: RouteSpec<PS, QS, BS, R>): AnyRoute {
  return spec as unknown as AnyRoute;
}
