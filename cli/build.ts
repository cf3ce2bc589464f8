import { readFileSync } from 'node:fs';
import { build } from 'esbuild';

/** Bundles the CLI into one ES module that runs with a bare `node dist/fleet.mjs` (package.json `bin`). */
const outfile = process.argv[2] ?? 'dist/fleet.mjs';
const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
await build({
  entryPoints: ['cli/main.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  minify: true,
  outfile,
  define: { FLEET_CLI_VERSION: JSON.stringify(version) },
  banner: {
    js: "#!/usr/bin/env node\nimport{createRequire}from'module';const require=createRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
console.log(`bundled ${outfile}`);
