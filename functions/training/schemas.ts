import * as z from 'zod';
import { displayName } from '../core/validation.js';
import { instanceResources } from '../orchestrator/resources.js';
import { canonicalTimeZone, CronError, validateCron } from '../core/schedule-expressions.js';
import { JOB_STATUSES } from './state.js';

/** Request and response shapes of the Training Job Orchestrator API. */

const timezone = z
  .string()
  .min(1)
  .transform((tz, ctx) => {
    const canonical = canonicalTimeZone(tz);
    if (!canonical) {
      ctx.addIssue({
        code: 'custom',
        message: `Unknown time zone '${tz}': use an IANA name such as 'UTC' or 'Europe/Berlin'`,
      });
      return z.NEVER;
    }
    return canonical;
  })
  .describe('IANA time zone the schedule is read in; UTC when absent');

const schedule = z
  .string()
  .min(1)
  .max(200)
  .describe('5-field cron (minute hour day-of-month month day-of-week)');

const checkpointPath = z
  .string()
  .startsWith('/', 'checkpoint_path must be an absolute path')
  .max(1024)
  .refine((p) => !p.split('/').includes('..'), 'checkpoint_path must not contain ..')
  .describe('Where the checkpoint folder is mounted in the container (also in CHECKPOINT_DIR)');

const env = z
  .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'env names are letters, digits and _'), z.string())
  .refine((e) => !('CHECKPOINT_DIR' in e), 'CHECKPOINT_DIR is set by the orchestrator')
  .describe('Extra environment variables of the training container');

/** Rent a cloud GPU that joins the fleet when no fleet node has room (or always). */
export const cloudBurst = z
  .object({
    product: z.string().trim().min(1).max(255).describe('Novita product name (RTX 4090 24GB)'),
    region: z.string().trim().min(1).max(64).default('CN-HK-01'),
    max_price_per_hour: z
      .number()
      .positive()
      .describe('The most the instance may cost per hour, in Novita’s price units (as /products lists them)'),
    spot: z.boolean().default(true),
    always: z.boolean().default(false).describe('Rent even when a fleet node has room'),
  })
  .strict()
  .describe('Burst to a rented Novita instance that joins the fleet; terminated when the job ends');
export type CloudBurst = z.output<typeof cloudBurst>;

const fields = {
  name: displayName(z.string().trim().min(1).max(255)),
  image: z.string().trim().min(1).max(512),
  command: z.array(z.string()).min(1, 'command needs at least one element'),
  schedule: schedule.nullable(),
  timezone,
  max_retries: z.number().int().min(0).max(20),
  checkpoint_path: checkpointPath.nullable(),
  resources: instanceResources.describe('CPU, memory and GPU count the run needs on its node'),
  env,
};

/** Checks the schedule as read in its zone; reports on `schedule`. */
function checkSchedule(v: { schedule?: string | null; timezone?: string }, ctx: z.RefinementCtx): void {
  if (!v.schedule) return;
  try {
    validateCron(v.schedule, v.timezone ?? 'UTC');
  } catch (error) {
    if (!(error instanceof CronError)) throw error;
    ctx.addIssue({
      code: 'custom',
      path: ['schedule'],
      message: `Invalid cron schedule '${v.schedule}': ${error.message}`,
    });
  }
}

export const jobCreate = z
  .object({
    name: fields.name,
    image: fields.image,
    command: fields.command,
    schedule: fields.schedule.optional().default(null),
    timezone: fields.timezone.optional().default('UTC'),
    max_retries: fields.max_retries.default(3),
    checkpoint_path: fields.checkpoint_path.optional().default(null),
    resources: fields.resources.optional().default({}),
    env: fields.env.optional().default({}),
    cloud: cloudBurst.optional(),
  })
  .superRefine(checkSchedule);
export type JobCreate = z.output<typeof jobCreate>;

/** Every field optional; `schedule: null` removes the schedule. Checked again merged with the job. */
export const jobUpdate = z
  .object({
    name: fields.name.optional(),
    image: fields.image.optional(),
    command: fields.command.optional(),
    schedule: fields.schedule.optional(),
    timezone: fields.timezone.optional(),
    max_retries: fields.max_retries.optional(),
    checkpoint_path: fields.checkpoint_path.optional(),
    resources: fields.resources.optional(),
    env: fields.env.optional(),
  })
  .superRefine(checkSchedule);
export type JobUpdate = z.output<typeof jobUpdate>;

/** Any string: an id of the wrong shape is a job that does not exist (404), as FastAPI answers. */
export const jobIdParams = z.object({ job_id: z.string().min(1).max(64) });

export const listQuery = z.object({
  status_filter: z.enum(JOB_STATUSES).optional(),
  page: z.coerce.number().int().min(1).default(1),
  page_size: z.coerce.number().int().min(1).max(100).default(50),
});

export const runsQuery = z.object({
  page: z.coerce.number().int().min(1).default(1),
  page_size: z.coerce.number().int().min(1).max(100).default(50),
});

const time = z.string().nullable().describe('UTC, naive ISO 8601 (2025-10-22T18:00:00)');

export const jobResponse = z.object({
  job_id: z.string(),
  name: z.string(),
  image: z.string(),
  command: z.array(z.string()),
  schedule: z.string().nullable(),
  timezone: z.string(),
  max_retries: z.number().int(),
  retry_count: z.number().int(),
  checkpoint_path: z.string().nullable(),
  resources: instanceResources,
  env: z.record(z.string(), z.string()),
  status: z.enum(JOB_STATUSES),
  started_at: time,
  completed_at: time,
  error_message: z.string().nullable(),
  created_at: time,
  updated_at: time,
  skipped_firings: z.number().int().describe('Firings skipped because the previous run was still going'),
  cloud: cloudBurst.nullable(),
  preemption_count: z
    .number()
    .int()
    .describe(
      'Attempts ended by a rented node taken back (spot reclaim); retried, not counted in retry_count',
    ),
});

export const jobListResponse = z.object({
  jobs: z.array(jobResponse),
  total: z.number().int(),
  page: z.number().int(),
  page_size: z.number().int(),
});

export const runResponse = z.object({
  run_id: z.string(),
  job_id: z.string(),
  attempt: z.number().int().nullable(),
  status: z.enum(['pending', 'running', 'succeeded', 'failed', 'cancelled', 'skipped']),
  node_id: z.string().nullable(),
  scheduled_at: time,
  started_at: time,
  ended_at: time,
  exit_code: z.number().int().nullable(),
  error: z.string().nullable(),
  waiting_reason: z.string().nullable(),
  log_tail: z
    .string()
    .nullable()
    .describe('The last 50 lines the run printed, kept when it ended (null while it runs)'),
  preempted: z.boolean().describe('Ended because its rented node was taken back'),
});

export const runListResponse = z.object({
  job_id: z.string(),
  runs: z.array(runResponse),
  total: z.number().int(),
  page: z.number().int(),
  page_size: z.number().int(),
});

export const statsResponse = z.object({
  total_jobs: z.number().int(),
  pending: z.number().int(),
  running: z.number().int(),
  completed: z.number().int(),
  failed: z.number().int(),
  retrying: z.number().int(),
});
