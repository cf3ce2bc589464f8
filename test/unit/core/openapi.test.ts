import { describe, expect, it } from 'vitest';
import { buildOpenApi } from '../../../functions/core/openapi.js';
import { OPERATION_DOCS } from '../../../functions/core/operation-docs.js';
import { routes } from '../../../functions/routes.js';

type Operation = {
  requestBody?: { required?: boolean };
  responses: Record<string, { content?: Record<string, { schema?: Record<string, unknown> }> }>;
  security?: unknown[];
};

const doc = buildOpenApi(routes, { version: 'test' }) as unknown as {
  paths: Record<string, Record<string, Operation>>;
};
const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
  Object.entries(item).map(([method, op]) => ({ id: `${method.toUpperCase()} ${path}`, op })),
);

describe('/openapi.json from the route table', () => {
  it('documents every route', () => {
    expect(operations.length).toBe(routes.length);
  });

  it('gives every success response a schema (no empty {} for a JSON body)', () => {
    const empty = operations.flatMap(({ id, op }) =>
      Object.entries(op.responses)
        .filter(([status]) => status.startsWith('2') && status !== '204')
        .flatMap(([status, r]) =>
          Object.entries(r.content ?? {})
            .filter(([type, c]) => type === 'application/json' && Object.keys(c.schema ?? {}).length === 0)
            .map(() => `${id} ${status}`),
        ),
    );
    expect(empty).toEqual([]);
  });

  it('marks a request body required when its schema does not accept none', () => {
    const tasks = doc.paths['/tasks']!['post']!;
    expect(tasks.requestBody?.required).toBe(true);
    // POST /containers/{imageId}/start takes no body at all.
    expect(doc.paths['/containers/{imageId}/start']!['post']!.requestBody?.required).toBe(false);
  });

  it('declares 401 on every operation behind a credential, and none on public ones', () => {
    const credentialed = operations.filter(({ op }) => op.security === undefined || op.security.length > 0);
    expect(credentialed.length).toBeGreaterThan(100);
    const missing = credentialed.filter(({ op }) => !op.responses['401']);
    expect(missing.map((o) => o.id)).toEqual([]);
    expect(doc.paths['/health']!['get']!.responses['401']).toBeUndefined();
  });

  it('documents each 202 with its own body, not the error shape', () => {
    const with202 = operations.filter(({ op }) => op.responses['202']);
    expect(with202.length).toBeGreaterThan(10);
    for (const { id, op } of with202) {
      const schema = JSON.stringify(op.responses['202']!.content?.['application/json']?.schema ?? {});
      expect(schema, id).not.toContain('"detail"');
    }
  });
});

describe('/openapi.json descriptions and examples', () => {
  type Documented = Operation & {
    summary?: string;
    description?: string;
    parameters?: { name: string; in: string; example?: unknown }[];
    requestBody?: { content?: Record<string, { example?: unknown }> };
  };
  const documented = operations as { id: string; op: Documented }[];

  it('gives every operation a summary and a description of its own', () => {
    const missing = documented.filter(
      ({ op }) => !op.summary || !op.description || op.description.length < 20,
    );
    expect(missing.map((o) => o.id)).toEqual([]);
    // Every entry of the docs table names a real operation (no stale keys after a route moves).
    const ids = new Set(documented.map((o) => o.id));
    expect(Object.keys(OPERATION_DOCS).filter((k) => !ids.has(k))).toEqual([]);
  });

  it('gives every JSON request body an example its own schema accepts', () => {
    const withBody = routes.filter((r) => r.body && (r.bodyType ?? 'json') === 'json');
    expect(withBody.length).toBeGreaterThanOrEqual(36);
    const problems = withBody.flatMap((r) => {
      const id = `${r.method} ${r.path}`;
      const example = documented.find((o) => o.id === id)?.op.requestBody?.content?.['application/json']
        ?.example;
      if (example === undefined) return [`${id}: no example`];
      const parsed = r.body!.safeParse(example);
      return parsed.success ? [] : [`${id}: ${parsed.error.issues.map((i) => i.message).join('; ')}`];
    });
    expect(problems).toEqual([]);
  });

  it('gives every path parameter an example its schema accepts', () => {
    const problems = routes.flatMap((r) => {
      const names = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
      if (!names.length) return [];
      const example = OPERATION_DOCS[`${r.method} ${r.path}`]?.params ?? {};
      const missing = names.filter((n) => example[n] === undefined);
      if (missing.length) return [`${r.method} ${r.path}: no example for ${missing.join(', ')}`];
      const parsed = r.params?.safeParse(example);
      return parsed && !parsed.success ? [`${r.method} ${r.path}: ${parsed.error.message}`] : [];
    });
    expect(problems).toEqual([]);
  });

  it('states units of the resource fields and pre-fills POST /start/container with a valid request', () => {
    const op = doc.paths['/start/container']!['post']! as Documented & {
      requestBody: {
        content: Record<string, { schema: { properties: Record<string, unknown> }; example: unknown }>;
      };
    };
    const body = op.requestBody.content['application/json']!;
    const resources = JSON.stringify(body.schema.properties['resources']);
    expect(resources).toContain('in cores');
    expect(resources).toContain('512m');
    expect(body.example).toMatchObject({ resources: { image: 'nginx:alpine', cpu_limit: '0.5', gpus: 0 } });
  });

  it('gives each 202 of pending commands an example', () => {
    const missing = documented
      .filter(({ op }) => op.responses['202'])
      .filter(({ op }) => {
        const media = op.responses['202']!.content?.['application/json'] as { example?: unknown } | undefined;
        return media?.example === undefined;
      });
    expect(missing.map((o) => o.id)).toEqual([]);
  });

  it('gives every operation with a JSON success body a response example', () => {
    const missing = routes
      .filter((r) => r.response && OPERATION_DOCS[`${r.method} ${r.path}`]?.response === undefined)
      .map((r) => `${r.method} ${r.path}`);
    expect(missing).toEqual([]);
  });

  it('holds each response example to the route’s response schema', () => {
    const problems = routes.flatMap((r) => {
      const example = OPERATION_DOCS[`${r.method} ${r.path}`]?.response;
      if (example === undefined || !r.response) return [];
      const parsed = r.response.safeParse(example);
      return parsed.success ? [] : [`${r.method} ${r.path}: ${parsed.error.message}`];
    });
    expect(problems).toEqual([]);
  });
});
