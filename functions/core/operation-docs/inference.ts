/** /openapi.json's descriptions and examples for the Cluster Manager (inference) and vision (see ../operation-docs.ts). */
import { type OperationDoc } from './shared.js';

export const INFERENCE_DOCS: Record<string, OperationDoc> = {
  // ------------------------------------------------------------------ cluster manager (inference)
  'GET /cluster/status': {
    description:
      'Workers online and busy, the queue by priority, and GPU utilisation (%) and memory (MB) fleet-wide.',
  },
  'GET /workers': {
    description:
      'Workers (the fleet’s GPU nodes) by name with their status, GPU and loaded models, a page at a time: `limit` (1-1,000, default 1,000) and `cursor` (a page’s `next_cursor`; null on the last). `status` and `gpu_type` filter within the page (a filtered page may hold fewer than `limit`); `total`, `online` and `offline` count the workers returned.',
  },
  'GET /workers/{worker_id}': {
    description:
      'One worker: GPU, system, loaded models, today’s task counts and its last 24 hours’ metrics, from statistics kept by the hour as its tasks finish.',
    params: { worker_id: 'gpu-01' },
  },
  'POST /workers/{worker_id}/restart': {
    description:
      'Restarts a worker’s serving stack: its running tasks go back to the queue and its model servers are removed.',
    params: { worker_id: 'gpu-01' },
  },
  'POST /tasks': {
    description:
      'Queues an inference task for `model_name` (see GET /models/catalog). Priority `low`, `normal` (default), `high` or `critical`; older tasks age up. `timeout` in seconds (at most 7 days). The scheduler prefers workers that already hold the model. Follow with GET /tasks/{task_id}.',
    request: {
      task_type: 'generate',
      model_name: 'llama-2-7b',
      parameters: { prompt: 'Summarise the fleet status', max_tokens: 256 },
      priority: 'normal',
      timeout: 600,
    },
    response: {
      task_id: 'task-20260115-abc123',
      status: 'queued',
      estimated_wait_time: '0s',
      assigned_worker: null,
      created_at: '2026-01-15T10:00:00Z',
    },
  },
  'GET /tasks': {
    description:
      'Tasks, newest first; filter by status and worker. Page with `cursor` (from the last page; null on the last), or `limit` and `offset`. `total` is counted, not read.',
  },
  'GET /tasks/{task_id}': {
    description:
      'A task’s status (`queued`, `assigned`, `running`, `completed`, `failed`, `cancelled`), worker, timings and result.',
    params: { task_id: 'task-20260115-abc123' },
    response: {
      task_id: 'task-20260115-abc123',
      status: 'completed',
      task_type: 'generate',
      model_name: 'llama-2-7b',
      assigned_worker: 'gpu-01-5b1c7e0a',
      created_at: '2026-01-15T10:00:00Z',
      started_at: '2026-01-15T10:00:01Z',
      completed_at: '2026-01-15T10:00:04Z',
      duration: '3.2s',
      result: { text: 'All 12 nodes are online.' },
      error: null,
      attempts: 1,
    },
  },
  'DELETE /tasks/{task_id}': {
    description:
      'Cancels a queued or running task; a running one gets `task.cancel` on its node. 409 once it ended.',
    params: { task_id: 'task-20260115-abc123' },
  },
  'POST /models/assign': {
    description:
      'Assigns a model to workers; with `preload` (default true) its server starts on them now rather than at the first task.',
    request: { model_name: 'llama-2-7b', worker_ids: ['gpu-01'], preload: true, priority: 'normal' },
  },
  'POST /models/unload': {
    description:
      'Unloads a model from the given workers (or all); `force` requeues its running tasks instead of refusing (409).',
    request: { model_name: 'llama-2-7b', worker_ids: ['gpu-01'], force: false },
  },
  'GET /models/assignments': { description: 'Which models each worker has loaded or is loading.' },
  'GET /models/catalog': {
    description:
      'The model catalogue: built-in models and declared ones, with server image, port and GPU memory (MB). A model with `cloud` also shows `burst`: `instanceId` (the instance rented for its queue) and `reason` (why the last burst was refused), or null before its first burst.',
  },
  'PUT /models/catalog/{model_id}': {
    description:
      'Declares a model: its server image, API port and protocol, GPU memory it needs in MB, and for image models the size and step limits. `loadSeconds` (default 45) is the expected load time the scheduler weighs. `command` (argv) runs the server as a process on a node without a container engine. `cloud` (`product`, `region`, `max_price_per_hour`, `spot`, `always`; needs `command`): when queued tasks of the model find no fleet node (or always), a Novita instance is rented that joins the fleet and serves the model only; it is terminated once the model has had nothing queued or running there for CLOUD_BURST_MODEL_IDLE_SECONDS. The training bursts’ caps apply (CLOUD_BURST_MAX_INSTANCES, CLOUD_BURST_MAX_SPEND_PER_DAY).',
    params: { model_id: 'llama-3.1-8b' },
    request: {
      kind: 'text',
      image: 'registry.lab:5000/llm-server:1.0',
      port: 8000,
      protocol: 'text-generate',
      path: '/generate',
      gpuMemoryMb: 18_000,
      loadSeconds: 60,
    },
  },
  'DELETE /models/catalog/{model_id}': {
    description: 'Removes a declared model; a built-in model of that id shows again.',
    params: { model_id: 'llama-3.1-8b' },
  },
  'POST /cluster/rebalance': {
    description:
      'Moves models between workers: `memory_optimized` (default) packs them by GPU memory, `load_balanced` spreads them by queue load. `dry_run` only returns the plan; `force` moves models with running tasks.',
    request: { strategy: 'memory_optimized', dry_run: true },
  },
  'GET /cluster/metrics': {
    description:
      'Tasks finished over `timeframe` (1h by the minute; 24h, 7d, 30d by the hour) plus those queued or running now, success rate, response time and peak throughput from statistics kept as tasks finish; GPU (%) and memory from per-minute fleet samples.',
  },

  // ------------------------------------------------------------------ vision
  'GET /api/vision/status': {
    description:
      'Vision nodes online, busy, switching models and offline; the queue length; which model is loaded where.',
  },
  'POST /api/vision/generate': {
    description:
      'Queues an image generation: `width` and `height` in pixels (default 1024, multiples of 64 advised), `steps` (default 20), `guidance_scale` (default 7.5), `seed` (null: random), `lora_strength` (default 0.8). Higher `priority` goes first.',
    request: {
      prompt: 'a GPU rack in a clean server room, photo',
      width: 1024,
      height: 1024,
      steps: 20,
      guidance_scale: 7.5,
      seed: 42,
      scheduler: 'euler',
    },
  },
  'GET /api/vision/jobs/{job_id}': {
    description:
      'An image job: its queue position while queued, progress (%) and node while processing, the image when done.',
    params: { job_id: 'task-20260115-abc123' },
  },
  'GET /api/vision/jobs': {
    description:
      'Image jobs, newest first; filter by status. Page with `cursor` (from the last page; null on the last), or `limit` and `offset`. A listed queued job has no `queue_position`: GET /api/vision/jobs/{job_id} counts it.',
  },
  'POST /api/vision/jobs/{job_id}/cancel': {
    description: 'Cancels an image job; a running one gets `task.cancel` on its node.',
    params: { job_id: 'task-20260115-abc123' },
  },
  'POST /api/vision/jobs/stop-all': { description: 'Cancels every queued and processing image job.' },
  'GET /api/vision/queue': {
    description:
      'The shared queue in scheduling order (priority with aging, then first in first out), `limit` jobs a page (default 50; `cursor` for the next), its whole `length`, and what is processing (at most `limit` running tasks, by node).',
  },
  'GET /api/vision/models/available': {
    description: 'Image models of the catalogue and the nodes they are loaded on.',
  },
  'POST /api/vision/models/switch/{node_id}': {
    description: 'Switches the image model a node serves; refused (409) while it runs jobs.',
    params: { node_id: 'jetson-01' },
    request: { model: 'SDXL_4GB_FP8.safetensors' },
  },
  'GET /api/vision/loras': { description: 'Uploaded LoRA files with their sizes.' },
  'POST /api/vision/loras/upload': {
    description:
      'Uploads a LoRA as multipart form data (`file`, `name`), at most 50 MiB, `.safetensors` only.',
  },
  'GET /api/vision/gallery': {
    description: 'Generated images, newest first, with their prompts and parameters.',
  },
  'GET /api/vision/outputs': { description: 'Output files, newest first, with size and time.' },
  'GET /api/vision/outputs/{filename}': {
    description: 'One output file (PNG or JPEG).',
    params: { filename: 'task-20260115-abc123.png' },
  },
  'DELETE /api/vision/outputs/{filename}': {
    description: 'Deletes one output file.',
    params: { filename: 'task-20260115-abc123.png' },
  },
  'POST /api/vision/outputs/clear': { description: 'Deletes every output file.' },
  'GET /api/vision/schedulers': { description: 'Sampler schedulers a generation may name.' },
  'GET /api/vision/aspect-ratios': {
    description: 'Preset sizes in pixels: multiples of 64, about one megapixel.',
  },
};
