import { describe, expect, it } from 'vitest';
import { buildOpenApi } from '../../../functions/core/openapi.js';
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
