import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OutputFormat, type BundlingOptions, type ICommandHooks } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { BuildOptions } from 'esbuild';
import { buildOpenApi } from '../functions/core/openapi.js';
import type { AnyRoute } from '../functions/core/route.js';
import { VERSION } from '../functions/core/version.js';
import { OPENAPI_FILE, OPENAPI_PREBUILT } from '../functions/system/openapi-file.js';
import { DOCS_ASSETS } from '../functions/system/docs.js';

/** The repository root: entries, package-lock.json and node_modules are resolved from here. */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const LOCK_FILE = join(PROJECT_ROOT, 'package-lock.json');

/** Where Lambda unpacks the code: the docs assets land under it. */
export const LAMBDA_TASK_ROOT = '/var/task';
export const DOCS_ASSETS_SUBDIR = 'docs-assets';

/**
 * How every function is bundled. The stack hands these to NodejsFunction and bench/bundles.ts to
 * esbuild's API, so the benchmark measures what ships.
 */
export const BUNDLE = {
  target: 'node24',
  format: 'esm',
  /** ESM output, so Lambda loads `index.mjs`. */
  outFile: 'index.mjs',
  minify: true,
  sourceMap: true,
  // Stack traces map to file and line without shipping the sources: a smaller asset and map to parse.
  sourcesContent: false,
  // Prefer ESM builds of dependencies: they tree-shake.
  mainFields: ['module', 'main'],
  // The nodejs24.x runtime ships SDK v3 and its @smithy packages; bundling them only adds cold-start
  // bytes. Only what our code imports itself stays external: another library's own @smithy
  // dependency (the X-Ray SDK's v2 service-error-classification) is bundled, at the version it needs.
  externalModules: ['@aws-sdk/*', '@smithy/signature-v4', '@smithy/types'],
  // CommonJS dependencies bundled into ESM still call require(); give them one.
  banner:
    "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  // /openapi.json ships prebuilt beside the docs assets (written at synth from the same route
  // table), so the generator and the whole of zod it needs stay out of the bundles.
  define: { [OPENAPI_PREBUILT]: '"true"' },
} as const;

/** Node flags the functions run with: stack traces in the logs point at the TypeScript sources. */
export const NODE_OPTIONS = '--enable-source-maps';

/** NodejsFunction's options for BUNDLE. */
export function nodejsBundling(commandHooks?: ICommandHooks): BundlingOptions {
  return {
    target: BUNDLE.target,
    format: OutputFormat.ESM,
    minify: BUNDLE.minify,
    sourceMap: BUNDLE.sourceMap,
    sourcesContent: BUNDLE.sourcesContent,
    mainFields: [...BUNDLE.mainFields],
    externalModules: [...BUNDLE.externalModules],
    banner: BUNDLE.banner,
    define: { ...BUNDLE.define },
    // esbuild is a devDependency: bundle locally, never in Docker.
    forceDockerBundling: false,
    ...(commandHooks ? { commandHooks } : {}),
  };
}

/** esbuild's API options for BUNDLE, equal to the CLI flags NodejsFunction passes. */
export function esbuildOptions(entry: string, outfile: string): BuildOptions {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: BUNDLE.target,
    format: BUNDLE.format,
    minify: BUNDLE.minify,
    sourcemap: BUNDLE.sourceMap,
    sourcesContent: BUNDLE.sourcesContent,
    mainFields: [...BUNDLE.mainFields],
    external: [...BUNDLE.externalModules],
    banner: { js: BUNDLE.banner },
    define: { ...BUNDLE.define },
    absWorkingDir: PROJECT_ROOT,
    logLevel: 'warning',
  };
}

/** Writes the OpenAPI document of `routes` into a fresh temp folder; returns the file's path. */
export function writeOpenApiFile(routes: readonly AnyRoute[]): string {
  const file = join(mkdtempSync(join(tmpdir(), 'fleet-openapi-')), OPENAPI_FILE);
  writeFileSync(file, JSON.stringify(buildOpenApi(routes, { version: VERSION })));
  return file;
}

/**
 * Copies Swagger UI, ReDoc, the prebuilt OpenAPI document (`openapiFile`, absolute) and
 * install/install.sh next to the bundle (the system function serves them from DOCS_ASSETS_DIR). Package paths are resolved
 * through node_modules and made relative to the input folder, so the same commands work for
 * local and Docker bundling.
 */
export function docsAssetsHooks(openapiFile: string): ICommandHooks {
  const require = createRequire(import.meta.url);
  const sources = Object.entries(DOCS_ASSETS).map(([name, asset]) => {
    const pkgDir = dirname(require.resolve(`${asset.pkg}/package.json`));
    return { name, from: relative(PROJECT_ROOT, join(pkgDir, asset.file)) };
  });
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return {
    beforeBundling: () => [],
    beforeInstall: () => [],
    afterBundling: (inputDir, outputDir) => [
      `mkdir -p ${quote(join(outputDir, DOCS_ASSETS_SUBDIR))}`,
      ...sources.map(
        ({ name, from }) =>
          `cp ${quote(join(inputDir, from))} ${quote(join(outputDir, DOCS_ASSETS_SUBDIR, name))}`,
      ),
      `cp ${quote(openapiFile)} ${quote(join(outputDir, DOCS_ASSETS_SUBDIR, OPENAPI_FILE))}`,
      // GET /install.sh (functions/system/install.ts reads it from INSTALL_ASSETS_DIR).
      `cp ${quote(join(inputDir, 'install/install.sh'))} ${quote(join(outputDir, DOCS_ASSETS_SUBDIR, 'install.sh'))}`,
    ],
  };
}
