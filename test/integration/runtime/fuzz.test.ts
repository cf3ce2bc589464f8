import { startLocalProcess } from '../../harness/local-process.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inCi } from '../../harness/services.js';

/**
 * schemathesis (pinned in .ci/run, in .venv-aws beside moto) over /openapi.json of `npm start`
 * (embedded, API_AUTH=true, an admin key): every check, a fixed seed, at least MIN_CASES cases.
 * No agent runs, so calls that wait for one answer 202 after COMMAND_WAIT_MS (kept short here).
 */
const REPO = new URL('../../..', import.meta.url).pathname;
const ST = process.env.SCHEMATHESIS_BIN ?? join(REPO, '.venv-aws', 'bin', 'st');
const API_KEY = 'fuzz-admin-key-0123456789abcdef';
const SEED = Number(process.env.FUZZ_SEED ?? 20261206);
/** Examples per operation: about 50 cases per operation across the phases, ≥ 5,000 in all. */
const MAX_EXAMPLES = Number(process.env.FUZZ_MAX_EXAMPLES ?? 40);
const MIN_CASES = 5000;
/** The whole run's bound, inside the test's own timeout. */
const MAX_SECONDS = 900;

function stStatus(): { available: boolean; reason: string } {
  if (existsSync(ST)) return { available: true, reason: '' };
  const reason = `${ST} is missing (.venv-aws/bin/pip install 'schemathesis==4.32.5', as .ci/run does)`;
  if (inCi) throw new Error(`CI=true and ${reason}. CI must run the fuzz suite, not skip it.`);
  return { available: false, reason };
}

function startRuntime(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  return startLocalProcess(dataDir, {
    AWS_ENDPOINT_URL: '',
    // Dependencies left unconfigured, so their routes answer their declared 503 and nothing
    // leaves the machine: no registry, no Bedrock (no Novita key either: no secret set).
    REGISTRY_URL: '',
    AI_ENABLED: 'false',
    // And were one called anyway, it would stay on loopback.
    NOVITA_BASE_URL: 'http://127.0.0.1:9/v1',
    AI_ENDPOINT_URL: 'http://127.0.0.1:9',
    LOG_LEVEL: 'SILENT',
    API_AUTH: 'true',
    COMMAND_WAIT_MS: '200',
  });
}

interface Interaction {
  request: { method: string; uri: string };
  response: { status_code: number } | null;
}
interface Check {
  name: string;
  status: 'success' | 'failure' | 'skip' | 'error';
}
interface Recorder {
  label: string;
  cases?: Record<string, unknown>;
  interactions?: Record<string, Interaction>;
  checks?: Record<string, Check[]>;
}

/** Totals of one run, from schemathesis' NDJSON event stream. */
function summarise(ndjson: string) {
  const statuses = new Map<number, number>();
  const failures = new Map<string, number>();
  const failedAt = new Map<string, string[]>();
  /** Every verdict of a check, failed or not: a check that never ran proves nothing. */
  const ran = new Map<string, number>();
  const serverErrors: string[] = [];
  const operations = new Set<string>();
  let cases = 0;
  let seconds = 0;
  for (const line of ndjson.split('\n')) {
    if (!line.trim()) continue;
    const event = JSON.parse(line) as Record<string, Record<string, unknown>>;
    if (event['EngineFinished']) seconds = Number(event['EngineFinished']['running_time']);
    const finished = event['ScenarioFinished'];
    if (!finished) continue;
    const recorder = finished['recorder'] as Recorder;
    if (!recorder.label.startsWith('Stateful')) operations.add(recorder.label);
    cases += Object.keys(recorder.cases ?? {}).length;
    for (const interaction of Object.values(recorder.interactions ?? {})) {
      const status = interaction.response?.status_code;
      if (status === undefined) continue;
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (status === 500) serverErrors.push(`${interaction.request.method} ${interaction.request.uri}`);
    }
    for (const [caseId, list] of Object.entries(recorder.checks ?? {}))
      for (const check of list) {
        ran.set(check.name, (ran.get(check.name) ?? 0) + 1);
        if (check.status !== 'failure') continue;
        failures.set(check.name, (failures.get(check.name) ?? 0) + 1);
        // Where: the operation and the status it answered, for the assertion's message.
        const i = recorder.interactions?.[caseId];
        const where = `${i ? `${i.request.method} ${new URL(i.request.uri).pathname}` : recorder.label} → ${i?.response?.status_code ?? '?'}`;
        failedAt.set(check.name, [...(failedAt.get(check.name) ?? []), where]);
      }
  }
  return { cases, operations: operations.size, statuses, failures, failedAt, ran, serverErrors, seconds };
}

const st = stStatus();
const describeFuzz = st.available ? describe : describe.skip;

describeFuzz(
  st.available ? 'schemathesis over /openapi.json' : `schemathesis [skipped: ${st.reason}]`,
  () => {
    let runtime: { child: ChildProcess; url: string } | undefined;
    let dataDir: string | undefined;

    afterAll(async () => {
      if (runtime && runtime.child.exitCode === null && runtime.child.signalCode === null) {
        const exited = once(runtime.child, 'exit');
        runtime.child.kill('SIGTERM');
        await exited;
      }
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    });

    it(
      `${MIN_CASES}+ seeded cases, every check: no 500, bodies, status codes and content types as documented`,
      async () => {
        dataDir = await mkdtemp(join(tmpdir(), 'fuzz-'));
        await writeFile(join(dataDir, 'secrets.json'), JSON.stringify({ 'api-key': API_KEY }), {
          mode: 0o600,
        });
        runtime = await startRuntime(dataDir);
        const reportDir = join(dataDir, 'report');

        const child = spawn(
          ST,
          [
            'run',
            `${runtime.url}/openapi.json`,
            '--header',
            `Authorization: Bearer ${API_KEY}`,
            '--checks',
            'all',
            '--max-examples',
            String(MAX_EXAMPLES),
            '--seed',
            String(SEED),
            '--workers',
            '2',
            '--no-shrink',
            '--request-timeout',
            '10',
            '--report',
            'ndjson',
            '--report-dir',
            reportDir,
          ],
          { cwd: dataDir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let output = '';
        child.stdout.on('data', (d: Buffer) => (output += d.toString()));
        child.stderr.on('data', (d: Buffer) => (output += d.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), MAX_SECONDS * 1000);
        const [code] = (await once(child, 'exit')) as [number | null];
        clearTimeout(timer);

        const files = (await readdir(reportDir).catch(() => [])).filter((f) => f.endsWith('.ndjson'));
        expect(files, `no NDJSON report (exit ${code}):\n${output.slice(-4000)}`).toHaveLength(1);
        const run = summarise(await readFile(join(reportDir, files[0]!), 'utf8'));
        const failed = Object.fromEntries(run.failures);
        console.log(
          `schemathesis: ${run.cases} cases, ${run.operations} operations, ${run.serverErrors.length} × 500, ` +
            `${run.seconds.toFixed(0)} s; statuses ${JSON.stringify(Object.fromEntries(run.statuses))}; failed checks ${JSON.stringify(failed)}`,
        );

        const detail = output.slice(-6000);
        expect(run.serverErrors, detail).toEqual([]);
        for (const check of [
          'response_schema_conformance',
          'status_code_conformance',
          'content_type_conformance',
        ]) {
          expect(run.ran.get(check) ?? 0, `${check} never ran`).toBeGreaterThan(1000);
          expect(
            run.failures.get(check) ?? 0,
            `${check} failed at ${JSON.stringify(run.failedAt.get(check))}:\n${detail}`,
          ).toBe(0);
        }
        expect(run.cases).toBeGreaterThanOrEqual(MIN_CASES);
        expect(run.operations).toBeGreaterThanOrEqual(100);
      },
      (MAX_SECONDS + 120) * 1000,
    );
  },
);
