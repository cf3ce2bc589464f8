import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { build, type Plugin } from 'esbuild';

/**
 * Bundles the agent into an ES module file that runs with a bare `node dist/agent.mjs`, and ssh2
 * into a second file beside it, `agent-ssh2.cjs` (SSH_FILE), which only host.install (and an
 * ssh:// engine) loads: the idle agent's heap would otherwise hold ssh2's 340 KB of source. The
 * agent runs without that file; host.install then fails saying it is missing. ssh2 has optional
 * native parts it loads inside try/catch: they stay external, and it runs without them.
 */
const outfile = process.argv[2] ?? 'dist/agent.mjs';
const SSH_FILE = 'agent-ssh2.cjs';
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

/**
 * Requires that only some engines or commands need, made lazy: docker-modem's SSH transport
 * (ssh2 sets up a WebAssembly module and its crypto tables when loaded). Bundled CommonJS modules
 * run on first require, so moving the require into the function keeps them out of an agent that
 * never uses them.
 */
const LAZY: { file: RegExp; from: string; to: string }[] = [
  // docker-modem's redirect wrapper of node:https: loading https initialises OpenSSL (5 MB resident)
  // for an engine reached over a unix socket. A prototype that loads it on first lookup.
  {
    file: /docker-modem[\\/]lib[\\/]http\.js$/,
    from: "var nativeHttps = require('https'),",
    to: "var nativeHttps = new Proxy({}, { get: function (_, key) { return require('https')[key]; } }),",
  },
  {
    file: /docker-modem[\\/]lib[\\/]modem\.js$/,
    from: "ssh = require('./ssh'),",
    to: "ssh = function () { return require('./ssh').apply(this, arguments); },",
  },
  // BuildKit sessions (gRPC and protobuf, a quarter of the bundle's source) serve only builds with
  // `version: "2"`, which the agent never asks for: left out, so V8 does not hold their source.
  {
    file: /dockerode[\\/]lib[\\/]docker\.js$/,
    from: "withSession = require('./session'),",
    to: "withSession = function (_d, _a, callback) { callback(new Error('BuildKit sessions are not in the agent bundle')); },",
  },
  // BuildKit's progress decoder (protobufjs and its schema: 95 KB of source) serves
  // docker.followProgress, which the agent never calls (it follows pulls with the modem's).
  {
    file: /dockerode[\\/]lib[\\/]docker\.js$/,
    from: "var buildkit = require('./buildkit');",
    to: "throw new Error('BuildKit progress is not in the agent bundle');",
  },
  // The build context's tar, gzip and .dockerignore serve image builds only (tar-fs brings its own
  // copy of Node's streams).
  {
    file: /dockerode[\\/]lib[\\/]util\.js$/,
    from: "var DockerIgnore = require('@balena/dockerignore');\nvar fs = require('fs');\nvar path = require('path');\nvar tar = require('tar-fs');\nvar zlib = require('zlib');",
    to: "var DockerIgnore = function (o) { var m = require('@balena/dockerignore'); return (m.default || m)(o); };\nvar fs = require('fs');\nvar path = require('path');\nvar tar = { pack: function () { var t = require('tar-fs'); return t.pack.apply(t, arguments); } };\nvar zlib = { createGzip: function () { return require('zlib').createGzip.apply(null, arguments); } };",
  },
];

const lazyRequires: Plugin = {
  name: 'lazy-requires',
  setup(b) {
    b.onLoad(
      { filter: /(docker-modem|dockerode)[\\/]lib[\\/](modem|docker|http|util)\.js$/ },
      async (args) => {
        let source = await readFile(args.path, 'utf8');
        for (const rule of LAZY.filter((r) => r.file.test(args.path))) {
          if (!source.includes(rule.from))
            throw new Error(`lazy-requires: ${args.path} no longer has ${rule.from}`);
          source = source.replace(rule.from, rule.to);
        }
        return { contents: source, loader: 'js' };
      },
    );
  },
};

/** ssh2, imported by agent/ssh-session.ts and required by docker-modem's SSH transport: the file beside the bundle. */
const sshApart: Plugin = {
  name: 'ssh2-apart',
  setup(b) {
    b.onResolve({ filter: /^ssh2$/ }, () => ({ path: `./${SSH_FILE}`, external: true }));
  },
};

/**
 * Node's built-in modules as CommonJS requires: an ES module bundle hoists every `import` of a
 * built-in to its top, so those of modules loaded on first use (the AWS SDK's zlib, the network
 * scan's dns and net) would load at start. A require runs where the importing module starts.
 */
const lazyBuiltins: Plugin = {
  name: 'lazy-builtins',
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) =>
      args.kind === 'import-statement' || args.kind === 'dynamic-import'
        ? { path: args.path, namespace: 'builtin' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

await build({
  entryPoints: ['agent/main.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  minify: true,
  // ASCII only: V8 keeps a script with any other character as two bytes per character.
  charset: 'ascii',
  outfile,
  external: ['cpu-features', '*.node'],
  plugins: [lazyRequires, lazyBuiltins, sshApart],
  banner: {
    js: `${check.outputFiles[0]!.text.trim()}\nimport{createRequire}from'module';const require=createRequire(import.meta.url);`,
  },
  logLevel: 'warning',
});
await build({
  entryPoints: ['ssh2'],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node24',
  minify: true,
  charset: 'ascii',
  outfile: join(dirname(outfile), SSH_FILE),
  external: ['cpu-features', '*.node'],
  logLevel: 'warning',
});
console.log(`bundled ${outfile} and ${SSH_FILE} beside it`);
