import * as z from 'zod';
import type { AppContext } from '../core/context.js';
import { NotFoundError } from '../core/errors.js';
import { dispatchCommand } from '../nodes/commands.js';
import { settle } from '../nodes/settle.js';
import { getRun, parseInstanceId } from './model.js';

export const runLogsParams = z.object({
  job_id: z.string().min(1).max(64),
  run_id: z.string().min(1).max(128),
});
export const runLogsQuery = z.object({ tail: z.coerce.number().int().min(1).max(10_000).default(100) });
export const runLogsOut = z.object({
  job_id: z.string(),
  run_id: z.string(),
  status: z.string(),
  source: z
    .enum(['node', 'log_tail'])
    .describe('Read from the running container on its node, or the lines kept when the run ended'),
  logs: z.string(),
});

const noRun = (jobId: string, runId: string) =>
  new NotFoundError(`Run ${runId} of job ${jobId} not found`, 'NOT_FOUND', {
    error_type: 'RunNotFoundError',
  });

/**
 * A run's output: while it runs, the last `tail` lines read from its container on its node
 * (container.logs, as a service copy's); once it ended, the lines kept with the run.
 */
export async function runLogs(ctx: AppContext, jobId: string, runId: string, tail: number) {
  const parsed = parseInstanceId(runId);
  if (!parsed || parsed.jobId !== jobId) throw noRun(jobId, runId);
  const run = await getRun(ctx, jobId, parsed.slot, parsed.attempt);
  if (!run) throw noRun(jobId, runId);
  const kept = {
    job_id: jobId,
    run_id: runId,
    status: run.status,
    source: 'log_tail' as const,
    logs: run.logTail ?? '',
  };
  if (run.status !== 'running' || !run.nodeId) return kept;
  const commandId = await dispatchCommand(ctx, run.nodeId, {
    type: 'container.logs',
    instanceId: runId,
    tail,
  });
  return settle(ctx, [commandId], async ([c]) => {
    const logs = (c?.output as { logs?: unknown } | undefined)?.logs;
    // The container may have ended between the read of the run and the agent's answer.
    if (c?.status !== 'succeeded' || typeof logs !== 'string') return kept;
    return { ...kept, source: 'node' as const, logs };
  });
}
