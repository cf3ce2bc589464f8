/**
 * Response examples: the Cluster Manager (workers, tasks,
 * models) and vision operations. Merged into OPERATION_DOCS where an entry
 * has no `response` of its own; each is held to its route's schema by test/unit/core/openapi.test.ts.
 */
const T0 = '2026-01-15T10:00:00Z';
const T1 = '2026-01-15T10:00:42Z';

const gpuInfo = {
  model: 'NVIDIA A100-SXM4-80GB',
  memory_total: '80GB',
  memory_used: '50GB',
  temperature: 71,
  utilization: 87,
};
const catalogModel = {
  id: 'llama-2-7b',
  kind: 'text',
  type: 'llm',
  image: 'ghcr.io/example/llama-server:2.7',
  port: 8080,
  gpu_memory_mb: 14336,
  built_in: true,
};
const visionJob = {
  job_id: 'vis-20260115-8f2a',
  status: 'completed',
  model: 'SDXL_4GB_FP8.safetensors',
  created_at: T0,
  progress: 100,
  node_id: 'jetson-01-2b7d4f9e',
  result: {
    image_url: '/api/vision/outputs/vis-20260115-8f2a_0.png',
    images: ['/api/vision/outputs/vis-20260115-8f2a_0.png'],
    seed: 421337,
    generation_time: 18.4,
    node_id: 'jetson-01-2b7d4f9e',
  },
};
export const WORKLOAD_RESPONSE_EXAMPLES: Record<string, unknown> = {
  'GET /cluster/status': {
    cluster_id: 'fleet',
    status: 'operational',
    total_workers: 3,
    active_workers: 3,
    queued_tasks: 4,
    running_tasks: 2,
    gpu_utilization: 64.3,
    total_memory: '240GB',
    available_memory: '118GB',
    uptime: '3d 4h 12m',
    placements: { placed: 1284, model_switches: 37, requeued: 3, lost: 5, failed: 1 },
  },
  'GET /workers': {
    workers: [
      {
        worker_id: 'gpu-01-7c1e9a2b',
        name: 'gpu-01',
        status: 'busy',
        gpu_info: gpuInfo,
        loaded_models: ['llama-2-7b'],
        current_tasks: 2,
        max_concurrency: 4,
        cordoned: false,
        last_heartbeat: T1,
        performance_score: 0.92,
      },
    ],
    total: 1,
    online: 1,
    offline: 0,
    next_cursor: null,
  },
  'GET /workers/{worker_id}': {
    worker_id: 'gpu-01-7c1e9a2b',
    name: 'gpu-01',
    status: 'busy',
    cordoned: false,
    gpu_info: gpuInfo,
    system_info: { cpu_percent: 23.5, memory_percent: 41.2, disk_percent: 38.4 },
    loaded_models: [{ name: 'llama-2-7b' }],
    current_tasks: 2,
    current_task_ids: ['task-20260115-abc123', 'task-20260115-def456'],
    last_heartbeat: T1,
    performance_score: 0.92,
    task_history: { completed_today: 148, average_duration: '3.2s', success_rate: 99.3 },
    metrics: { tasks_per_hour: 61, average_response_time: '3.2s', error_rate: 0.7 },
  },
  'POST /workers/{worker_id}/restart': {
    message: 'Worker gpu-01 is restarting its model servers',
    worker_id: 'gpu-01-7c1e9a2b',
    estimated_downtime: '45s',
    requeued_tasks: ['task-20260115-def456'],
    unloaded_models: ['llama-2-7b'],
  },
  'GET /tasks': {
    tasks: [
      {
        task_id: 'task-20260115-abc123',
        status: 'completed',
        task_type: 'inference',
        model_name: 'llama-2-7b',
        assigned_worker: 'gpu-01-7c1e9a2b',
        duration: '3.1s',
        created_at: T0,
      },
      {
        task_id: 'task-20260115-def456',
        status: 'queued',
        task_type: 'inference',
        model_name: 'llama-2-7b',
        assigned_worker: null,
        duration: null,
        created_at: T1,
      },
    ],
    total: 2,
    limit: 50,
    offset: 0,
    cursor: null,
  },
  'DELETE /tasks/{task_id}': {
    message: 'Task cancelled',
    task_id: 'task-20260115-def456',
    status: 'cancelled',
  },
  'POST /models/assign': {
    assignment_id: 'asg-3c7e1a9f',
    model_name: 'llama-2-7b',
    priority: 'normal',
    preload: true,
    assignments: [{ worker_id: 'gpu-01-7c1e9a2b' }],
  },
  'POST /models/unload': {
    message: 'llama-2-7b unloaded from 1 worker',
    model_name: 'llama-2-7b',
    affected_workers: ['gpu-01-7c1e9a2b'],
    requeued_tasks: [],
  },
  'GET /models/assignments': {
    assignments: [
      {
        worker_id: 'gpu-01-7c1e9a2b',
        name: 'gpu-01',
        online: true,
        models: [{ name: 'llama-2-7b', status: 'loaded', memory_usage: '14GB', load_time: '38s' }],
      },
    ],
  },
  'GET /models/catalog': { models: [catalogModel] },
  'PUT /models/catalog/{model_id}': {
    ...catalogModel,
    id: 'mistral-7b',
    image: 'ghcr.io/example/mistral-server:0.3',
    built_in: false,
  },
  'DELETE /models/catalog/{model_id}': { deleted: 'mistral-7b', built_in: false },
  'POST /cluster/rebalance': {
    rebalance_id: 'rb-5e2a8c4f',
    status: 'dry_run',
    strategy: 'memory_optimized',
    dry_run: true,
    estimated_duration: '90s',
    affected_workers: ['gpu-01-7c1e9a2b', 'gpu-02-1d5c8a3e'],
    operations: [{ type: 'model_migration', model: 'llama-2-7b' }],
  },
  'GET /cluster/metrics': {
    timeframe: '1h',
    metrics: {
      total_tasks: 212,
      successful_tasks: 209,
      failed_tasks: 3,
      success_rate: 98.6,
      average_response_time: '3.2s',
      peak_throughput: '14 tasks/min',
      gpu_utilization: { average: 64.3, peak: 97, minimum: 12 },
      memory_usage: { average: '122GB', peak: '151GB', efficiency: 0.81 },
      samples: 60,
    },
  },
  'GET /api/vision/status': {
    online_nodes: 2,
    busy_nodes: 1,
    switching_nodes: 0,
    offline_nodes: 0,
    queue_length: 3,
    models_loaded: { 'jetson-01-2b7d4f9e': ['SDXL_4GB_FP8.safetensors'], 'jetson-02-6c0a3e5d': [] },
  },
  'POST /api/vision/generate': {
    job_id: 'vis-20260115-8f2a',
    status: 'queued',
    queue_position: 2,
    target_model: 'SDXL_4GB_FP8.safetensors',
  },
  'GET /api/vision/jobs/{job_id}': visionJob,
  'GET /api/vision/jobs': {
    jobs: [{ ...visionJob, prompt: 'a lighthouse at dawn, oil painting' }],
    total: 1,
    limit: 50,
    offset: 0,
    cursor: null,
  },
  'POST /api/vision/jobs/{job_id}/cancel': {
    job_id: 'vis-20260115-8f2a',
    status: 'cancelled',
    message: 'Job cancelled',
  },
  'POST /api/vision/jobs/stop-all': {
    message: 'Cancelled 2 jobs',
    cancelled: 2,
    job_ids: ['vis-20260115-8f2a', 'vis-20260115-9b3c'],
  },
  'GET /api/vision/queue': {
    queue: [
      {
        position: 1,
        job_id: 'vis-20260115-9b3c',
        model: 'SDXL_4GB_FP8.safetensors',
        priority: 1,
        task_type: 'text2img',
        prompt: 'a lighthouse at dawn, oil painting',
        created_at: T0,
      },
    ],
    length: 1,
    limit: 50,
    cursor: null,
    processing: [
      {
        job_id: 'vis-20260115-8f2a',
        model: 'SDXL_4GB_FP8.safetensors',
        node_id: 'jetson-01-2b7d4f9e',
        progress: 40,
        task_type: 'text2img',
      },
    ],
  },
  'GET /api/vision/models/available': {
    models: [
      {
        name: 'SDXL_4GB_FP8.safetensors',
        type: 'sdxl',
        size: '4GB',
        gpu_memory: '6GB',
        max_width: 1536,
        max_height: 1536,
        steps: { min: 1, max: 60 },
        loaded_on: ['jetson-01-2b7d4f9e'],
      },
    ],
  },
  'POST /api/vision/models/switch/{node_id}': {
    node_id: 'jetson-01-2b7d4f9e',
    model: 'SDXL_4GB_FP8.safetensors',
    status: 'switching',
    previous_models: ['sd15_pruned.safetensors'],
    estimated_time: '45s',
  },
  'GET /api/vision/loras': {
    loras: [{ name: 'watercolor', filename: 'watercolor.safetensors', size: 151_003_392, uploaded_at: T0 }],
    total: 1,
  },
  'POST /api/vision/loras/upload': {
    message: 'LoRA uploaded',
    name: 'watercolor',
    filename: 'watercolor.safetensors',
    size: 151_003_392,
  },
  'GET /api/vision/gallery': {
    images: [
      {
        filename: 'vis-20260115-8f2a_0.png',
        url: '/api/vision/outputs/vis-20260115-8f2a_0.png',
        size: 1_482_113,
        created_at: T1,
        job_id: 'vis-20260115-8f2a',
      },
    ],
    total: 1,
    limit: 50,
    offset: 0,
  },
  'GET /api/vision/outputs': {
    outputs: [
      {
        filename: 'vis-20260115-8f2a_0.png',
        url: '/api/vision/outputs/vis-20260115-8f2a_0.png',
        size: 1_482_113,
        created_at: T1,
      },
    ],
    total: 1,
  },
  'DELETE /api/vision/outputs/{filename}': { message: 'Output deleted', filename: 'vis-20260115-8f2a_0.png' },
  'POST /api/vision/outputs/clear': { message: 'Deleted 12 outputs', deleted: 12 },
  'GET /api/vision/schedulers': { schedulers: ['euler', 'euler_a', 'dpmpp_2m', 'ddim'] },
  'GET /api/vision/aspect-ratios': {
    ratios: [
      { name: '1:1', width: 1024, height: 1024 },
      { name: '16:9', width: 1344, height: 768 },
    ],
  },
};
