import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { InvokeResult } from './lambda.js';

/** One route of an HTTP API: its route key and the function its integration invokes. */
export interface HttpRoute {
  routeKey: string;
  functionLogicalId: string;
  /** The integration's payload format (only 2.0 is served). */
  payloadFormatVersion: string;
  timeoutMs: number;
}

export interface CorsConfiguration {
  AllowOrigins?: string[];
  AllowMethods?: string[];
  AllowHeaders?: string[];
  ExposeHeaders?: string[];
  MaxAge?: number;
  AllowCredentials?: boolean;
}

export interface HttpApiOptions {
  apiId: string;
  accountId: string;
  stage: string;
  routes: HttpRoute[];
  cors?: CorsConfiguration;
  invoke: (functionLogicalId: string, event: unknown) => Promise<InvokeResult>;
  maxBodyBytes?: number;
}

interface CompiledRoute extends HttpRoute {
  method: string;
  segments: string[];
  /** Sort key: per segment 0 literal, 1 `{param}`, 2 `{proxy+}`; `ANY` after a named method. */
  rank: number[];
}

// HTTP API answers 10 MB payloads at most.
const MAX_BODY = 10 * 1024 * 1024;
const JSON_TYPE = 'application/json';

const compile = (route: HttpRoute): CompiledRoute | undefined => {
  if (route.routeKey === '$default') return undefined;
  const [method, path] = route.routeKey.split(' ') as [string, string];
  const segments = path.split('/').slice(1);
  const rank = segments.map((s) => (/^\{.+\+\}$/.test(s) ? 2 : /^\{.+\}$/.test(s) ? 1 : 0));
  rank.push(method === 'ANY' ? 1 : 0);
  return { ...route, method, segments, rank };
};

const compareRank = (a: number[], b: number[]) => {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? -1) - (b[i] ?? -1);
    if (d) return d;
  }
  return 0;
};

/** Path parameters when `route` matches the raw (still percent-encoded) path segments. */
function matchRoute(
  route: CompiledRoute,
  method: string,
  parts: string[],
): Record<string, string> | undefined {
  if (route.method !== 'ANY' && route.method !== method) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < route.segments.length; i++) {
    const segment = route.segments[i]!;
    const greedy = /^\{(.+)\+\}$/.exec(segment);
    if (greedy) {
      const rest = parts.slice(i);
      if (!rest.length || rest.join('/') === '') return undefined;
      params[greedy[1]!] = decode(rest.join('/'));
      return params;
    }
    const part = parts[i];
    if (part === undefined) return undefined;
    const variable = /^\{(.+)\}$/.exec(segment);
    if (variable) {
      if (part === '') return undefined;
      params[variable[1]!] = decode(part);
    } else if (segment !== part) return undefined;
  }
  return parts.length === route.segments.length ? params : undefined;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const TEXT_TYPE = /^(text\/|application\/(json|xml|javascript|x-www-form-urlencoded|[\w.+-]*\+(json|xml)))/i;

/** API Gateway's request id shape: 16 characters of base64 ending in `=`. */
const requestIdOf = () => `${randomBytes(11).toString('base64').slice(0, 15)}=`;

/** `12/Mar/2020:19:03:58 +0000`, the `time` of API Gateway's request context. */
function clf(date: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(date.getUTCDate())}/${months[date.getUTCMonth()]}/${date.getUTCFullYear()}:${p(date.getUTCHours())}:${p(date.getUTCMinutes())}:${p(date.getUTCSeconds())} +0000`;
}

/**
 * An HTTP API of API Gateway, served by a local request handler: route selection (exact paths,
 * then `{param}`, then `{proxy+}`, then `$default`), the payload format 2.0 event, the 2.0
 * response rules, the API's CORS configuration, and its answers to function errors and timeouts.
 */
export function createHttpApi(options: HttpApiOptions) {
  const compiled = options.routes.map(compile).filter((r): r is CompiledRoute => r !== undefined);
  compiled.sort((a, b) => compareRank(a.rank, b.rank));
  const fallback = options.routes.find((r) => r.routeKey === '$default');
  const cors = options.cors;

  const select = (method: string, rawPath: string) => {
    const parts = rawPath.split('/').slice(1);
    for (const route of compiled) {
      const params = matchRoute(route, method, parts);
      if (params) return { route: route as HttpRoute, params };
    }
    return fallback ? { route: fallback, params: {} } : undefined;
  };

  const allowedOrigin = (origin: string | undefined): string | undefined => {
    if (!cors || !origin) return undefined;
    const origins = cors.AllowOrigins ?? [];
    if (origins.includes('*')) return '*';
    return origins.some((o) => o.toLowerCase() === origin.toLowerCase()) ? origin : undefined;
  };

  const send = (
    res: ServerResponse,
    status: number,
    headers: Record<string, string>,
    body: Buffer | string,
    requestId: string,
    origin: string | undefined,
  ) => {
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
    // API Gateway's CORS headers replace any the integration returned.
    if (cors) for (const k of Object.keys(out)) if (k.startsWith('access-control-')) delete out[k];
    const allowed = allowedOrigin(origin);
    if (allowed) {
      out['access-control-allow-origin'] = allowed;
      if (cors?.ExposeHeaders?.length) out['access-control-expose-headers'] = cors.ExposeHeaders.join(',');
      if (cors?.AllowCredentials) out['access-control-allow-credentials'] = 'true';
    }
    out['apigw-requestid'] = requestId;
    res.writeHead(status, out);
    res.end(body);
  };

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = requestIdOf();
    const started = new Date();
    const method = (req.method ?? 'GET').toUpperCase();
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const rawPath = q >= 0 ? target.slice(0, q) : target;
    const rawQueryString = q >= 0 ? target.slice(q + 1) : '';
    const origin = req.headers.origin;

    // Preflight: API Gateway answers it itself when the API has a CORS configuration.
    if (cors && method === 'OPTIONS' && origin && req.headers['access-control-request-method']) {
      const allowed = allowedOrigin(origin);
      const headers: Record<string, string> = {};
      if (allowed) {
        headers['access-control-allow-origin'] = allowed;
        if (cors.AllowMethods?.length) headers['access-control-allow-methods'] = cors.AllowMethods.join(',');
        if (cors.AllowHeaders?.length) headers['access-control-allow-headers'] = cors.AllowHeaders.join(',');
        if (cors.MaxAge !== undefined) headers['access-control-max-age'] = String(cors.MaxAge);
        if (cors.AllowCredentials) headers['access-control-allow-credentials'] = 'true';
      }
      res.writeHead(204, { ...headers, 'apigw-requestid': requestId });
      res.end();
      return;
    }

    const selected = select(method, rawPath);
    if (!selected) {
      send(
        res,
        404,
        { 'content-type': JSON_TYPE },
        JSON.stringify({ message: 'Not Found' }),
        requestId,
        origin,
      );
      return;
    }

    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > (options.maxBodyBytes ?? MAX_BODY)) {
        send(
          res,
          413,
          { 'content-type': JSON_TYPE },
          JSON.stringify({ message: 'Request Entity Too Large' }),
          requestId,
          origin,
        );
        return;
      }
      chunks.push(chunk as Buffer);
    }
    const raw = Buffer.concat(chunks);

    // Header names lower-cased, repeated headers joined with commas; cookies have their own field.
    const headers: Record<string, string> = {};
    const cookies: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!.toLowerCase();
      const value = req.rawHeaders[i + 1]!;
      if (name === 'cookie') {
        cookies.push(
          ...value
            .split(';')
            .map((c) => c.trim())
            .filter(Boolean),
        );
        continue;
      }
      headers[name] = name in headers ? `${headers[name]},${value}` : value;
    }
    const sourceIp = (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
    headers['x-forwarded-for'] = headers['x-forwarded-for']
      ? `${headers['x-forwarded-for']}, ${sourceIp}`
      : sourceIp;
    headers['x-forwarded-port'] = String(req.socket.localPort ?? '');
    headers['x-forwarded-proto'] = 'http';
    headers['x-amzn-trace-id'] ??=
      `Root=1-${Math.floor(started.getTime() / 1000).toString(16)}-${randomBytes(12).toString('hex')}`;

    const query: Record<string, string> = {};
    for (const pair of rawQueryString.split('&')) {
      if (!pair) continue;
      const eq = pair.indexOf('=');
      const key = decode((eq >= 0 ? pair.slice(0, eq) : pair).replace(/\+/g, ' '));
      const value = eq >= 0 ? decode(pair.slice(eq + 1).replace(/\+/g, ' ')) : '';
      query[key] = key in query ? `${query[key]},${value}` : value;
    }

    const contentType = headers['content-type'];
    const isText = raw.length === 0 || !contentType || TEXT_TYPE.test(contentType);
    const domainName = headers.host ?? `${options.apiId}.execute-api.local`;
    const { route, params } = selected;
    const event = {
      version: '2.0',
      routeKey: route.routeKey,
      rawPath,
      rawQueryString,
      ...(cookies.length ? { cookies } : {}),
      headers,
      ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
      requestContext: {
        accountId: options.accountId,
        apiId: options.apiId,
        domainName,
        domainPrefix: domainName.split('.')[0],
        http: {
          method,
          path: decode(rawPath),
          protocol: `HTTP/${req.httpVersion}`,
          sourceIp,
          userAgent: headers['user-agent'] ?? '',
        },
        requestId,
        routeKey: route.routeKey,
        stage: options.stage,
        time: clf(started),
        timeEpoch: started.getTime(),
      },
      ...(Object.keys(params).length ? { pathParameters: params } : {}),
      ...(raw.length ? { body: isText ? raw.toString('utf8') : raw.toString('base64') } : {}),
      isBase64Encoded: !isText,
    };

    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      options.invoke(route.functionLogicalId, event),
      new Promise<'integration-timeout'>(
        (resolve) => (timer = setTimeout(() => resolve('integration-timeout'), route.timeoutMs)),
      ),
    ]);
    clearTimeout(timer);

    const error = (status: number, message: string) =>
      send(res, status, { 'content-type': JSON_TYPE }, JSON.stringify({ message }), requestId, origin);
    // An integration that does not answer within its timeout (30 s at most for HTTP APIs): HTTP APIs
    // answer 503 {"message":"Service Unavailable"} (seen reported at
    // repost.aws/questions/QUY-RwZFRdTAa-rf6JrNTLRQ, "status codes http api gateway proxy").
    if (result === 'integration-timeout') return error(503, 'Service Unavailable');
    // A function error, its own timeout included (Lambda ends the invocation first when the
    // function's timeout is below the integration's): docs.aws.amazon.com/apigateway/latest/
    // developerguide/http-api-troubleshooting-lambda.html, {"message":"Internal Server Error"}.
    if (!result.ok) return error(500, 'Internal Server Error');

    let value: unknown;
    try {
      value = JSON.parse(result.payload);
    } catch {
      return error(500, 'Internal Server Error');
    }
    // Payload 2.0: a result without statusCode is a 200 JSON body holding that result.
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !('statusCode' in value)) {
      return send(res, 200, { 'content-type': JSON_TYPE }, result.payload, requestId, origin);
    }
    const response = value as {
      statusCode: unknown;
      headers?: Record<string, unknown>;
      cookies?: string[];
      body?: unknown;
      isBase64Encoded?: boolean;
    };
    const status = Number(response.statusCode);
    if (!Number.isInteger(status) || status < 100 || status > 599) return error(500, 'Internal Server Error');
    const outHeaders: Record<string, string> = { 'content-type': JSON_TYPE };
    for (const [k, v] of Object.entries(response.headers ?? {})) outHeaders[k.toLowerCase()] = String(v);
    const body =
      response.body === undefined || response.body === null
        ? ''
        : response.isBase64Encoded
          ? Buffer.from(String(response.body), 'base64')
          : typeof response.body === 'string'
            ? response.body
            : JSON.stringify(response.body);
    // set-cookie cannot be joined: one header per cookie (writeHead keeps what setHeader set).
    if (response.cookies?.length) res.setHeader('set-cookie', response.cookies.map(String));
    return send(res, status, outHeaders, body, requestId, origin);
  };
}
