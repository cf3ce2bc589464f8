/** /openapi.json's descriptions and examples for containers (orchestrator), nodes and clusters (see ../operation-docs.ts). */
import { WAITS, RESOURCES, type OperationDoc } from './shared.js';

export const WORKLOAD_DOCS: Record<string, OperationDoc> = {
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
      'Every image the orchestrator knows, with its desired count (what it keeps running), the running copies and the resources each copy gets; `rollout`, once its limits were changed: when that change began, how many copies have the new limits, and when it reached the last copy (`null` while under way).',
    response: {
      images: [
        {
          image: 'nginx:alpine',
          desired_count: 2,
          current_running: 2,
          total_instances: 2,
          resources: { cpu_limit: '0.5', memory_limit: '512m' },
          rollout: {
            started_at: '2026-01-15T10:00:00.000Z',
            updated: 2,
            finished_at: '2026-01-15T10:00:00.000Z',
          },
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
      'Managed copies with their image, node, status (`pending`, `running`, `exited`, `backoff` with its reason and next try), published ports and limits: a page at a time (`limit`, default 1,000, and `cursor` from `next_cursor`; a small fleet is one page), or every copy of one node with `node_id`.',
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
      next_cursor: null,
    },
  },
  'GET /containers/instances/{instanceId}/health': {
    description:
      'CPU and memory use of one copy in % of its limits: `healthy` under 75 %, `warning` 75-90 %, `critical` above 90 %, or `stopped`.',
    params: { instanceId: '3f2a9c1b7d4e' },
  },
  'GET /containers/{imageId}/instances': {
    description:
      'The copies of one image (URL-encode the reference: `nginx%3Aalpine`), a page at a time: `limit` (default 1,000; a small image is one page) and `cursor` from `next_cursor` (a global service has a copy on every eligible node).',
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
      next_cursor: null,
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
    description: `New limits for the image (copies started from then on get them), then for its running copies (a copy still starting once it runs), updated in place where the engine allows it: this request updates a page of 50 copies by id and answers for those (\`updated\`); the rest (\`pending\`, about how many) are updated in the background a page at a time, their progress in \`GET /images\` (\`rollout\`) and each copy's limits in \`GET /containers/{imageId}/instances\`. At least one of cpu_limit, memory_limit, disk_limit. ${RESOURCES} ${WAITS}`,
    params: { imageId: 'nginx:alpine' },
    request: { cpu_limit: '1', memory_limit: '1g' },
    response: { updated: ['3f2a9c1b7d4e'], pending: 0 },
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
      'Service endpoints: one per published port of each running copy (written by the control plane), and those registered by hand; a page at a time by image and id (`limit`, default 1,000, and `cursor` from `next_cursor`; a global service has one on every eligible node).',
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
      "Registered nodes by name, a page at a time: `limit` (1-1,000, default 1,000, so a fleet of up to 1,000 nodes comes back whole) and `cursor` (a page's `next_cursor`; null on the last page); `name_prefix` (beyond the documents) lists only nodes whose name begins with it, a node picker's search. Each node carries its `labels` (beyond the documents: the agent's, with those set by `POST /api/swarm/nodes/{node_id}/labels` on top). A page reads its own nodes' records, never the whole fleet. `cpu`, `memory`, `gpu` (utilisation), `gpu_memory` and `disk` are percentages (0-100) from the last heartbeat; `temperature` is the hottest GPU in °C; `status` is `online` while heartbeats arrive; `policy` is what the node's owner lets containers do there, as its agent reported it (null for an agent that reports none). `driver`: `container` (Docker/Podman) or `process` (no container engine: runs only starts that give a command; model servers only on a model burst’s rented node). `cloud_instance`: the rented instance a node is (its id, price per hour in Novita’s units, spot or not), else null.",
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
            allow_exec: false,
          },
          driver: 'container',
          cloud_instance: null,
          labels: { zone: 'rack-1', nvidia: 'true' },
        },
      ],
      next_cursor: null,
    },
  },
  'GET /api/nodes/{node_id}': {
    description:
      "One node by id or name, with the listing's fields (`GET /api/nodes/`) and its `labels` (the agent's, with those set by `POST /api/swarm/nodes/{node_id}/labels` on top). It reads that node's records only: the console's node page opens with it. Not in the documents, beside the listing as a client expects; 404 for an unknown node.",
    params: { node_id: 'gpu-01' },
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
      'L4T, JetPack, CUDA and cuDNN versions of the first online Jetson node by name (among the first 64 Jetsons; else the first Jetson); 404 when there is none.',
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
};
