import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { buildOpenApi } from '../../../functions/core/openapi.js';
import { VERSION } from '../../../functions/core/version.js';
import { routes } from '../../../functions/routes.js';
import { DOCS_ASSETS_SUBDIR, PROJECT_ROOT, esbuildOptions, writeOpenApiFile } from '../../../lib/bundling.js';
import { groupEntry } from '../../../lib/groups.js';

// Inside the repository, so the bundle's external @aws-sdk imports resolve from node_modules as on Lambda.
const scratchRoot = join(PROJECT_ROOT, 'node_modules', '.cache');
let scratch: string | undefined;
afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('the system function as bundled for Lambda', () => {
  it('serves /openapi.json from the document written at synth, equal to the generated one', async () => {
    // Prepare: bundle exactly as the stack does, and lay the prebuilt document out as its hook does.
    await mkdir(scratchRoot, { recursive: true });
    scratch = await mkdtemp(join(scratchRoot, 'system-bundle-'));
    const outfile = join(scratch, 'index.mjs');
    await build(esbuildOptions(join(PROJECT_ROOT, groupEntry('system')), outfile));
    const assets = join(scratch, DOCS_ASSETS_SUBDIR);
    await mkdir(assets);
    await copyFile(writeOpenApiFile(routes), join(assets, 'openapi.json'));
    const bundle = await readFile(outfile, 'utf8');
    process.env.DOCS_ASSETS_DIR = assets;
    process.env.LOG_LEVEL = 'SILENT';
    const { handler } = (await import(pathToFileURL(outfile).href)) as {
      handler: (event: unknown, context: unknown) => Promise<{ statusCode: number; body: string }>;
    };

    // Act
    const res = await handler(
      {
        version: '2.0',
        routeKey: '$default',
        rawPath: '/openapi.json',
        rawQueryString: '',
        headers: { host: 'api.example.com' },
        requestContext: {
          http: {
            method: 'GET',
            path: '/openapi.json',
            protocol: 'HTTP/1.1',
            sourceIp: '127.0.0.1',
            userAgent: 't',
          },
          requestId: 'r-1',
          routeKey: '$default',
          stage: '$default',
          timeEpoch: Date.now(),
        },
        isBase64Encoded: false,
      },
      { awsRequestId: 'r-1', getRemainingTimeInMillis: () => 29_000 },
    );

    // Assess: the generator is not in the bundle, yet the document is the whole table's.
    expect(bundle).not.toContain('openapi:"3.1.0"'); // the generator's literal, minified
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body)).toEqual(
      JSON.parse(JSON.stringify(buildOpenApi(routes, { version: VERSION }))),
    );
  }, 60_000);
});
