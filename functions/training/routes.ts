import { reply } from '../core/http.js';
import { route, type AnyRoute, type RouteSpec } from '../core/route.js';
import {
  createJob,
  deleteJob,
  jobStats,
  listJobs,
  listRuns,
  requireJob,
  retryJob,
  updateJob,
} from './jobs.js';
import { jobView, runView } from './model.js';
import { runLogs, runLogsOut, runLogsParams, runLogsQuery } from './run-logs.js';
import { pending202 } from '../core/responses.js';
import {
  jobCreate,
  jobIdParams,
  jobListResponse,
  jobResponse,
  jobUpdate,
  listQuery,
  runListResponse,
  runsQuery,
  statsResponse,
} from './schemas.js';

const common: Pick<RouteSpec, 'tags' | 'errorStyle' | 'scope'> = {
  tags: ['Training jobs'],
  errorStyle: 'training',
  scope: 'user',
};

/** The Training Job Orchestrator API (docs: training-job-orchestrator-api.md). */
export function trainingRoutes(): AnyRoute[] {
  return [
    route({
      ...common,
      method: 'POST',
      path: '/jobs',
      summary: 'Create a training job; with a schedule it fires on the cron, without one it runs once, now',
      body: jobCreate,
      response: jobResponse,
      successStatus: 201,
      responses: {
        409: 'A job with this name exists',
        422: 'Invalid field (cron, time zone, ...), or START_REFUSED: every node that could run it refuses its checkpoint folder by its own policy; nothing was kept',
      },
      handler: async (req, ctx) => jobView(await createJob(ctx, req.body)),
    }),
    route({
      ...common,
      method: 'GET',
      path: '/jobs',
      summary: 'List jobs, newest first, optionally of one status',
      query: listQuery,
      response: jobListResponse,
      handler: async (req, ctx) => {
        const { page, page_size } = req.query;
        const result = await listJobs(ctx, { status: req.query.status_filter, page, pageSize: page_size });
        return { jobs: result.items.map(jobView), total: result.total, page, page_size };
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/jobs/{job_id}',
      summary: 'Job details',
      params: jobIdParams,
      response: jobResponse,
      responses: { 404: 'No such job' },
      handler: async (req, ctx) => jobView(await requireJob(ctx, req.params.job_id)),
    }),
    route({
      ...common,
      method: 'PUT',
      path: '/jobs/{job_id}',
      summary: 'Update a job (its schedule follows); not while it is running',
      params: jobIdParams,
      body: jobUpdate,
      response: jobResponse,
      responses: { 404: 'No such job', 409: 'The job is running, or the new name is taken' },
      handler: async (req, ctx) => jobView(await updateJob(ctx, req.params.job_id, req.body)),
    }),
    route({
      ...common,
      method: 'DELETE',
      path: '/jobs/{job_id}',
      summary: 'Delete a job, its schedule and its run history; not while it is running',
      params: jobIdParams,
      successStatus: 204,
      responses: { 404: 'No such job', 409: 'The job is running' },
      handler: async (req, ctx) => {
        await deleteJob(ctx, req.params.job_id);
        return reply(204);
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/jobs/{job_id}/retry',
      summary: 'Run a failed job again now, with its retry count reset',
      params: jobIdParams,
      response: jobResponse,
      responses: { 404: 'No such job', 409: 'The job is not failed' },
      handler: async (req, ctx) => jobView(await retryJob(ctx, req.params.job_id)),
    }),
    route({
      ...common,
      method: 'GET',
      path: '/jobs/{job_id}/runs',
      summary:
        'Runs of a job, newest first: each attempt with its node, start, end and exit code, and skipped firings',
      params: jobIdParams,
      query: runsQuery,
      response: runListResponse,
      responses: { 404: 'No such job' },
      handler: async (req, ctx) => {
        const { page, page_size } = req.query;
        const result = await listRuns(ctx, req.params.job_id, { page, pageSize: page_size });
        return {
          job_id: req.params.job_id,
          runs: result.items.map(runView),
          total: result.total,
          page,
          page_size,
        };
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/jobs/{job_id}/runs/{run_id}/logs',
      summary: 'Output of one run: live from its node while it runs, the kept last lines once it ended',
      params: runLogsParams,
      query: runLogsQuery,
      response: runLogsOut,
      responses: {
        202: pending202('The node has not answered within COMMAND_WAIT_MS: the pending command id'),
        404: 'No such job or run',
      },
      handler: async (req, ctx) => runLogs(ctx, req.params.job_id, req.params.run_id, req.query.tail),
    }),
    route({
      ...common,
      method: 'GET',
      path: '/stats',
      summary: 'Number of jobs in each status',
      response: statsResponse,
      handler: async (_req, ctx) => jobStats(ctx),
    }),
  ];
}
