import * as z from 'zod';
import { cpuLimit, memoryLimit } from '../../functions/orchestrator/resources.js';
import { jobCreate } from '../../functions/training/schemas.js';
import { CliError, EXIT } from '../errors.js';
import { details, printJson, table } from '../output.js';
import { LogStream, resolveWsUrl } from '../stream.js';
import { checked, collect, enc, keyValues, positiveInt, program, session, sleep } from '../program.js';
import { splitLines, followLogs } from './logs.js';

// ------------------------------------------------------------------ training jobs

interface JobRow {
  job_id: string;
  name: string;
  status: string;
  [k: string]: unknown;
}
interface RunRow {
  run_id: string;
  status: string;
  node_id?: string | null;
  attempt: number | null;
  exit_code: number | null;
  [k: string]: unknown;
}

const jobs = program.command('jobs').description('training jobs: list, create, runs, logs');

jobs
  .command('list', { isDefault: true })
  .description('jobs, newest first')
  .option('--status <status>', 'only jobs in this status')
  .action(async (o: { status?: string }) => {
    const { client, json } = await session();
    const body = await client.get<{ jobs: JobRow[] }>(
      `/jobs${o.status ? `?status_filter=${enc(o.status)}` : ''}`,
    );
    if (json) return printJson(body);
    console.log(table(body.jobs, ['job_id', 'name', 'status', 'schedule', 'next_run', 'image']));
  });

jobs
  .command('create')
  .description('create a training job: without --schedule it runs once, now')
  .requiredOption('--name <name>', 'job name (unique)')
  .requiredOption('--image <image>', 'training image')
  .option('--schedule <cron>', '5-field cron, e.g. "0 2 * * *"')
  .option('--timezone <tz>', 'IANA time zone of the schedule (default UTC)')
  .option('--gpus <n>', 'GPUs the run needs', checked(z.coerce.number().int().min(0).max(16), '--gpus'))
  .option('--cpu <cores>', 'CPU limit in cores', checked(cpuLimit, '--cpu'))
  .option('--memory <size>', 'memory limit, e.g. 4g', checked(memoryLimit, '--memory'))
  .option('--max-retries <n>', 'retries of a failed run (default 3)', positiveInt)
  .option('--env <KEY=VALUE>', 'environment variable (repeatable)', collect)
  .argument('<command...>', 'the training command, after --')
  .action(
    async (
      command: string[],
      o: {
        name: string;
        image: string;
        schedule?: string;
        timezone?: string;
        gpus?: number;
        cpu?: string;
        memory?: string;
        maxRetries?: number;
        env?: string[];
      },
    ) => {
      const { client, json } = await session();
      const resources = {
        ...(o.cpu ? { cpu_limit: o.cpu } : {}),
        ...(o.memory ? { memory_limit: o.memory } : {}),
        ...(o.gpus !== undefined ? { gpus: o.gpus } : {}),
      };
      const body = {
        name: o.name,
        image: o.image,
        command,
        ...(o.schedule ? { schedule: o.schedule } : {}),
        ...(o.timezone ? { timezone: o.timezone } : {}),
        ...(o.maxRetries !== undefined ? { max_retries: o.maxRetries } : {}),
        ...(Object.keys(resources).length ? { resources } : {}),
        ...(o.env ? { env: keyValues(o.env, '--env') } : {}),
      };
      // The API's own schema: a bad cron or name fails here with its message, before any request.
      const parsed = jobCreate.safeParse(body);
      if (!parsed.success)
        throw new CliError(
          parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
          EXIT.usage,
        );
      const { body: job } = await client.ok<JobRow>('POST', '/jobs', body);
      if (json) return printJson(job);
      console.log(details(job));
    },
  );

jobs
  .command('runs')
  .description('runs of a job, newest first')
  .argument('<job>', 'job id')
  .action(async (jobId: string) => {
    const { client, json } = await session();
    const body = await client.get<{ runs: RunRow[] }>(`/jobs/${enc(jobId)}/runs`);
    if (json) return printJson(body);
    console.log(
      table(body.runs, [
        'run_id',
        'attempt',
        'status',
        'node_id',
        'started_at',
        'ended_at',
        'exit_code',
        'error',
      ]),
    );
  });

const RUN_ACTIVE = new Set(['pending', 'running']);

jobs
  .command('logs')
  .description('output of a job’s latest run (or --run); -f follows it until the run ends')
  .argument('<job>', 'job id')
  .option('--run <run_id>', 'this run instead of the latest')
  .option('-f, --follow', 'keep printing until the run ends; exit 8 if it failed')
  .option('--tail <n>', 'lines to read', positiveInt, 1000)
  .action(async (jobId: string, o: { run?: string; follow?: boolean; tail: number }) => {
    const { client, json, timeoutMs, wsUrl } = await session();
    const runs = async () => (await client.get<{ runs: RunRow[] }>(`/jobs/${enc(jobId)}/runs`)).runs;
    const pick = async (): Promise<RunRow | undefined> => {
      const all = (await runs()).filter((r) => r.attempt !== null);
      return o.run ? all.find((r) => r.run_id === o.run) : all[0];
    };
    let run = await pick();
    if (!run && o.follow) {
      const spinner = client.ui.spinner(`waiting for a run of ${jobId}`);
      const deadline = Date.now() + timeoutMs;
      while (!run && Date.now() < deadline) {
        await sleep(1000);
        run = await pick();
      }
      spinner.stop();
    }
    if (!run) throw new CliError(`job ${jobId} has no run yet`, o.follow ? EXIT.timeout : EXIT.notFound);
    const runId = run.run_id;
    // Live from the node while the run runs, the kept last lines once it ended (GET …/runs/{run_id}/logs).
    const read = async (id: string): Promise<string> => {
      const path = `/jobs/${enc(jobId)}/runs/${enc(id)}/logs?tail=${o.tail}`;
      const r = await client.ok<{ logs?: string; pending_commands?: string[] }>('GET', path);
      if (r.status !== 202 || !r.body.pending_commands) return r.body.logs ?? '';
      const [c] = await client.settle(r.body.pending_commands, timeoutMs, 'the node to read the logs');
      const logs = (c?.output as { logs?: unknown } | undefined)?.logs;
      if (c?.status === 'succeeded' && typeof logs === 'string') return logs;
      // The container ended meanwhile: the run keeps its last lines.
      const again = await client.ok<{ logs?: string }>('GET', path);
      return again.status === 200 ? (again.body.logs ?? '') : '';
    };
    if (json) return printJson({ job_id: jobId, run_id: runId, logs: await read(runId) });
    let last = run;
    const refresh = async () => (last = (await runs()).find((r) => r.run_id === runId) ?? last);
    if (o.follow && RUN_ACTIVE.has(last.status) && !last.node_id) {
      // Not placed yet: its node is where its output will stream from.
      const spinner = client.ui.spinner(`waiting for run ${runId} to be placed`);
      const deadline = Date.now() + timeoutMs;
      try {
        while (RUN_ACTIVE.has(last.status) && !last.node_id && Date.now() < deadline) {
          await sleep(1000);
          await refresh();
        }
      } finally {
        spinner.stop();
      }
    }
    if (o.follow && RUN_ACTIVE.has(last.status) && last.node_id) {
      // Live over the logs stream (the run's container opt-in), the kept lines read once it ended.
      const target = {
        wsUrl: await resolveWsUrl(client.target.url, wsUrl),
        ...(client.target.apiKey ? { apiKey: client.target.apiKey } : {}),
      };
      const stream = new LogStream(target, last.node_id, runId, {
        line: (l) => console.log(l),
        note: (t) => console.error(`fleet: ${t}`),
        alive: async () => RUN_ACTIVE.has((await refresh()).status),
      });
      const stop = () => stream.close();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      let ending = false;
      const poller = setInterval(() => {
        if (ending) return;
        ending = true;
        void refresh()
          .then(async (r) => {
            if (RUN_ACTIVE.has(r.status)) return void (ending = false);
            stream.catchUp(splitLines(await read(runId).catch(() => '')));
            stream.close();
          })
          .catch(() => (ending = false));
      }, 2000);
      try {
        await stream.done;
      } finally {
        clearInterval(poller);
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    } else
      await followLogs(async () => [{ id: runId, name: runId }], read, {
        ...o,
        prefix: false,
        until: async () => !RUN_ACTIVE.has((await refresh()).status),
      });
    if (o.follow) {
      // One last read: lines written between the previous read and the end.
      if (!RUN_ACTIVE.has(last.status)) {
        console.error(
          `run ${runId} ${last.status}${last.exit_code !== null ? ` (exit ${last.exit_code})` : ''}`,
        );
        if (last.status !== 'succeeded' && last.status !== 'completed') process.exitCode = EXIT.failed;
      }
    }
  });
