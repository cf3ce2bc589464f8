import { build } from 'esbuild';

/**
 * Bundles the agent into one ES module file that runs with a bare `node dist/agent.mjs`.
 * ssh2 (pulled in by docker-modem for ssh:// engines) has optional native parts it loads inside
 * try/catch: they stay external, and the bundle runs without them.
 */
const outfile = process.argv[2] ?? 'dist/agent.mjs';
await build({
  entryPoints: ['agent/main.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  minify: true,
  outfile,
  external: ['cpu-features', '*.node'],
  banner: { js: "import{createRequire}from'module';const require=createRequire(import.meta.url);" },
  logLevel: 'warning',
});
console.log(`bundled ${outfile}`);
