/** /openapi.json's descriptions and examples for Fleet Commander: swarm, vault, AI, builds, the install queue, maintenance, SSH and keys (see ../operation-docs.ts). */
import { WAITS, type OperationDoc } from './shared.js';

export const COMMANDER_DOCS: Record<string, OperationDoc> = {
  // ------------------------------------------------------------------ swarm
  'GET /api/swarm/status': {
    description:
      'The fleet seen as a Docker swarm: the control plane is the only manager, every node a worker.',
  },
  'GET /api/swarm/nodes': {
    description:
      'Nodes with their effective labels: the agent’s own, with those set by POST …/labels on top. By name, a page at a time: `limit` (1-1,000, default 1,000) and `cursor`; while more follow, the `X-Next-Cursor` response header holds the next page’s cursor.',
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
    description: `The last \`tail\` lines (default 100, at most 10000) of the running or exited copies of a service, read from their nodes, a page of copies at a time: \`limit\` (1-50, default 50: a small service in one page; copies in other states are passed over, so a page may list fewer) and \`cursor\` (a page's \`next_cursor\`, \`null\` on the last). ${WAITS} A 202 also lists the page's \`containers\` and its \`next_cursor\`.`,
    params: { service_id: 'web' },
  },
  'DELETE /api/swarm/services/{service_id}': {
    description:
      'Deletes a service: its desired count becomes 0, its copies are removed and its name is free again.',
    params: { service_id: 'web' },
  },
  'GET /api/swarm/containers': {
    description:
      'Managed containers fleet-wide with their node and published ports, a page at a time (`limit`, default 1,000, and `cursor` from `next_cursor`; a small fleet is one page).',
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
    description: `Filesystem use (bytes and %) of the engine’s root and the agent’s state folder, and the engine’s own disk use, of one node or, without \`node_id\`, the online nodes of a page of the fleet by name (\`limit\`, default 1,000: a small fleet in one page; \`cursor\`: a page's \`next_cursor\`). ${WAITS}`,
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
};
