import { CliError, EXIT } from '../errors.js';
import { details, printJson, table } from '../output.js';
import { collect, enc, keyValues, program, session, sleep } from '../program.js';

// ------------------------------------------------------------------ tasks

interface TaskRow {
  task_id: string;
  status: string;
  result?: unknown;
  error?: string | null;
  [k: string]: unknown;
}
const TASK_DONE = new Set(['completed', 'failed', 'cancelled']);

const tasks = program.command('tasks').description('inference tasks on the shared queue');

tasks
  .command('submit')
  .description('submit a task; --wait follows it to its end (exit 8 if it failed)')
  .requiredOption('--model <name>', 'model name (GET /models/catalog)')
  .option('--type <task_type>', 'task type', 'generate')
  .option(
    '--param <KEY=VALUE>',
    'parameter (repeatable; values are JSON when they parse, else strings)',
    collect,
  )
  .option('--priority <p>', 'low | normal | high | critical', 'normal')
  .option('--wait', 'wait until it completes, fails or is cancelled')
  .action(async (o: { model: string; type: string; param?: string[]; priority: string; wait?: boolean }) => {
    const { client, json, timeoutMs } = await session();
    const parameters = Object.fromEntries(
      Object.entries(keyValues(o.param, '--param')).map(([k, v]) => {
        try {
          return [k, JSON.parse(v) as unknown];
        } catch {
          return [k, v];
        }
      }),
    );
    const { body: submitted } = await client.ok<TaskRow>('POST', '/tasks', {
      task_type: o.type,
      model_name: o.model,
      parameters,
      priority: o.priority,
    });
    let task: TaskRow = submitted;
    if (o.wait) {
      const spinner = client.ui.spinner(`task ${task.task_id}: ${task.status}`);
      const deadline = Date.now() + timeoutMs;
      try {
        while (!TASK_DONE.has(task.status)) {
          if (Date.now() >= deadline)
            throw new CliError(
              `task ${task.task_id} still ${task.status} after ${timeoutMs / 1000} s`,
              EXIT.timeout,
            );
          await sleep(1000);
          task = await client.get<TaskRow>(`/tasks/${enc(task.task_id)}`);
          spinner.text = `task ${task.task_id}: ${task.status}`;
        }
      } finally {
        spinner.stop();
      }
      if (task.status !== 'completed') process.exitCode = EXIT.failed;
    }
    if (json) return printJson(task);
    console.log(details(task));
  });

tasks
  .command('list', { isDefault: true })
  .description('tasks, newest first')
  .option('--status <status>', 'only tasks in this status')
  .action(async (o: { status?: string }) => {
    const { client, json } = await session();
    const body = await client.get<{ tasks: TaskRow[] }>(
      `/tasks${o.status ? `?status=${enc(o.status)}` : ''}`,
    );
    if (json) return printJson(body);
    console.log(
      table(body.tasks, ['task_id', 'status', 'task_type', 'model_name', 'assigned_worker', 'created_at']),
    );
  });
