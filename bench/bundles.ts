/**
 * Bundles every Lambda entry exactly as the stack does (lib/bundling.ts) and reports, per bundle,
 * its size and its cold module-load time: a fresh Node 24 process imports the bundle, several
 * times, and the median counts. The AWS SDK stays external, as on Lambda, and resolves from
 * node_modules here, so its load time is included.
 *
 *   npm run bench:bundles            (BENCH_RUNS=15 for more samples)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { BUNDLE, NODE_OPTIONS, PROJECT_ROOT, esbuildOptions } from '../lib/bundling.js';
import { EVENTS_ENTRY, ROUTE_GROUPS, WEBSOCKET_ENTRY, groupEntry } from '../lib/groups.js';

const AIM_KB = 500;
const AIM_INIT_MS = 150;
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
// Inside the repository, so the external @aws-sdk/* imports resolve from node_modules.
const OUT_DIR = join(PROJECT_ROOT, 'node_modules', '.cache', 'bench-bundles');
const NODE = join(PROJECT_ROOT, 'node_modules', '.bin', 'node');

// What the functions read at import time; values are placeholders, nothing is called.
const LAMBDA_ENV = {
  AWS_REGION: 'us-east-1',
  TABLE_NAME: 'bench-table',
  QUEUE_PREFIX: 'bench-',
  SCHEDULE_GROUP: 'bench',
  ARTIFACTS_BUCKET: 'bench-artifacts',
  LOG_LEVEL: 'ERROR',
  POWERTOOLS_LOG_LEVEL: 'ERROR',
  NODE_OPTIONS,
};

// Timed inside the child, so Node's own start-up is not counted: this is the function's init.
const PROBE = `
const url = process.argv[1];
const t0 = performance.now();
await import(url);
process.stdout.write(String(performance.now() - t0));
`;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

function measureInit(file: string, env: Record<string, string>): number[] {
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const out = execFileSync(NODE, ['--input-type=module', '-e', PROBE, pathToFileURL(file).href], {
      env: { PATH: process.env.PATH ?? '', ...env },
      encoding: 'utf8',
    });
    samples.push(Number(out));
  }
  return samples;
}

interface Row {
  name: string;
  kb: number;
  gzipKb: number;
  initMs: number;
  minMs: number;
  maxMs: number;
  /** The same import without NODE_OPTIONS: what source-map support costs at init. */
  noMapsMs: number;
}

async function main(): Promise<void> {
  rmSync(OUT_DIR, { recursive: true, force: true });
  const entries = [
    ...ROUTE_GROUPS.map((g) => ({ name: g, entry: groupEntry(g) })),
    { name: 'events', entry: EVENTS_ENTRY },
    { name: 'websocket', entry: WEBSOCKET_ENTRY },
  ];
  const rows: Row[] = [];
  for (const { name, entry } of entries) {
    const dir = join(OUT_DIR, name);
    mkdirSync(dir, { recursive: true });
    const outfile = join(dir, BUNDLE.outFile);
    await build(esbuildOptions(join(PROJECT_ROOT, entry), outfile));
    const samples = measureInit(outfile, LAMBDA_ENV);
    const { NODE_OPTIONS: _, ...withoutMaps } = LAMBDA_ENV;
    rows.push({
      name,
      kb: statSync(outfile).size / 1024,
      gzipKb: gzipSync(readFileSync(outfile)).length / 1024,
      initMs: median(samples),
      minMs: Math.min(...samples),
      maxMs: Math.max(...samples),
      noMapsMs: median(measureInit(outfile, withoutMaps)),
    });
  }

  const mark = (ok: boolean) => (ok ? 'ok' : 'OVER');
  console.log(
    `\nLambda bundles (esbuild ${BUNDLE.format}, ${BUNDLE.target}, minified; ${RUNS} cold imports each, NODE_OPTIONS=${NODE_OPTIONS})`,
  );
  console.log(`aims: bundle < ${AIM_KB} KB, module load < ${AIM_INIT_MS} ms\n`);
  console.table(
    rows.map((r) => ({
      function: r.name,
      'bundle KB': r.kb.toFixed(1),
      'gzip KB': r.gzipKb.toFixed(1),
      size: mark(r.kb < AIM_KB),
      'init ms (median)': r.initMs.toFixed(1),
      'min-max ms': `${r.minMs.toFixed(0)}-${r.maxMs.toFixed(0)}`,
      init: mark(r.initMs < AIM_INIT_MS),
      'init ms, no source maps': r.noMapsMs.toFixed(1),
    })),
  );
  const over = rows.filter((r) => r.kb >= AIM_KB || r.initMs >= AIM_INIT_MS).map((r) => r.name);
  console.log(over.length ? `over an aim: ${over.join(', ')}` : 'every bundle meets both aims');
}

await main();
