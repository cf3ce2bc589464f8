import { copyFileSync, mkdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, buildSync, type BuildOptions } from 'esbuild';

const WEB = dirname(fileURLToPath(import.meta.url));

/** The console's files by the path they are served at (index.html, assets/app.js, assets/app.css). */
export type ConsoleFiles = Map<string, { body: Buffer; type: string }>;

/** web/src (Preact, uPlot, croner) as one script and one stylesheet. */
const OPTIONS = {
  entryPoints: [join(WEB, 'src/main.tsx')],
  bundle: true,
  minify: true,
  sourcemap: false,
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  entryNames: 'app',
  logLevel: 'silent',
  legalComments: 'none',
} satisfies BuildOptions;

/** The console built in memory (the local runtime serves it from there). */
export async function buildConsole(): Promise<ConsoleFiles> {
  const out = await build({ ...OPTIONS, outdir: join(WEB, 'dist/assets'), write: false });
  const files: ConsoleFiles = new Map();
  for (const f of out.outputFiles) {
    const name = f.path.endsWith('.css') ? 'assets/app.css' : 'assets/app.js';
    files.set(name, {
      body: Buffer.from(f.contents),
      type: name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8',
    });
  }
  files.set('index.html', {
    body: await readFile(join(WEB, 'index.html')),
    type: 'text/html; charset=utf-8',
  });
  return files;
}

/** The same files written under `outDir` (the CDK asset's local bundling, which must be synchronous). */
export function buildConsoleSync(outDir: string): void {
  buildSync({ ...OPTIONS, outdir: join(outDir, 'assets'), write: true });
  mkdirSync(outDir, { recursive: true });
  copyFileSync(join(WEB, 'index.html'), join(outDir, 'index.html'));
}

/** `npm run build:web`: writes web/dist for the CDK stack's bucket deployment. */
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const files = await buildConsole();
  for (const [name, f] of files) {
    const path = join(WEB, 'dist', name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, f.body);
  }
  console.log(`web/dist: ${[...files.keys()].join(', ')}`);
}
