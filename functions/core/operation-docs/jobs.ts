/** /openapi.json's descriptions and examples for training jobs and Novita instances (see ../operation-docs.ts). */
import { WAITS, type OperationDoc } from './shared.js';

/** One run as the job's and the node's run listings show it. */
const RUN = {
  run_id: 'train-3f2a9c1b-20260115020000000-a1',
  job_id: 'train-3f2a9c1b',
  attempt: 1,
  status: 'succeeded',
  node_id: 'gpu-01-5b1c7e0a',
  scheduled_at: '2026-01-15T02:00:00Z',
  started_at: '2026-01-15T02:00:04Z',
  ended_at: '2026-01-15T03:12:40Z',
  exit_code: 0,
  error: null,
  waiting_reason: null,
  log_tail: 'epoch 10 loss 0.081\ntraining done\n',
  preempted: false,
};

export const JOB_DOCS: Record<string, OperationDoc> = {
  // ------------------------------------------------------------------ training
  'POST /jobs': {
    description:
      'Creates a training job. With `schedule` (5-field cron, read in `timezone`, default UTC) it fires on the cron; without one it runs once, now. A failed run is retried up to `max_retries` times (default 3) with backoff. `resources`: `cpu_limit` in cores, `memory_limit` a size (`"8g"`), `gpus` a count. The checkpoint folder is mounted at `checkpoint_path` (and in CHECKPOINT_DIR). `cloud` (`product`, `region`, `max_price_per_hour`, `spot`, `always`): when no fleet node has room for a run (or always), a Novita instance is rented that joins the fleet and takes it, and is terminated when the job ends; CLOUD_BURST_MAX_INSTANCES and CLOUD_BURST_MAX_SPEND_PER_DAY cap bursts, and a refused burst is the run’s `waiting_reason`. A run ended by a rented node taken back (spot reclaim) is a preemption: retried at once, counted in `preemption_count`, not in `retry_count`.',
    request: {
      name: 'resnet50-nightly',
      image: 'pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime',
      command: ['python', 'train.py', '--epochs', '10'],
      schedule: '0 2 * * *',
      timezone: 'UTC',
      max_retries: 2,
      checkpoint_path: '/checkpoints',
      resources: { cpu_limit: '8', memory_limit: '32g', gpus: 1 },
      env: { WANDB_MODE: 'offline' },
    },
    response: {
      job_id: 'train-3f2a9c1b',
      name: 'resnet50-nightly',
      image: 'pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime',
      command: ['python', 'train.py', '--epochs', '10'],
      schedule: '0 2 * * *',
      timezone: 'UTC',
      max_retries: 2,
      retry_count: 0,
      checkpoint_path: '/checkpoints',
      resources: { cpu_limit: '8', memory_limit: '32g', gpus: 1 },
      env: { WANDB_MODE: 'offline' },
      status: 'pending',
      started_at: null,
      completed_at: null,
      error_message: null,
      created_at: '2026-01-15T10:00:00Z',
      updated_at: '2026-01-15T10:00:00Z',
      skipped_firings: 0,
      cloud: null,
      preemption_count: 0,
    },
  },
  'GET /jobs': {
    description: 'Jobs, newest first; `status_filter` for one status, `page` and `page_size` (default 20).',
  },
  'GET /jobs/{job_id}': {
    description: 'A job with its status, schedule, next run, retries and last run.',
    params: { job_id: 'train-3f2a9c1b' },
  },
  'PUT /jobs/{job_id}': {
    description:
      'Updates the fields given; the schedule follows a new cron or time zone. 409 while the job runs.',
    params: { job_id: 'train-3f2a9c1b' },
    request: { schedule: '30 3 * * 1-5', max_retries: 1 },
  },
  'DELETE /jobs/{job_id}': {
    description: 'Deletes a job with its schedule and run history. 409 while it runs.',
    params: { job_id: 'train-3f2a9c1b' },
  },
  'GET /jobs/{job_id}/checkpoint': {
    description:
      'The job’s checkpoint as stored in the artifacts store: each file of its run’s CHECKPOINT_DIR with its size, when its content was stored and the attempt that wrote it. Agents upload changed files every TRAINING_CHECKPOINT_SYNC_SECONDS and after the run ends, and restore them before the next attempt starts, on whichever node. `error` says why the last upload was refused (over `max_bytes`).',
    params: { job_id: 'train-3f2a9c1b' },
    response: {
      job_id: 'train-3f2a9c1b',
      files: [
        { name: 'model/weights.pt', size: 104857600, updated_at: '2026-01-15T02:10:00.000Z', attempt: 1 },
        { name: 'step', size: 2, updated_at: '2026-01-15T02:31:00.000Z', attempt: 2 },
      ],
      total_bytes: 104857602,
      max_bytes: 21474836480,
      updated_at: '2026-01-15T02:31:00.000Z',
      error: null,
    },
  },
  'DELETE /jobs/{job_id}/checkpoint': {
    description:
      'Clears the job’s stored checkpoint: its next attempt starts from an empty folder. 409 while it runs. Deleting the job also deletes it.',
    params: { job_id: 'train-3f2a9c1b' },
  },
  'POST /jobs/{job_id}/retry': {
    description: 'Runs a failed job again now, with its retry count reset. 409 when the job is not failed.',
    params: { job_id: 'train-3f2a9c1b' },
  },
  'GET /jobs/{job_id}/runs': {
    description:
      'Runs, newest first: each attempt with its node, start, end, exit code and, once ended, the last lines it printed (`log_tail`); skipped firings (the previous run was still going) too.',
    params: { job_id: 'train-3f2a9c1b' },
    response: {
      job_id: 'train-3f2a9c1b',
      runs: [RUN],
      total: 1,
      page: 1,
      page_size: 20,
    },
  },
  'GET /api/nodes/{node_id}/runs': {
    description:
      "The training runs placed on one node (id or name), of any job, latest start first, `limit` a page (1-100, default 20) with `next_cursor` for the next (`null` on the last); a bad limit or cursor is a 400, an unknown node a 404. It reads the node's own run index, so a page costs the same however many jobs and runs the fleet holds: the console's node page lists them with it. Not in the documents. A run placed before this index existed joins it when it ends; runs that had ended before are listed by their job only (`GET /jobs/{job_id}/runs`).",
    params: { node_id: 'gpu-01' },
    response: {
      node_id: 'gpu-01-5b1c7e0a',
      runs: [RUN],
      next_cursor: null,
    },
  },
  'GET /jobs/{job_id}/runs/{run_id}/logs': {
    description: `The output of one run (\`run_id\` from GET /jobs/{job_id}/runs): while it runs, the last \`tail\` lines (default 100, at most 10000) read from its container on its node (\`source: node\`); once it ended, the last 50 lines kept with the run (\`source: log_tail\`). \`fleet jobs logs JOB -f\` follows it. ${WAITS}`,
    params: { job_id: 'train-3f2a9c1b', run_id: 'train-3f2a9c1b-20260115020000000-a1' },
    response: {
      job_id: 'train-3f2a9c1b',
      run_id: 'train-3f2a9c1b-20260115020000000-a1',
      status: 'running',
      source: 'node',
      logs: 'epoch 1 loss 0.912\nepoch 2 loss 0.604\n',
    },
  },
  'GET /stats': {
    description: 'How many jobs are in each status.',
    response: { total_jobs: 12, pending: 3, running: 2, completed: 6, failed: 1, retrying: 0 },
  },

  // ------------------------------------------------------------------ Novita
  'POST /api/instances': {
    description:
      'Creates a Novita GPU instance: the cheapest deployable product named `productName` in `region` (default CN-HK-01), `gpuNum` GPUs (default 1), a root disk of `rootfsSize` GB (default 60). It is watched until running; `webhookUrl` gets its status changes. 503 while no Novita key is set. `join_fleet: true` (with `cluster` and `labels`) makes the instance’s startup command fetch and run the agent with the process driver and a join token for that instance only (one use, its node name only): it registers as a node named after the instance (`inst-…`); `spot` picks spot billing for this instance.',
    request: {
      name: 'finetune-1',
      productName: 'RTX 4090 24GB',
      templateId: 'tpl-pytorch',
      gpuNum: 1,
      rootfsSize: 60,
    },
  },
  'GET /api/instances': {
    description: 'Managed instances, newest first; filter by status, page with limit and offset.',
  },
  'GET /api/instances/{instanceId}': {
    description:
      'One instance: status, port mappings, connection details and cost per hour. A `join_fleet` instance also shows `pricePerHour`, `spot`, `node` (the node it registered as, null until then), `burstFor` (the training job a burst rented it for), `burstModel` (the model whose queue a model burst rented it for) and `terminatedAt`.',
    params: { instanceId: 'inst-0123456789' },
  },
  'GET /api/metrics': {
    description:
      'Requests, instances by status, jobs, cache hit rates and process metrics of the Novita area.',
  },
  'GET /api/migration/status': {
    description: 'The spot migration service: last and next run, statistics and configuration.',
  },
  'POST /api/migration/trigger': {
    description:
      'Queues a migration of reclaimed spot instances to on-demand ones now (202); `dryRun` only plans, `maxMigrations` caps the count.',
    request: { dryRun: true, maxMigrations: 5 },
    response: {
      jobId: 'migration-job-0a1b2c3d4e5f',
      status: 'queued',
      message: 'Migration job queued',
      estimatedStartTime: '2026-01-15T10:00:05Z',
      dryRun: true,
    },
  },
  'GET /api/migration/history': { description: 'Migration runs, newest first, with their summaries.' },
};
