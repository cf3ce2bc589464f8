/**
 * Response examples: training jobs and Novita operations.
 * Merged into OPERATION_DOCS where an entry has no `response` of its own; each is held to its
 * route's response schema by test/unit/core/openapi.test.ts.
 */
const T0 = '2026-01-15T10:00:00Z';

const job = {
  job_id: 'job-resnet-nightly',
  name: 'resnet-nightly',
  image: 'registry.lab:5000/trainer:v1',
  command: ['python', 'train.py', '--epochs', '10'],
  schedule: '0 2 * * *',
  timezone: 'UTC',
  max_retries: 2,
  retry_count: 0,
  checkpoint_path: '/checkpoints/resnet',
  resources: { cpu_limit: '4', memory_limit: '16g', gpus: 1 },
  env: { WANDB_MODE: 'offline' },
  status: 'completed',
  started_at: '2026-01-15T02:00:04Z',
  completed_at: '2026-01-15T03:12:40Z',
  error_message: null,
  created_at: '2026-01-10T09:00:00Z',
  updated_at: '2026-01-15T03:12:40Z',
  skipped_firings: 0,
  cloud: null,
  preemption_count: 0,
};
const instance = {
  id: 'inst-4f2a9c1b7d3e',
  name: 'sd-worker-1',
  status: 'running',
  gpuNum: 1,
  region: 'us-dallas-nas-2',
  createdAt: T0,
  readyAt: '2026-01-15T10:03:12Z',
  pricePerHour: 35000,
  spot: false,
};

export const JOB_RESPONSE_EXAMPLES: Record<string, unknown> = {
  'GET /jobs': { jobs: [job], total: 1, page: 1, page_size: 20 },
  'GET /jobs/{job_id}': job,
  'PUT /jobs/{job_id}': { ...job, schedule: '0 3 * * *', updated_at: T0 },
  'POST /jobs/{job_id}/retry': {
    ...job,
    status: 'pending',
    retry_count: 0,
    started_at: null,
    completed_at: null,
    error_message: null,
    updated_at: T0,
  },
  'POST /api/instances': {
    instanceId: 'inst-4f2a9c1b7d3e',
    status: 'creating',
    message: 'Instance creation initiated',
    estimatedReadyTime: '2026-01-15T10:05:00.000Z',
  },
  'GET /api/instances': { instances: [instance], total: 1, limit: 20, offset: 0, cursor: null },
  'GET /api/instances/{instanceId}': {
    ...instance,
    productName: 'RTX 4090 24GB',
    templateId: 'template-123',
    portMappings: [{ port: 8888, endpoint: 'https://inst-4f2a.novita.example:8888', type: 'http' }],
    connectionDetails: {
      ssh: 'ssh root@203.0.113.7 -p 30122',
      jupyter: 'https://inst-4f2a.novita.example:8888',
    },
  },
  'GET /api/metrics': {
    requests: { total: 1843, successful: 1829, failed: 14, averageResponseTime: 38.2 },
    instances: { creating: 0, running: 3, exited: 1 },
    jobs: { pending: 0, processing: 1, completed: 27, failed: 1 },
    cache: { hits: 412, misses: 37, hitRate: 0.918 },
    system: { uptime: 273600, memoryUsage: { used: 212, total: 1024, percentage: 20.7 } },
  },
  'GET /api/migration/status': {
    enabled: true,
    lastExecution: {
      jobId: 'mig-20260115-0945',
      startedAt: '2026-01-15T09:45:00Z',
      completedAt: '2026-01-15T09:45:09Z',
      duration: 9000,
      status: 'completed',
    },
    nextExecution: '2026-01-15T10:00:00Z',
    statistics: {
      totalExecutions: 96,
      successfulExecutions: 95,
      failedExecutions: 1,
      totalInstancesProcessed: 288,
      totalMigrations: 4,
      averageExecutionTime: 7400,
    },
    configuration: { intervalMinutes: 15, maxConcurrent: 5, dryRunMode: false, retryFailed: true },
  },
  'GET /api/migration/history': {
    executions: [
      {
        jobId: 'mig-20260115-0945',
        status: 'completed',
        triggeredBy: 'schedule',
        dryRun: false,
        queuedAt: '2026-01-15T09:45:00Z',
        startedAt: '2026-01-15T09:45:00Z',
        completedAt: '2026-01-15T09:45:09Z',
        duration: 9000,
        summary: {
          totalInstances: 3,
          exitedInstances: 1,
          eligibleInstances: 1,
          migratedInstances: 1,
          skippedInstances: 0,
          errorCount: 0,
        },
        errors: [],
        migrations: [{ instanceId: 'inst-9c1b7d3e4f2a', newInstanceId: 'inst-4f2a9c1b7d3e' }],
      },
    ],
    total: 1,
    limit: 20,
    offset: 0,
  },
};
