/**
 * What /openapi.json says of each operation beyond its summary: a description (defaults, units,
 * what waits for agents), a request example that its body schema accepts (Swagger's "Try it out"
 * is pre-filled with it), path parameter examples and, for the main operations, a response
 * example. Keyed `METHOD path` as in the route table; test/unit/core/openapi.test.ts holds every
 * operation to an entry and every example to its schema.
 */
import { FLEET_RESPONSE_EXAMPLES } from './response-examples-fleet.js';
import { JOB_RESPONSE_EXAMPLES } from './response-examples-jobs.js';
import { OPS_RESPONSE_EXAMPLES } from './response-examples-ops.js';
import { WORKLOAD_RESPONSE_EXAMPLES } from './response-examples-workloads.js';

export interface OperationDoc {
  description: string;
  /** The request body example (JSON bodies). */
  request?: unknown;
  /** Example values of path parameters. */
  params?: Record<string, string>;
  /** An example of the success response body. */
  response?: unknown;
  /** An example of a 202 that is not a list of pending commands. */
  accepted?: unknown;
}

/** Said once for every call that waits for agents (functions/nodes/settle.ts). */
const WAITS =
  'Waits for the agents up to COMMAND_WAIT_MS (20 s by default); past that it answers 202 with `pending_commands`, each to follow with GET /commands/{command_id}.';
const RESOURCES =
  '`cpu_limit` is in cores as a string (`"0.5"`, `"2"`); `memory_limit` and `disk_limit` are sizes with a binary unit (`"512m"`, `"1g"`, `"10g"`); `gpus` is a whole number of GPUs (0 to 16).';

/** The body of a 202 from a call that waits for agents. */
export const PENDING_EXAMPLE = { status: 'pending', pending_commands: ['cmd-7f3c2a9e1b4d'] };

export const OPERATION_DOCS: Record<string, OperationDoc> = {
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
      'Public. What install.sh downloads: `agent.mjs` (npm run build:agent), `node-<arch>.tar.gz` (the pinned Node.js runtime) and `agent-image-<arch>.tar` (npm run build:agent-image), `<arch>` x86_64 or aarch64; 404 for one not built here.',
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
  'POST /agent/heartbeat': {
    description:
      'Agent only, every HEARTBEAT_SECONDS (10 s by default): host metrics (`cpuPercent` in %, memory in MB, disk in GB), GPU metrics and the state of every managed container. The answer carries the interval the agent should keep.',
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

  // ------------------------------------------------------------------ orchestrator
  'GET /health/detailed': {
    description:
      'Health of the table, the node agents (`docker`: how many are online), the managed containers and the fleet’s summed CPU and memory use in %. 503 when the table does not answer.',
  },
  'GET /test/integration': {
    description: 'A self-test: writes and reads a table item and checks that at least one agent is online.',
  },
  'GET /system/resources': {
    description:
      'CPU cores, memory and disk (GB) and GPUs of every online node summed, with what managed containers reserve; `?node_id=` (id or name) for one node.',
  },
  'GET /images': {
    description:
      'Every image the orchestrator knows, with its desired count (what it keeps running), the running copies and the resources each copy gets.',
    response: {
      images: [
        {
          image: 'nginx:alpine',
          desired_count: 2,
          current_running: 2,
          total_instances: 2,
          resources: { cpu_limit: '0.5', memory_limit: '512m' },
        },
      ],
    },
  },
  'POST /start/container': {
    description: `Starts \`count\` copies (default 1) of \`resources.image\`, or answers the running copy of an image already started (\`action: reused\`). The control plane picks nodes with room for the limits (or \`node_id\`, id or name). ${RESOURCES} \`ports\` are container ports published on free host ports. ${WAITS} A 422 \`IMAGE_PULL_FAILED\` when no node could pull the image; 409 when no online node has room.`,
    request: {
      count: 1,
      resources: { image: 'nginx:alpine', cpu_limit: '0.5', memory_limit: '512m', gpus: 0 },
      ports: [80],
      env: { NGINX_PORT: '80' },
    },
    response: {
      ok: true,
      action: 'created',
      image: 'nginx:alpine',
      container_id: '3f2a9c1b7d4e',
      name: 'container-3f2a9c1b7d4e',
      status: 'running',
      ports: { '80/tcp': '32768' },
    },
  },
  'GET /containers': {
    description:
      'Every managed copy with its image, node, status (`pending`, `running`, `exited`, `backoff` with its reason and next try), published ports and limits.',
    response: {
      containers: [
        {
          id: '3f2a9c1b7d4e',
          name: 'container-3f2a9c1b7d4e',
          image: 'nginx:alpine',
          status: 'running',
          ports: { '80/tcp': '32768' },
          created_at: '2026-01-15T10:00:00Z',
          resources: { cpu_limit: '0.5', memory_limit: '512m' },
          node_id: 'gpu-01-5b1c7e0a',
        },
      ],
      total: 1,
    },
  },
  'GET /containers/instances/{instanceId}/health': {
    description:
      'CPU and memory use of one copy in % of its limits: `healthy` under 75 %, `warning` 75-90 %, `critical` above 90 %, or `stopped`.',
    params: { instanceId: '3f2a9c1b7d4e' },
  },
  'GET /containers/{imageId}/instances': {
    description: 'The copies of one image (URL-encode the reference: `nginx%3Aalpine`).',
    params: { imageId: 'nginx:alpine' },
    response: {
      instances: [
        {
          id: '3f2a9c1b7d4e',
          status: 'running',
          endpoint: '10.0.0.21:32768',
          resources: { cpu_limit: '0.5', memory_limit: '512m' },
          node_id: 'gpu-01-5b1c7e0a',
        },
      ],
    },
  },
  'POST /containers/{imageId}/start': {
    description: `Raises the image’s desired count by \`count\` (default 1) and starts that many copies. ${RESOURCES} Without \`resources\` the image keeps the limits it had. ${WAITS}`,
    params: { imageId: 'nginx:alpine' },
    request: { count: 2, resources: { cpu_limit: '0.5', memory_limit: '512m' }, ports: [80] },
    response: { started: ['3f2a9c1b7d4e', '8e1d0c2b4a6f'] },
  },
  'POST /containers/{imageId}/stop': {
    description: `Stops one copy and lowers the desired count by one, so it is not replaced. ${WAITS}`,
    params: { imageId: 'nginx:alpine' },
    request: { instanceId: '3f2a9c1b7d4e' },
    response: { stopped: true },
  },
  'DELETE /containers/{idOrName}': {
    description: `Removes a stopped copy by instance id, name (\`container-<id>\`) or engine container id (12 characters or more). A running copy is a 409 unless \`force=true\`, which stops it first. ${WAITS}`,
    params: { idOrName: 'container-3f2a9c1b7d4e' },
  },
  'PUT /containers/{imageId}/resources': {
    description: `New limits for the image: running copies are updated in place where the engine allows it. At least one of cpu_limit, memory_limit, disk_limit. ${RESOURCES} ${WAITS}`,
    params: { imageId: 'nginx:alpine' },
    request: { cpu_limit: '1', memory_limit: '1g' },
    response: { updated: ['3f2a9c1b7d4e'] },
  },
  'GET /commands/{command_id}': {
    description:
      'One command sent to an agent: `pending` until the agent reports, then `succeeded` or `failed` with its output or error. Follow the ids a 202 answered with this.',
    params: { command_id: 'cmd-7f3c2a9e1b4d' },
    response: {
      command_id: 'cmd-7f3c2a9e1b4d',
      node_id: 'gpu-01-5b1c7e0a',
      type: 'container.start',
      status: 'succeeded',
      instance_id: '3f2a9c1b7d4e',
      issued_at: '2026-01-15T10:00:00Z',
      completed_at: '2026-01-15T10:00:03Z',
      output: { containerId: '4f1d2c3b5a6e' },
      error: null,
    },
  },
  'GET /registry/endpoints': {
    description:
      'Service endpoints: one per published port of each running copy (written by the control plane), and those registered by hand.',
  },
  'POST /registry/endpoints': {
    description:
      'Registers, or replaces by `id`, an endpoint of an image at host:port. `caps.cpu` is in cores, `caps.mem` a size (`"512m"`). It starts UP.',
    request: {
      id: 'llm-gpu-01-8000',
      image_id: 'vllm/vllm-openai:latest',
      host: '10.0.0.21',
      port: 8000,
      caps: { cpu: '4', mem: '16g' },
    },
  },
  'DELETE /registry/endpoints/{endpoint_id}': {
    description: 'Deletes an endpoint.',
    params: { endpoint_id: 'llm-gpu-01-8000' },
  },
  'PUT /registry/endpoints/{endpoint_id}/status': {
    description: 'Marks an endpoint UP or DOWN, from `?status=` or the body.',
    params: { endpoint_id: 'llm-gpu-01-8000' },
    request: { status: 'DOWN' },
  },

  // ------------------------------------------------------------------ nodes and clusters
  'GET /api/nodes/': {
    description:
      'Every registered node. `cpu`, `memory`, `gpu` (utilisation), `gpu_memory` and `disk` are percentages (0-100) from the last heartbeat; `temperature` is the hottest GPU in °C; `status` is `online` while heartbeats arrive; `policy` is what the node\'s owner lets containers do there, as its agent reported it (null for an agent that reports none). `driver`: `container` (Docker/Podman) or `process` (no container engine: runs only starts that give a command, no model servers). `cloud_instance`: the rented instance a node is (its id, price per hour in Novita’s units, spot or not), else null.',
    response: {
      nodes: [
        {
          id: 'gpu-01-5b1c7e0a',
          name: 'gpu-01',
          hostname: 'gpu-01.lab',
          ip: '10.0.0.21',
          status: 'online',
          cluster: null,
          cpu: 12.5,
          memory: 12.2,
          gpu: 87,
          gpu_memory: 64.1,
          temperature: 61,
          disk: 22.9,
          last_seen: '2026-01-15T10:00:00Z',
          cordoned: false,
          draining: false,
          policy: {
            allow_host_paths: ['/var/lib/fleet/checkpoints', '/data/datasets'],
            allow_engine_socket: false,
            allow_privileged: false,
            allow_host_network: false,
            allow_host_pid: false,
            allow_capabilities: [],
          },
          driver: 'container',
          cloud_instance: null,
        },
      ],
    },
  },
  'POST /api/nodes/{node_id}/cordon': {
    description:
      'No new placements on the node (service copies, container starts, inference tasks and model servers, training runs); what runs there stays. The node is named by id or name. Operator role.',
    params: { node_id: 'gpu-01' },
  },
  'POST /api/nodes/{node_id}/uncordon': {
    description: 'The node takes new placements again; a drain in progress stops. Operator role.',
    params: { node_id: 'gpu-01' },
  },
  'POST /api/nodes/{node_id}/drain': {
    description:
      'Cordons the node, then moves what runs there: service copies get a replacement elsewhere and are removed here once it is placed, inference tasks go back to the queue (cancelled here), training runs end their attempt here and retry elsewhere. Answers with `moved` and `not_moved` (with the reason); what could not move keeps moving on later reconciles while the node drains. Operator role.',
    params: { node_id: 'gpu-01' },
    response: {
      node_id: 'gpu-01-5b1c7e0a',
      name: 'gpu-01',
      moved: [
        {
          kind: 'service',
          id: '3f9a1c2b7d4e',
          image: 'nginx:latest',
          to_node: 'gpu-02-9d2e4f1a',
          replacement: '8b2d6e0f1a3c',
        },
        { kind: 'task', id: 'task-7c1e9a2b', to_node: null, replacement: null },
      ],
      not_moved: [],
    },
  },
  'DELETE /api/nodes/{node_id}': {
    description:
      'Retires the node: its work moves as by a drain, then its credential, command queue, records and open problems are removed. Its containers stay on the host unless `stop=true`, which removes them first and needs the node online (else 409). Operator role.',
    params: { node_id: 'gpu-01' },
    response: {
      node_id: 'gpu-01-5b1c7e0a',
      name: 'gpu-01',
      moved: [],
      not_moved: [],
      stopped: [],
      left_on_host: ['3f9a1c2b7d4e'],
    },
  },
  'GET /api/nodes/jetpack': {
    description:
      'L4T, JetPack, CUDA and cuDNN versions of the first online Jetson node; 404 when there is none.',
  },
  'GET /api/nodes/{node_id}/jetpack': {
    description:
      'L4T, JetPack, CUDA and cuDNN versions of one node (id or name); 404 when it is not a Jetson.',
    params: { node_id: 'jetson-01' },
  },
  'GET /api/nodes/{node_id}/metrics': {
    description:
      'Stored metric history of one node (id or name), oldest first: `step=60` gives 1-minute points (kept 24 h), `step=300` 5-minute averages (kept 30 days); by default 60 when `since` is within 24 h. `since` defaults to an hour before `until`, `until` to now; a range spans 30 days at most. Percentages, except `gpu_memory_mib` (MiB) and `temperature` (°C); null where the node has no such sensor.',
    params: { node_id: 'jetson-01' },
  },
  'GET /api/whoami': {
    description:
      "The calling key's name, id and role (viewer, operator or admin), so a client offers only what the role may do; with API auth off, an anonymous admin.",
  },
  'GET /api/clusters/': { description: 'Clusters: named groups of nodes, with their members and manager.' },
  'POST /api/clusters/': {
    description:
      'Creates a cluster of existing nodes (ids or names). Its members get the label `cluster=<name>`, which services can be constrained to. The manager defaults to the first node.',
    request: { name: 'lab-a', cluster_type: 'swarm', node_ids: ['gpu-01'] },
  },
  'GET /api/clusters/{cluster_id}/status': {
    description: 'A cluster with each member’s live status and metrics.',
    params: { cluster_id: 'lab-a' },
  },
  'POST /api/clusters/{cluster_id}/nodes/{node_id}': {
    description: 'Adds a node to a cluster; adding a member again changes nothing.',
    params: { cluster_id: 'lab-a', node_id: 'gpu-02' },
  },
  'DELETE /api/clusters/{cluster_id}/nodes/{node_id}': {
    description: 'Removes a node from a cluster; when it was the manager, the next member takes over.',
    params: { cluster_id: 'lab-a', node_id: 'gpu-02' },
  },
  'DELETE /api/clusters/{cluster_id}': {
    description: 'Deletes a cluster; its nodes stay in the fleet and lose the cluster label.',
    params: { cluster_id: 'lab-a' },
  },

  // ------------------------------------------------------------------ swarm
  'GET /api/swarm/status': {
    description:
      'The fleet seen as a Docker swarm: the control plane is the only manager, every node a worker.',
  },
  'GET /api/swarm/nodes': {
    description:
      'Nodes with their effective labels: the agent’s own, with those set by POST …/labels on top.',
    response: [
      {
        id: 'gpu-01-5b1c7e0a',
        hostname: 'gpu-01',
        status: 'ready',
        availability: 'active',
        role: 'worker',
        labels: { rack: 'a', gpu: 'h100' },
      },
    ],
  },
  'GET /api/swarm/join-token': {
    description:
      'Issues a join token (shown once): an agent started with it (`FLEET_JOIN_TOKEN`) registers a new node without the API key. It lasts JOIN_TOKEN_TTL_SECONDS (24 h) or `ttl_seconds` (at least 60), and serves `max_uses` nodes when set. `install_command` is the line to paste on the new node (`name` adds `--name`); `fleet join-command` prints it.',
    response: {
      token: 'FLEETJT-1-…shown once…',
      role: 'worker',
      id: 'jt-0123456789abcdef',
      expires_at: '2026-01-16T10:00:00Z',
      max_uses: 1,
      install_command:
        "curl -fsSL https://api.example.com/install.sh | sudo sh -s -- --token 'FLEETJT-1-…' --name 'gpu-02'",
    },
  },
  'GET /api/swarm/join-tokens': {
    description: 'Unexpired join tokens: id, expiry, uses and limit; never the tokens themselves.',
  },
  'DELETE /api/swarm/join-tokens/{token_id}': {
    description: 'Revokes a join token at once; nodes that joined with it keep their own credentials.',
    params: { token_id: 'jt-0123456789abcdef' },
  },
  'POST /api/swarm/nodes/{node_id}/labels': {
    description:
      'Sets labels on a node (id or name) on top of the agent’s; `null` removes one. Services whose constraints stop holding move to other nodes.',
    params: { node_id: 'gpu-01' },
    request: { labels: { zone: 'lab-a', maintenance: null } },
  },
  'GET /api/swarm/services': {
    description:
      'Services: every image with a desired count, named (POST /api/swarm/services) or not (POST /start/container), with running and wanted copies.',
    response: [
      { id: 'a1b2c3d4e5f6', name: 'web', image: 'nginx:alpine', replicas: 2, running: 2, mode: 'replicated' },
    ],
  },
  'POST /api/swarm/services': {
    description: `Creates a named service: \`replicas\` copies (default 1) of \`image\`, placed where \`constraints\` (\`node.labels.<k>==<v>\`, \`!=\`) hold. \`resources.cpu_limit\` is in cores (\`"0.5"\`), \`resources.memory_limit\` a size (\`"512m"\`, \`"1g"\`), \`resources.gpu\` a GPU count. A \`published_port\` of 0 or none picks a free host port. \`mode: "global"\` runs one copy on each online, uncordoned node meeting the constraints (\`replicas\` is then ignored; nodes that gain or lose eligibility gain or lose their copy). 201 once its copies run; ${WAITS} 409 when the name or image is taken.`,
    request: {
      name: 'web',
      image: 'nginx:alpine',
      replicas: 2,
      ports: [{ target_port: 80 }],
      env: ['NGINX_PORT=80'],
      constraints: ['node.labels.zone==lab-a'],
      resources: { cpu_limit: '0.5', memory_limit: '256m' },
    },
    response: {
      id: 'a1b2c3d4e5f6',
      name: 'web',
      image: 'nginx:alpine',
      replicas: 2,
      running: 2,
      mode: 'replicated',
    },
  },
  'POST /api/swarm/services/{service_id}/scale': {
    description: `Sets the copies of a service (id, name or, for unnamed ones, the id GET /api/swarm/services shows) to \`replicas\` (0 to 100); a global service cannot be scaled (400). ${WAITS}`,
    params: { service_id: 'web' },
    request: { replicas: 3 },
    response: {
      id: 'a1b2c3d4e5f6',
      name: 'web',
      image: 'nginx:alpine',
      replicas: 3,
      running: 3,
      mode: 'replicated',
    },
  },
  'GET /api/swarm/services/{service_id}/logs': {
    description: `The last \`tail\` lines (default 100, at most 10000) of every copy of a service, read from their nodes. ${WAITS}`,
    params: { service_id: 'web' },
  },
  'DELETE /api/swarm/services/{service_id}': {
    description:
      'Deletes a service: its desired count becomes 0, its copies are removed and its name is free again.',
    params: { service_id: 'web' },
  },
  'GET /api/swarm/containers': {
    description: 'Every managed container fleet-wide, with its node and published ports.',
  },
  'POST /api/swarm/containers/{container_id}/restart': {
    description: `Restarts a running copy in place on its node (same container). ${WAITS}`,
    params: { container_id: '3f2a9c1b7d4e' },
  },
  'POST /api/swarm/containers/{container_id}/stop': {
    description: `Stops a copy and lowers its image’s desired count by one. ${WAITS}`,
    params: { container_id: '3f2a9c1b7d4e' },
  },
  'POST /api/swarm/containers/{container_id}/start': {
    description:
      'Answers at once for a running or pending copy. A stopped copy gave up its place: scale its service up instead (409).',
    params: { container_id: '3f2a9c1b7d4e' },
  },
  'GET /api/swarm/containers/{container_id}/logs': {
    description: `The last \`tail\` lines (default 100) of one copy, read from its node. ${WAITS}`,
    params: { container_id: '3f2a9c1b7d4e' },
    response: {
      id: '3f2a9c1b7d4e',
      name: 'container-3f2a9c1b7d4e',
      logs: '10.0.0.5 - - [15/Jan/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 615\n',
    },
  },
  // ------------------------------------------------------------------ vault, AI, build
  'GET /api/vault/': {
    description: 'Stored credentials (registry logins and the like): names and users, never passwords.',
  },
  'POST /api/vault/': {
    description:
      'Saves a credential by name: 201 when new, 200 when it replaces one. The password is stored encrypted (SSM SecureString on AWS) and never returned.',
    request: { name: 'registry-lab', username: 'builder', password: 'change-me' },
  },
  'DELETE /api/vault/{cred_id}': {
    description: 'Deletes a credential and its password.',
    params: { cred_id: 'registry-lab' },
  },
  'POST /api/ai/chat': {
    description:
      'Asks the assistant (Bedrock) a question; with `context.node_id` the answer is grounded in that node’s metrics and containers, else in the fleet’s. 503 while AI_ENABLED is off.',
    request: { message: 'Why is gpu-01 hot?', context: { node_id: 'gpu-01' } },
  },
  'POST /api/ai/troubleshoot': {
    description:
      'Diagnoses a node from its metrics, containers and recent failures, with the issue described in `issue`. 503 while AI_ENABLED is off.',
    request: { node_id: 'gpu-01', issue: 'Training runs fail with CUDA out of memory' },
  },
  'GET /api/build/registry/images': {
    description:
      'Repositories and tags of the configured registry (REGISTRY_URL); 503 when none is configured.',
  },
  'POST /api/build/build': {
    description: `A node’s agent (started with --build-root) builds the folder of \`dockerfile_path\` (relative to its build root), tags it \`<registry>/<image_name>:<tag>\` (tag default \`latest\`) and pushes it. ${WAITS}`,
    request: {
      image_name: 'trainer',
      tag: 'v1',
      dockerfile_path: 'trainer',
      build_args: { BASE: 'python:3.12-slim' },
    },
  },
  'POST /api/build/deploy': {
    description: `Creates the named service of an image with \`replicas\` copies (default 1), or scales it when it exists; \`cluster\` adds the constraint \`node.labels.cluster==<cluster>\`. ${WAITS}`,
    request: { service_name: 'trainer-api', image: 'registry.lab:5000/trainer:v1', replicas: 1 },
  },
  'POST /api/build/build-and-deploy': {
    description: `Builds and pushes as POST /api/build/build, then deploys the pushed image as POST /api/build/deploy. A failed build deploys nothing. ${WAITS}`,
    request: {
      image_name: 'trainer',
      tag: 'v1',
      dockerfile_path: 'trainer',
      service_name: 'trainer-api',
      replicas: 1,
    },
  },
  'GET /api/network/scan': {
    description: `A node’s agent probes every address of \`subnet\` (/22 at most) on the listed TCP ports. The stored scan is answered while younger than NETWORK_SCAN_CACHE_SECONDS unless \`refresh=true\`. Past COMMAND_WAIT_MS it answers 202: follow GET /api/network/scan-status.`,
    accepted: {
      status: 'scanning',
      command_id: 'cmd-7f3c2a9e1b4d',
      subnet: '10.0.0.0/24',
      node_id: 'gpu-01-5b1c7e0a',
      started_at: '2026-01-15T10:00:00Z',
      follow: 'GET /api/network/scan-status',
    },
  },
  'GET /api/network/scan-status': {
    description: 'The latest scan: idle (none yet), scanning, completed or failed.',
  },

  // ------------------------------------------------------------------ onboarding over SSH (install queue)
  'POST /api/install-queue/queue': {
    description:
      'Queues an install of the agent on `host` over SSH with a vault credential (id or name). A node’s agent on the host’s network runs it (`node_id`, else one with an address in the host’s /24), at most INSTALL_CONCURRENCY_PER_NODE at once; follow the job with GET /api/install-queue/queue/{job_id}. Admin only.',
    request: { host: '192.168.1.182', credential_id: 'jetson-default', cluster: 'vision' },
  },
  'GET /api/install-queue/queue': {
    description:
      'Every install job, oldest first, with its state, steps and the count per state. Admin only.',
  },
  'GET /api/install-queue/queue/{job_id}': {
    description:
      'One install job: queued, connecting, installing, joined (with the new node) or failed with the step (connect, check, upload, start, register) and the reason. Admin only.',
    params: { job_id: '3f1c2a9e-1b4d-4c5e-9f7a-2b8c6d0e1f3a' },
  },
  'POST /api/install-queue/queue/{job_id}/retry': {
    description:
      'Queues a failed job again (409 for any other state, or a join-remote job whose inline login is gone). Admin only.',
    params: { job_id: '3f1c2a9e-1b4d-4c5e-9f7a-2b8c6d0e1f3a' },
  },
  'POST /api/install-queue/queue/retry-failed': {
    description:
      'Queues every failed job again; those that cannot be retried are listed with the reason. Admin only.',
  },
  'DELETE /api/install-queue/queue': {
    description: 'Deletes the finished (joined and failed) jobs; queued and running ones stay. Admin only.',
  },
  'DELETE /api/install-queue/host-keys/{host}': {
    description:
      'Forgets the SSH host key trusted on first use for `host` (`port`, default 22), after a legitimate change such as a reinstall: until then an install that meets another key fails with "host key changed". Admin only.',
    params: { host: '192.168.1.182' },
  },
  'POST /api/network/join': {
    description:
      'Joins a host to the fleet: the Install Queue’s job for `ip` with a vault credential. Admin only.',
    request: { ip: '192.168.1.182', credential_id: 'jetson-default' },
  },
  'POST /api/network/auto-join-all': {
    description:
      'Queues an install for every host of the last scan that looks like a Jetson or a GPU server, is not in the fleet and has SSH open; the others are listed with the reason. The credential defaults to AUTO_JOIN_CREDENTIAL (400 when neither is given). Admin only.',
    request: { credential_id: 'jetson-default', cluster: 'vision' },
  },
  'POST /api/swarm/join-remote': {
    description:
      'Installs the agent on `node_ip` over SSH with a login given inline (kept as a SecureString while the job runs, then deleted). Answers once the node registered; past COMMAND_WAIT_MS 202 with the job to follow. A refused login is 401, an unreachable host 504, a later step 502. Admin only.',
    request: { node_ip: '192.168.1.182', username: 'nvidia', password: 'nvidia', cluster: 'vision' },
    accepted: {
      status: 'installing',
      message:
        'Node 192.168.1.182 is being installed; follow GET /api/install-queue/queue/3f1c2a9e-1b4d-4c5e-9f7a-2b8c6d0e1f3a',
      job_id: '3f1c2a9e-1b4d-4c5e-9f7a-2b8c6d0e1f3a',
      state: 'installing',
    },
  },
  'POST /agent/install/{commandId}/credential': {
    description:
      'Agent only: the SSH login and a one-use join token of the host.install this node runs, while it runs; 404 for any other node or command.',
    params: { commandId: 'cmd-7f3c2a9e1b4d' },
  },
  'POST /agent/install/{commandId}/steps': {
    description: 'Agent only: the steps of a running host.install so far.',
    params: { commandId: 'cmd-7f3c2a9e1b4d' },
    request: {
      steps: [
        {
          name: 'connect',
          status: 'ok',
          detail: 'host key trusted on first use',
          at: '2026-01-15T10:00:00Z',
        },
      ],
    },
  },

  // ------------------------------------------------------------------ maintenance, ssh, keys
  'GET /api/maintenance/status': {
    description:
      'Whether the daily maintenance run (06:00 UTC) is on, whether one runs now, the last and next run, open problems.',
  },
  'GET /api/maintenance/problems': {
    description:
      'Problems found now from the nodes’ records, each with a quick fix where one exists: node offline, disk ≥ 80 % (≥ 90 % critical), memory ≥ 90 %, GPU ≥ 85 °C, managed containers down or in backoff.',
  },
  'POST /api/maintenance/start': { description: 'Turns the daily maintenance run on (admin).' },
  'POST /api/maintenance/stop': {
    description: 'Turns the daily maintenance run off (admin); a run in progress finishes.',
  },
  'POST /api/maintenance/run-now': {
    description: `Detects problems and applies the automatic fixes now. ${WAITS} 409 while a run is in progress.`,
  },
  'POST /api/maintenance/quick-fix': {
    description: `One fix on one node (id or name): \`docker_cleanup\` removes stopped fleet containers and dangling images; \`restart_exited\` replaces the orchestrator’s exited copies. ${WAITS}`,
    request: { node_id: 'gpu-01', fix_type: 'docker_cleanup' },
  },
  'POST /api/maintenance/disk/audit': {
    description: `Filesystem use (bytes and %) of the engine’s root and the agent’s state folder, and the engine’s own disk use, of one node or, without \`node_id\`, every online node. ${WAITS}`,
    request: { node_id: 'gpu-01' },
  },
  'POST /api/ssh/exec-node': {
    description: `Runs \`command\` with /bin/sh -c on a node (id or name) through its agent, which must run with --allow-exec (else 403). \`timeout\` in seconds: default 30, at most 120 (504 past it). At most 64 KiB of stdout and of stderr come back, the end kept. Admin only. ${WAITS}`,
    request: {
      node_id: 'gpu-01',
      command: 'nvidia-smi --query-gpu=name,temperature.gpu --format=csv',
      timeout: 30,
    },
    response: {
      node_id: 'gpu-01-5b1c7e0a',
      host: '10.0.0.21',
      stdout: 'name, temperature.gpu\nNVIDIA H100 80GB HBM3, 41\n',
      stderr: '',
      exit_status: 0,
    },
  },
  'POST /api/keys': {
    description:
      'Issues an API key with a role: `viewer` (reads), `operator` (also starts, stops, jobs, tasks), `admin` (also keys, vault, exec, join tokens). The key is in this answer only; only its SHA-256 is kept. `expires_at` is optional (ISO 8601).',
    request: { name: 'ci', role: 'operator', expires_at: '2030-01-01T00:00:00Z' },
  },
  'GET /api/keys': {
    description:
      'API keys, oldest first: id, name, role, dates; never the keys. The bootstrap key is not listed.',
  },
  'DELETE /api/keys/{key_id}': {
    description: 'Revokes an API key: the next call with it is a 401.',
    params: { key_id: '0123456789abcdef' },
  },
  'GET /api/audit': {
    description:
      'The audit log, newest first: every state-changing call (refused ones too) with who, what, targets, outcome and request id; kept 90 days. Page with `cursor`.',
  },

  // ------------------------------------------------------------------ cluster manager (inference)
  'GET /cluster/status': {
    description:
      'Workers online and busy, the queue by priority, and GPU utilisation (%) and memory (MB) fleet-wide.',
  },
  'GET /workers': {
    description:
      'Workers (the fleet’s GPU nodes) with their status, GPU and loaded models; filter by status and GPU type.',
  },
  'GET /workers/{worker_id}': {
    description:
      'One worker: GPU, system, loaded models, today’s task counts and metrics from its task records.',
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
    description: 'Tasks, newest first; filter by status and worker, page with limit and offset.',
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
      'The model catalogue: built-in models and declared ones, with server image, port and GPU memory (MB).',
  },
  'PUT /models/catalog/{model_id}': {
    description:
      'Declares a model: its server image, API port and protocol, GPU memory it needs in MB, and for image models the size and step limits. `loadSeconds` (default 45) is the expected load time the scheduler weighs.',
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
      'Task outcomes and throughput over `timeframe` (1h, 24h, 7d) from task records; GPU (%) and memory from per-minute fleet samples.',
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
    description: 'Image jobs, newest first; filter by status, page with limit and offset.',
  },
  'POST /api/vision/jobs/{job_id}/cancel': {
    description: 'Cancels an image job; a running one gets `task.cancel` on its node.',
    params: { job_id: 'task-20260115-abc123' },
  },
  'POST /api/vision/jobs/stop-all': { description: 'Cancels every queued and processing image job.' },
  'GET /api/vision/queue': {
    description:
      'The shared queue in scheduling order (priority with aging, then first in first out) and what is processing.',
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
      runs: [
        {
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
        },
      ],
      total: 1,
      page: 1,
      page_size: 20,
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
      'One instance: status, port mappings, connection details and cost per hour. A `join_fleet` instance also shows `pricePerHour`, `spot`, `node` (the node it registered as, null until then), `burstFor` (the training job a burst rented it for) and `terminatedAt`.',
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

/** The key of an operation in OPERATION_DOCS. */
export const docKey = (method: string, path: string) => `${method.toUpperCase()} ${path}`;

// ------------------------------------------------------------------ response examples (console, issue 13)
// The operations whose entries above carry no `response` get theirs from these tables.
const RESPONSE_EXAMPLES = {
  ...FLEET_RESPONSE_EXAMPLES,
  ...OPS_RESPONSE_EXAMPLES,
  ...WORKLOAD_RESPONSE_EXAMPLES,
  ...JOB_RESPONSE_EXAMPLES,
};
for (const [key, response] of Object.entries(RESPONSE_EXAMPLES)) {
  const entry = OPERATION_DOCS[key];
  if (entry && entry.response === undefined) entry.response = response;
}
