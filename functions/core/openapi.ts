import { OpenAPIRegistry, OpenApiGeneratorV31, extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import * as z from 'zod';
import { requiredRole } from './access.js';
import { invalidInputStatus } from './documents.js';
import type { AnyRoute } from './route.js';
import { OPERATION_DOCS, PENDING_EXAMPLE, docKey } from './operation-docs.js';

extendZodWithOpenApi(z);

const fastapiError = z.object({
  detail: z.union([
    z.string(),
    z.array(z.object({ loc: z.array(z.union([z.string(), z.number()])), msg: z.string(), type: z.string() })),
  ]),
});
const trainingError = fastapiError.extend({ error_type: z.string() });
const novitaError = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
    timestamp: z.string(),
    requestId: z.string(),
  }),
});

/** The OpenAPI 3.1 document, generated from the same route table the server runs. */
export function buildOpenApi(routes: readonly AnyRoute[], info: { version: string; serverUrl?: string }) {
  const registry = new OpenAPIRegistry();
  for (const r of routes) {
    const errorSchema =
      r.errorStyle === 'novita' ? novitaError : r.errorStyle === 'training' ? trainingError : fastapiError;
    const errorContent = { 'application/json': { schema: errorSchema } };
    const success = r.successStatus ?? 200;
    const responses: Record<
      string,
      { description: string; content?: Record<string, { schema: z.ZodType }> }
    > = {
      [success]: {
        description: success === 204 ? 'No Content' : 'Success',
        ...(success === 204
          ? {}
          : r.produces
            ? {
                content: Object.fromEntries(
                  [r.produces]
                    .flat()
                    .map((type) => [type, { schema: z.string().openapi({ format: 'binary' }) }]),
                ),
              }
            : { content: { 'application/json': { schema: r.response ?? z.unknown() } } }),
      },
    };
    const invalid = invalidInputStatus(r.path);
    for (const [status, declared] of Object.entries(r.responses ?? {})) {
      responses[status] =
        typeof declared === 'string'
          ? { description: declared, content: errorContent }
          : {
              description: declared.description,
              content: { 'application/json': { schema: declared.schema } },
            };
    }
    // A declared "invalid ..." 422 is answered with the document's status (a handler's own 422s stay).
    if (invalid !== 422 && responses[422] && !responses[invalid]) responses[invalid] = responses[422];
    const bodyType = r.bodyType ?? (r.body ? 'json' : 'none');
    // What the pipeline (functions/core/http.ts) answers before any handler runs.
    if (r.params || r.query || r.body || bodyType !== 'none') {
      responses[invalid] ??= {
        description: 'Validation error',
        content: errorContent,
      };
    }
    if (r.scope !== 'public') {
      responses[401] ??= {
        description:
          r.scope === 'agent'
            ? 'Missing or invalid node credential'
            : 'Missing or invalid API key (API_AUTH=true)',
        content: errorContent,
      };
    }
    if (r.scope === 'user' && requiredRole(r) !== 'viewer') {
      responses[403] ??= {
        description: `The API key's role is below ${requiredRole(r)} (API_AUTH=true)`,
        content: errorContent,
      };
    }
    if (bodyType !== 'none') {
      responses[413] ??= {
        description: 'The body exceeds MAX_BODY_BYTES, or the item the store’s limit',
        content: errorContent,
      };
    }
    if (bodyType === 'json') {
      responses[415] ??= { description: 'Content-Type is not application/json', content: errorContent };
    }
    // Answered by the HTTP server itself, before any route: no body.
    responses[431] ??= {
      description:
        'The request line and headers exceed the server’s limit (16 KB here; API Gateway’s own on AWS)',
    };
    // A body the schema needs (no `undefined` accepted) is a required request body.
    const bodyRequired = bodyType === 'multipart' || (!!r.body && !r.body.safeParse(undefined).success);
    registry.registerPath({
      method: r.method.toLowerCase() as 'get',
      path: r.path,
      summary: r.summary,
      tags: r.tags,
      operationId: `${r.method.toLowerCase()}_${r.path
        .replace(/[{}]/g, '')
        .replace(/[^A-Za-z0-9]+/g, '_')
        .replace(/^_|_$/g, '')}`,
      request: {
        ...(r.params ? { params: r.params as z.ZodObject } : {}),
        ...(r.query ? { query: r.query as z.ZodObject } : {}),
        ...(bodyType === 'json' && r.body
          ? { body: { required: bodyRequired, content: { 'application/json': { schema: r.body } } } }
          : {}),
        ...(bodyType === 'binary'
          ? {
              body: {
                required: true,
                content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } },
              },
            }
          : {}),
        ...(bodyType === 'multipart'
          ? {
              body: {
                required: true,
                content: {
                  'multipart/form-data': {
                    schema: z.object({ file: z.string().openapi({ format: 'binary' }) }),
                  },
                },
              },
            }
          : {}),
      },
      responses,
      // OpenAPI 3.1 lets a bearer requirement name roles: the least role a key needs.
      ...(r.scope === 'public'
        ? { security: [] }
        : r.scope === 'agent'
          ? { security: [{ agentToken: [] }] }
          : { security: [{ bearer: [requiredRole(r)] }], 'x-required-role': requiredRole(r) }),
    });
  }
  const generator = new OpenApiGeneratorV31(registry.definitions);
  const doc = generator.generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'GPU Fleet Control Plane',
      version: info.version,
      description:
        'One API for edge Jetson boards, on-prem GPU servers and rented cloud GPUs: containers, training jobs, model-aware scheduling, the Jetson fleet and cloud instances.',
    },
    ...(info.serverUrl ? { servers: [{ url: info.serverUrl }] } : {}),
  });
  doc.components = {
    ...doc.components,
    securitySchemes: {
      bearer: {
        type: 'http',
        scheme: 'bearer',
        description:
          'An API key; each operation names the least role it needs (viewer < operator < admin). POST /agent/register also takes a join token or the node’s own credential.',
      },
      agentToken: {
        type: 'http',
        scheme: 'bearer',
        description: 'A node credential from POST /agent/register',
      },
    },
  };
  doc.security = [{ bearer: [] }];
  boundNumbers(doc);
  describeOperations(doc as unknown as { paths?: Record<string, Record<string, OperationObject>> });
  return doc;
}

/** What the pipeline and the store take (functions/core/limits.ts): ±2^53−1. */
const SAFE = Number.MAX_SAFE_INTEGER;

/** States the number range every request is held to on each number schema that states none. */
function boundNumbers(node: unknown): void {
  if (Array.isArray(node)) {
    node.forEach(boundNumbers);
    return;
  }
  if (!node || typeof node !== 'object') return;
  const schema = node as Record<string, unknown>;
  const types = Array.isArray(schema['type']) ? (schema['type'] as unknown[]) : [schema['type']];
  if (types.includes('integer') || types.includes('number')) {
    if (schema['maximum'] === undefined && schema['exclusiveMaximum'] === undefined) schema['maximum'] = SAFE;
    if (schema['minimum'] === undefined && schema['exclusiveMinimum'] === undefined)
      schema['minimum'] = -SAFE;
  }
  Object.values(schema).forEach(boundNumbers);
}

interface MediaObject {
  schema?: unknown;
  example?: unknown;
}
interface OperationObject {
  description?: string;
  parameters?: { name: string; in: string; example?: unknown }[];
  requestBody?: { content?: Record<string, MediaObject> };
  responses?: Record<string, { content?: Record<string, MediaObject> }>;
}

/**
 * Adds each operation's description and examples (functions/core/operation-docs.ts): the request
 * example is what Swagger's "Try it out" starts from; a 202 of pending commands gets its example.
 */
function describeOperations(doc: { paths?: Record<string, Record<string, OperationObject>> }): void {
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(item)) {
      const d = OPERATION_DOCS[docKey(method, path)];
      if (d) op.description = d.description;
      for (const p of op.parameters ?? []) {
        const example = d?.params?.[p.name];
        if (p.in === 'path' && example !== undefined) p.example = example;
      }
      const body = op.requestBody?.content?.['application/json'];
      if (body && d?.request !== undefined) body.example = d.request;
      for (const [status, r] of Object.entries(op.responses ?? {})) {
        const json = r.content?.['application/json'];
        if (!json) continue;
        if (status === '202' && JSON.stringify(json.schema ?? {}).includes('pending_commands'))
          json.example ??= PENDING_EXAMPLE;
        else if (status === '202' && d?.accepted !== undefined) json.example ??= d.accepted;
        else if (status.startsWith('2') && d?.response !== undefined) json.example ??= d.response;
      }
    }
  }
}
