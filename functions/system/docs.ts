import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { OPENAPI_FILE } from './openapi-file.js';

/** Swagger UI and ReDoc, served from their npm packages: no CDN. */
export const DOCS_ASSETS: Record<string, { pkg: string; file: string; type: string }> = {
  'swagger-ui.css': { pkg: 'swagger-ui-dist', file: 'swagger-ui.css', type: 'text/css' },
  'swagger-ui-bundle.js': { pkg: 'swagger-ui-dist', file: 'swagger-ui-bundle.js', type: 'text/javascript' },
  'redoc.standalone.js': { pkg: 'redoc', file: 'bundles/redoc.standalone.js', type: 'text/javascript' },
};

function packageDir(pkg: string): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve(`${pkg}/package.json`));
}

const cache = new Map<string, Buffer>();

export async function readDocsAsset(
  name: string,
  assetsDir?: string,
): Promise<{ body: Buffer; type: string } | undefined> {
  // Own keys only: `constructor` or `__proto__` name no asset.
  const asset = Object.hasOwn(DOCS_ASSETS, name) ? DOCS_ASSETS[name] : undefined;
  if (!asset) return undefined;
  let body = cache.get(name);
  if (!body) {
    const path = assetsDir ? join(assetsDir, name) : join(packageDir(asset.pkg), asset.file);
    body = await readFile(path);
    cache.set(name, body);
  }
  return { body, type: asset.type };
}

/** The OpenAPI document written at synth beside the docs assets (Lambda bundles only). */
export async function readPrebuiltOpenApi(assetsDir: string | undefined): Promise<unknown> {
  if (!assetsDir) throw new Error('DOCS_ASSETS_DIR is unset: the prebuilt OpenAPI document cannot be found');
  return JSON.parse(await readFile(join(assetsDir, OPENAPI_FILE), 'utf8'));
}

export const swaggerPage = (specUrl: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>GPU Fleet Control Plane - Swagger UI</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({ url: ${JSON.stringify(specUrl)}, dom_id: '#swagger-ui' });</script>
</body>
</html>
`;

export const redocPage = (specUrl: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>GPU Fleet Control Plane - ReDoc</title>
</head>
<body>
<redoc spec-url=${JSON.stringify(specUrl)}></redoc>
<script src="/docs/assets/redoc.standalone.js"></script>
</body>
</html>
`;
