/**
 * Response examples: vault, AI, builds, network, installs,
 * maintenance and access operations. Merged into OPERATION_DOCS where an entry has no `response`
 * of its own; each is held to its route's response schema by test/unit/core/openapi.test.ts.
 */
const T0 = '2026-01-15T10:00:00Z';
const T1 = '2026-01-15T10:00:42Z';

const installJob = {
  job_id: 'inst-5d0c2e7a',
  host: '10.0.0.34',
  port: 22,
  cluster: 'lab-a',
  node_name: 'jetson-03',
  credential_id: 'cred-1a2b3c4d',
  installer_node_id: 'gpu-01-7c1e9a2b',
  state: 'joined',
  step: null,
  error: null,
  steps: [
    { name: 'connect', status: 'ok', detail: 'SSH as ubuntu, host key trusted on first use', at: T0 },
    { name: 'check', status: 'ok', detail: 'aarch64, Ubuntu 22.04, podman 4.9', at: T0 },
    { name: 'upload', status: 'ok', detail: 'agent.mjs and node-aarch64.tar.gz', at: T0 },
    { name: 'start', status: 'ok', detail: 'systemd unit fleet-agent started', at: T1 },
    { name: 'register', status: 'ok', detail: 'registered as jetson-03', at: T1 },
  ],
  facts: {
    arch: 'aarch64',
    os: 'Ubuntu 22.04.4 LTS',
    hostname: 'jetson-03',
    engine: 'podman',
    sudo: 'passwordless',
  },
  joined_node_id: 'jetson-03-4e8b1f0c',
  joined_node_name: 'jetson-03',
  attempts: 1,
  created_at: T0,
  updated_at: T1,
  started_at: T0,
  finished_at: T1,
};
const problem = {
  id: 'prob-disk-gpu-01',
  node_id: 'gpu-01-7c1e9a2b',
  type: 'disk_space',
  severity: 'warning',
  message: 'Disk 91% full on gpu-01',
  detected_at: T0,
  auto_fixable: true,
};
const maintenance = {
  enabled: true,
  running: false,
  last_run: T0,
  next_run: '2026-01-16T03:00:00Z',
  problems_count: 1,
};
const apiKey = {
  id: 'key-9b3e1d7a',
  name: 'ci deploys',
  role: 'operator',
  created_at: T0,
  expires_at: '2026-04-15T10:00:00Z',
  created_by: 'admin',
};
const build = {
  image: 'registry.lab:5000/trainer:v1',
  image_id: 'sha256:4f1c0e3b9a7d2c6e8f0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e',
  node_id: 'gpu-01-7c1e9a2b',
  pushed: true,
  digest: 'sha256:9d2f7c1e5b3a8d0f6c4e2a1b9d7f5c3e1a0b8d6f4c2e0a9b7d5f3c1e8a6b4d2f',
  log_tail:
    'STEP 3/4: RUN pip install -r requirements.txt\nSuccessfully installed torch-2.3.1\nCOMMIT registry.lab:5000/trainer:v1\n',
  command_id: 'cmd-7f3c2a9e1b4d',
};
const deploy = {
  id: 'svc-trainer-api',
  name: 'trainer-api',
  image: 'registry.lab:5000/trainer:v1',
  replicas: 1,
  running: 1,
  action: 'created',
  cluster: null,
  constraints: [],
};

export const OPS_RESPONSE_EXAMPLES: Record<string, unknown> = {
  'GET /api/vault/': [{ id: 'cred-1a2b3c4d', name: 'lab ssh', username: 'ubuntu', created_at: T0 }],
  'POST /api/vault/': { id: 'cred-1a2b3c4d', name: 'lab ssh', username: 'ubuntu', created_at: T0 },
  'DELETE /api/vault/{cred_id}': { status: 'deleted', id: 'cred-1a2b3c4d', name: 'lab ssh' },
  'POST /api/ai/chat': {
    response: 'gpu-02 has been offline since 09:41; its two web copies were moved to gpu-01.',
    suggestions: [
      'Check the agent on gpu-02: systemctl status fleet-agent',
      'Open the Fleet page for gpu-02',
    ],
  },
  'POST /api/ai/troubleshoot': {
    response: 'GPU 0 on gpu-01 runs at 89 °C under full load; the fans report 100%.',
    suggestions: ['Lower the power limit: nvidia-smi -pl 250', 'Move one training job to gpu-02'],
    node_id: 'gpu-01-7c1e9a2b',
  },
  'GET /api/build/registry/images': {
    images: [{ name: 'trainer', tags: ['v1', 'latest'], full_image: 'registry.lab:5000/trainer' }],
    registry: 'registry.lab:5000',
  },
  'POST /api/build/build': build,
  'POST /api/build/deploy': deploy,
  'POST /api/build/build-and-deploy': { build, deploy },
  'GET /api/network/scan': {
    devices: [
      {
        ip: '10.0.0.34',
        hostname: 'jetson-03',
        mac: '48:b0:2d:11:22:33',
        vendor: 'NVIDIA',
        is_jetson: true,
        in_swarm: false,
        ports: [22],
      },
      {
        ip: '10.0.0.21',
        hostname: 'gpu-01',
        mac: '3c:ec:ef:44:55:66',
        vendor: 'Super Micro',
        is_jetson: false,
        in_swarm: true,
        ports: [22, 8080],
      },
    ],
    scan_time: T1,
  },
  'GET /api/network/scan-status': {
    status: 'completed',
    subnet: '10.0.0.0/24',
    node_id: 'gpu-01-7c1e9a2b',
    started_at: T0,
    completed_at: T1,
    devices_found: 2,
    error: null,
  },
  'POST /api/install-queue/queue': {
    ...installJob,
    state: 'queued',
    steps: [],
    facts: null,
    joined_node_id: null,
    joined_node_name: null,
    attempts: 0,
    updated_at: T0,
    started_at: null,
    finished_at: null,
  },
  'GET /api/install-queue/queue': {
    jobs: [installJob],
    total: 1,
    counts: { queued: 0, connecting: 0, installing: 0, joined: 1, failed: 0 },
    concurrency_per_node: 2,
  },
  'GET /api/install-queue/queue/{job_id}': installJob,
  'POST /api/install-queue/queue/{job_id}/retry': {
    ...installJob,
    state: 'queued',
    error: null,
    joined_node_id: null,
    joined_node_name: null,
    attempts: 2,
    finished_at: null,
  },
  'POST /api/install-queue/queue/retry-failed': {
    retried: [
      {
        ...installJob,
        state: 'queued',
        joined_node_id: null,
        joined_node_name: null,
        attempts: 2,
        finished_at: null,
      },
    ],
    skipped: [{ job_id: 'inst-8a3f6b1d', host: '10.0.0.40', reason: 'its vault credential was deleted' }],
  },
  'DELETE /api/install-queue/queue': {
    status: 'cleared',
    cleared: 3,
    job_ids: ['inst-5d0c2e7a', 'inst-8a3f6b1d', 'inst-2c9e4a7f'],
    remaining: 1,
  },
  'DELETE /api/install-queue/host-keys/{host}': { status: 'deleted', host: '10.0.0.34', port: 22 },
  'POST /api/network/join': {
    ...installJob,
    state: 'queued',
    steps: [],
    facts: null,
    joined_node_id: null,
    joined_node_name: null,
    attempts: 0,
    started_at: null,
    finished_at: null,
  },
  'POST /api/network/auto-join-all': {
    subnet: '10.0.0.0/24',
    queued: [{ ip: '10.0.0.34', job_id: 'inst-5d0c2e7a', state: 'queued' }],
    skipped: [{ ip: '10.0.0.21', reason: 'already in the fleet as gpu-01' }],
  },
  'POST /api/swarm/join-remote': {
    status: 'success',
    message: 'jetson-03 joined the fleet',
    node_id: 'jetson-03-4e8b1f0c',
    cluster: 'lab-a',
    job_id: 'inst-5d0c2e7a',
  },
  'GET /api/maintenance/status': maintenance,
  'GET /api/maintenance/problems': { problems: [problem] },
  'POST /api/maintenance/start': maintenance,
  'POST /api/maintenance/stop': { ...maintenance, enabled: false, next_run: null },
  'POST /api/maintenance/run-now': {
    run_id: 'run-20260115-100000',
    trigger: 'manual',
    started_at: T0,
    finished_at: T1,
    problems: [problem],
    fixes: [{ node_id: 'gpu-01-7c1e9a2b', fix_type: 'docker_cleanup', status: 'completed' }],
  },
  'POST /api/maintenance/quick-fix': {
    node_id: 'gpu-01-7c1e9a2b',
    fix_type: 'restart_exited',
    status: 'completed',
  },
  'POST /api/maintenance/disk/audit': {
    nodes: [
      {
        node_id: 'gpu-01-7c1e9a2b',
        name: 'gpu-01',
        command_id: 'cmd-2d8f4b6a1c3e',
        status: 'completed',
        filesystems: [
          {
            role: 'engine',
            path: '/var/lib/containers',
            total_bytes: 1000204886016,
            used_bytes: 912186769408,
            free_bytes: 88018116608,
            used_percent: 91.2,
          },
        ],
        engine: { name: 'podman' },
      },
    ],
    next_cursor: null,
  },
  'GET /api/whoami': { name: 'ci deploys', key_id: 'key-9b3e1d7a', role: 'operator', auth: true },
  'POST /api/keys': { ...apiKey, key: 'fk_live_9b3e1d7a.x7Qm2Vp4Rt8Ws1Yz3Ab5Cd' },
  'GET /api/keys': { keys: [apiKey] },
  'DELETE /api/keys/{key_id}': apiKey,
  'GET /api/audit': {
    entries: [
      {
        at: T0,
        request_id: 'req-4c2e8a1f',
        actor: { type: 'key' },
        method: 'POST',
        route: 'POST /start/container',
        path: '/start/container',
        targets: { image: 'nginx:alpine' },
        status: 200,
        outcome: 'ok',
      },
    ],
    cursor: null,
  },
};
