/** /openapi.json's descriptions and examples for system and agent routes (see ../operation-docs.ts). */
import { type OperationDoc } from './shared.js';

export const SYSTEM_DOCS: Record<string, OperationDoc> = {
  // ------------------------------------------------------------------ system
  'GET /health': {
    description:
      'Public. 200 while the store answers; 503 with the same body when a dependency is down. Load balancers and `fleet login` use it.',
    response: {
      status: 'healthy',
      timestamp: '2026-01-15T10:00:00Z',
      uptime: 3600,
      version: '0.1.0',
      service: 'gpu-fleet-control-plane',
      database_connected: true,
      dependencies: {
        database: 'healthy',
        queue: 'healthy',
        scheduler: 'healthy',
        artifacts: 'healthy',
        novitaApi: 'not_configured',
      },
    },
  },
  'GET /openapi.json': {
    description: 'Public. This document, generated from the route table the server runs.',
  },
  'GET /docs': { description: 'Public. Swagger UI over /openapi.json, served without a CDN.' },
  'GET /redoc': { description: 'Public. ReDoc over /openapi.json, served without a CDN.' },
  'GET /docs/assets/{name}': {
    description: 'Public. The JavaScript and CSS files of Swagger UI and ReDoc; any other name is a 404.',
    params: { name: 'swagger-ui-bundle.js' },
  },
  'GET /metrics': {
    description:
      'Prometheus text format (version 0.0.4): GPU metrics under the DCGM exporter’s names (`DCGM_FI_DEV_GPU_UTIL` in %, `DCGM_FI_DEV_FB_USED` in MiB, `DCGM_FI_DEV_GPU_TEMP` in °C), Jetson and node gauges, queue lengths and job counts. With API_AUTH=true it takes the API key or the scrape token.',
  },

  'GET /install.sh': {
    description:
      'Public. The POSIX sh node installer, with this control plane’s URL as its default `--url`: `curl -fsSL <url>/install.sh | sudo sh -s -- --token <join token> [--name <node>]` installs the agent as a systemd service (or its container image where the host cannot run it). The join token’s `install_command` and `fleet join-command` give the whole line.',
  },
  'GET /install/{file}': {
    description:
      'Public. What install.sh downloads: `agent.mjs` and `agent-ssh2.cjs` (npm run build:agent), `node-<arch>.tar.gz` (the pinned Node.js runtime) and `agent-image-<arch>.tar` (npm run build:agent-image), `<arch>` x86_64 or aarch64; 404 for one not built here.',
    params: { file: 'agent.mjs' },
  },

  // ------------------------------------------------------------------ agent
  'POST /agent/register': {
    description:
      'Called by the agent at start. Creates the node on first registration and returns its id, a fresh node credential (shown once) and its command channel (`http` long-poll when embedded, `sqs` on AWS). Memory is in MB, disk in GB; GPU memory in MiB, temperatures in °C, power in W.',
    request: {
      nodeName: 'gpu-01',
      hostname: 'gpu-01.lab',
      addresses: ['10.0.0.21'],
      arch: 'x64',
      os: 'linux',
      cpuCount: 32,
      memoryMb: 257_000,
      diskGb: 1_800,
      gpus: [
        {
          index: 0,
          uuid: 'GPU-5b1c7e0a-0f3e-4a8d-9b1e-2f6c1d0e9a11',
          name: 'NVIDIA H100 80GB HBM3',
          utilizationGpu: 0,
          utilizationMemory: 0,
          memoryTotalMiB: 81_559,
          memoryUsedMiB: 0,
          memoryFreeMiB: 81_559,
          temperatureC: 31,
          powerDrawW: 70,
          powerLimitW: 700,
        },
      ],
      labels: { rack: 'a', gpu: 'h100' },
      agentVersion: '0.1.0',
      engine: { name: 'docker', version: '27.3.1', gpuRuntime: true },
    },
  },
  'POST /agent/token/rotate': {
    description:
      'Agent only: replaces the node credential presented with a fresh one, returned once. The old one stops working at once.',
  },
  'POST /agent/stopping': {
    description:
      'Agent only, sent once when its service or container is stopped (SIGTERM): the node reads offline at once instead of after NODE_OFFLINE_AFTER_SECONDS, its copies are replaced elsewhere as for any offline node, and commands sent meanwhile wait on its queue. Not a retire: the node keeps its credential and records, and its next registration brings it back online. An upgrade by install.sh does not send it.',
  },
  'POST /agent/heartbeat': {
    description:
      'Agent only, every NODE_HEARTBEAT_SECONDS (30 s by default): host metrics (`cpuPercent` in %, memory in MB, disk in GB), GPU metrics and the state of every managed container. The answer carries the interval the agent should keep.',
    request: {
      metrics: {
        cpuPercent: 12.5,
        memoryUsedMb: 31_250,
        memoryTotalMb: 257_000,
        diskUsedGb: 412,
        diskTotalGb: 1_800,
        gpus: [],
      },
      containers: [
        {
          containerId: '4f1d2c3b5a6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70',
          name: 'container-3f2a9c1b7d4e',
          instanceId: '3f2a9c1b7d4e',
          imageId: 'nginx:alpine',
          state: 'running',
          ports: [{ containerPort: 80, hostPort: 32768, protocol: 'tcp' }],
        },
      ],
    },
  },
  'POST /agent/credentials': {
    description:
      'Agent only, on AWS (the `sqs` channel): short-lived STS credentials that may only receive, delete and extend messages of the node’s own queue. 409 on the `http` channel.',
  },
  'GET /agent/commands': {
    description:
      'Agent only, embedded runtime: long-polls the node’s queue for up to `wait` seconds and returns at most `max` commands with their receipt handles.',
  },
  'POST /agent/commands/ack': {
    description: 'Agent only: deletes delivered commands (1 to 10 receipt handles) from the node’s queue.',
    request: { receiptHandles: ['rh-9c2e4f6a8b0d'] },
  },
  'POST /agent/commands/{commandId}/result': {
    description:
      'Agent only: the outcome of one command. The first report wins; a repeated one changes nothing, so an agent may retry freely.',
    params: { commandId: 'cmd-7f3c2a9e1b4d' },
    request: { status: 'succeeded', output: { containerId: '4f1d2c3b5a6e' } },
  },
  'POST /agent/events': {
    description:
      'Agent only: 1 to 100 events (container exits with their last log lines, task progress in %, task results), forwarded on the event bus as `agent.<type>`.',
    request: {
      events: [
        { type: 'task.progress', taskId: 'task-20260115-abc123', progress: 40, at: '2026-01-15T10:00:00Z' },
      ],
    },
  },

  'POST /agent/checkpoints/{job_id}/restore': {
    description:
      'Agent only, for the job’s attempt in flight on this node (403 otherwise): the stored manifest (or null) and where to fetch each chunk: presigned S3 URLs valid TRAINING_CHECKPOINT_URL_SECONDS, or this API’s chunk route when embedded.',
    params: { job_id: 'train-3f2a9c1b' },
    request: { instanceId: 'train-3f2a9c1b-20260115020000000-a2' },
    response: {
      chunkBytes: 8388608,
      maxBytes: 21474836480,
      manifest: {
        jobId: 'train-3f2a9c1b',
        chunkBytes: 8388608,
        updatedAt: '2026-01-15T02:10:00.000Z',
        files: [
          {
            name: 'step',
            size: 2,
            chunks: ['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'],
            attempt: 1,
            updatedAt: '2026-01-15T02:10:00.000Z',
          },
        ],
      },
      downloads: [
        {
          hash: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
          url: 'https://fleet-artifacts.s3.us-east-1.amazonaws.com/checkpoints/train-3f2a9c1b/chunks/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=900&X-Amz-Signature=…',
          headers: {},
        },
      ],
    },
  },
  'POST /agent/checkpoints/{job_id}/uploads': {
    description:
      'Agent only: where to upload the chunks (SHA-256 named) the store lacks; 413 when `totalBytes` is over TRAINING_CHECKPOINT_MAX_BYTES (the job’s checkpoint listing then says so).',
    params: { job_id: 'train-3f2a9c1b' },
    request: {
      instanceId: 'train-3f2a9c1b-20260115020000000-a2',
      totalBytes: 2,
      chunks: [{ hash: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', size: 2 }],
    },
    response: {
      uploads: [
        {
          hash: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
          url: '/agent/checkpoints/train-3f2a9c1b/runs/train-3f2a9c1b-20260115020000000-a2/chunks/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
          headers: {},
        },
      ],
    },
  },
  'PUT /agent/checkpoints/{job_id}/manifest': {
    description:
      'Agent only: stores the manifest of an upload once every chunk it names is stored at its size (409 otherwise), so a cut upload never replaces the stored checkpoint; unchanged files keep the attempt that wrote them.',
    params: { job_id: 'train-3f2a9c1b' },
    request: {
      instanceId: 'train-3f2a9c1b-20260115020000000-a2',
      chunkBytes: 1048576,
      files: [
        {
          name: 'step',
          size: 2,
          chunks: ['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'],
        },
      ],
    },
    response: { files: 1, totalBytes: 2, updatedAt: '2026-01-15T02:31:00.000Z' },
  },
  'PUT /agent/checkpoints/{job_id}/runs/{instance_id}/chunks/{hash}': {
    description:
      'Agent only, embedded runtime: one chunk’s bytes (application/octet-stream, at most MAX_BODY_BYTES); 422 unless they hash to `hash`.',
    params: {
      job_id: 'train-3f2a9c1b',
      instance_id: 'train-3f2a9c1b-20260115020000000-a2',
      hash: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
    },
    response: { hash: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', size: 2 },
  },
  'GET /agent/checkpoints/{job_id}/runs/{instance_id}/chunks/{hash}': {
    description: 'Agent only, embedded runtime: one stored chunk’s bytes.',
    params: {
      job_id: 'train-3f2a9c1b',
      instance_id: 'train-3f2a9c1b-20260115020000000-a2',
      hash: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
    },
  },
};
