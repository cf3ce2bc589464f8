import { build } from 'esbuild';

/**
 * Bundles the agent into one ES module file that runs with a bare `node dist/agent.mjs`.
 * ssh2 (pulled in by docker-modem for ssh:// engines) has optional native parts it loads inside
 * try/catch: they stay external, and the bundle runs without them.
 */
const outfile = process.argv[2] ?? 'dist/agent.mjs';
// The runtime check goes first, as plain old syntax: the bundle's own code may not run on the Node.js it refuses.
const check = await build({
  entryPoints: ['agent/runtime-check.ts'],
  bundle: true,
  platform: 'node',
  format: 'iife',
  target: 'es2017',
  minify: true,
  write: false,
  logLevel: 'warning',
});
await build({
  entryPoints: ['agent/main.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  minify: true,
  outfile,
  external: ['cpu-features', '*.node'],
  banner: {
    js: `${check.outputFiles[0]!.text.trim()}\nimport{createRequire}from'module';const require=createRequire(import.meta.url);`,
  },
  logLevel: 'warning',
});
console.log(`bundled ${outfile}`);
