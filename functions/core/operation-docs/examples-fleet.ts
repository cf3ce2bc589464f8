/**
 * Response examples: system, agent, containers, nodes,
 * clusters and swarm operations.
 * Merged into OPERATION_DOCS where an entry has no `response` of its own; each is held to its
 * route's response schema by test/unit/core/openapi.test.ts.
 */
const T0 = '2026-01-15T10:00:00Z';
const T1 = '2026-01-15T10:00:42Z';

const node = {
  id: 'gpu-01-7c1e9a2b',
  name: 'gpu-01',
  hostname: 'gpu-01.lab',
  ip: '10.0.0.21',
  status: 'online',
  cluster: 'lab-a',
  cpu: 23.5,
  memory: 41.2,
  gpu: 87,
  gpu_memory: 62.5,
  temperature: 71,
  disk: 38.4,
  last_seen: T1,
};
const cluster = {
  id: 'lab-a',
  name: 'lab-a',
  cluster_type: 'swarm',
  node_ids: ['gpu-01', 'gpu-02'],
  manager_node_id: 'gpu-01',
  status: 'active',
  created_at: T0,
};
const endpoint = {
  id: 'ep-3f2a9c1b',
  image_id: 'nginx:alpine',
  host: '10.0.0.21',
  port: 32768,
  caps: { cpu: '0.5', mem: '512m' },
  status: 'UP',
  last_heartbeat: T1,
};
export const FLEET_RESPONSE_EXAMPLES: Record<string, unknown> = {
  'GET /openapi.json': {
    openapi: '3.1.0',
    info: { title: 'GPU fleet control plane', version: '0.1.0' },
    paths: {},
  },
  'POST /agent/register': {
    nodeId: 'gpu-01-7c1e9a2b',
    token: 'nt_3q9X2b7LkP0vR8sT1uW4yZ6aC5dE',
    channel: { type: 'http' },
    heartbeatIntervalSeconds: 15,
  },
  'POST /agent/token/rotate': { nodeId: 'gpu-01-7c1e9a2b', token: 'nt_8mN2pQ4rS6tU0vW1xY3zA5bC7dE' },
  'POST /agent/heartbeat': {
    ok: true,
    nodeId: 'gpu-01-7c1e9a2b',
    status: 'online',
    heartbeatIntervalSeconds: 15,
  },
  'POST /agent/stopping': { ok: true, nodeId: 'gpu-01-7c1e9a2b', status: 'offline' },
  'POST /agent/credentials': {
    accessKeyId: 'ASIAEXAMPLEKEYID0001',
    secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    sessionToken: 'IQoJb3JpZ2luX2VjEXAMPLE//session-token',
    expiration: '2026-01-15T11:00:00Z',
    region: 'eu-west-1',
    queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/fleet-node-gpu-01-7c1e9a2b',
  },
  'GET /agent/commands': {
    messages: [
      {
        receiptHandle: 'rh-0b6f2d4c',
        body: '{"commandId":"cmd-7f3c2a9e1b4d","nodeId":"gpu-01-7c1e9a2b","command":{"type":"container.stop","instanceId":"3f2a9c1b7d4e","timeoutSeconds":10}}',
      },
    ],
  },
  'POST /agent/commands/ack': { ok: true, acknowledged: 1 },
  'POST /agent/commands/{commandId}/result': {
    command_id: 'cmd-7f3c2a9e1b4d',
    node_id: 'gpu-01-7c1e9a2b',
    type: 'container.stop',
    status: 'succeeded',
    instance_id: '3f2a9c1b7d4e',
    issued_at: T0,
    completed_at: T1,
    output: { instanceId: '3f2a9c1b7d4e', containerId: '9c4e1f2a8b3d', stopped: true },
    error: null,
    duplicate: false,
  },
  'POST /agent/events': { ok: true, accepted: 2 },
  'POST /agent/install/{commandId}/credential': {
    username: 'ubuntu',
    password: 'example-password',
    joinToken: 'jt_4kP9sV2xB7nM1qR6',
  },
  'POST /agent/install/{commandId}/steps': { ok: true },
  'GET /health/detailed': {
    status: 'OK',
    timestamp: T0,
    components: {
      docker: { status: 'OK', message: '3 of 3 nodes online' },
      database: { status: 'OK', message: 'table reachable' },
      container_manager: { status: 'OK', message: '12 containers managed' },
      system_resources: { status: 'OK', cpu_usage: '23.5%', memory_usage: '41.2%' },
    },
  },
  'GET /test/integration': {
    timestamp: T0,
    tests: {
      docker_connection: { status: 'PASS', message: '3 nodes report their engine' },
      container_listing: { status: 'PASS', message: '12 containers listed' },
      database: { status: 'PASS', message: 'read and write succeeded' },
      system_resources: { status: 'PASS', message: 'metrics from 3 nodes' },
      health_monitoring: { status: 'PASS', message: 'heartbeats within 30 s' },
    },
    overall_status: 'PASSED',
  },
  'GET /system/resources': {
    system: {
      cpu: { total_cores: 64, current_usage_percent: 23.5, available_cores: 48.96 },
      memory: { total_gb: 512, available_gb: 301.1, usage_percent: 41.2 },
      disk: { total_gb: 3840, free_gb: 2365.4, usage_percent: 38.4 },
    },
    docker: { containers_running: 12, total_cpu_usage: 310.5, total_memory_usage_mb: 48213 },
  },
  'GET /containers/instances/{instanceId}/health': {
    cpu_usage: 12.4,
    memory_usage: 38.1,
    disk_usage: 22,
    status: 'healthy',
    errors: null,
  },
  'DELETE /containers/{idOrName}': {
    deleted: true,
    container_id: '3f2a9c1b7d4e',
    name: 'container-3f2a9c1b7d4e',
  },
  'GET /registry/endpoints': { endpoints: [endpoint] },
  'POST /registry/endpoints': endpoint,
  'DELETE /registry/endpoints/{endpoint_id}': { ok: true },
  'PUT /registry/endpoints/{endpoint_id}/status': { ...endpoint, status: 'DOWN' },
  'GET /api/nodes/jetpack': {
    jetpack_version: '5.1.2',
    l4t_version: '35.4.1',
    cuda_version: '11.4',
    cudnn_version: '8.6',
    node_id: 'jetson-01-2b7d4f9e',
  },
  'POST /api/nodes/{node_id}/cordon': { ...node, cordoned: true, draining: false, policy: null },
  'POST /api/nodes/{node_id}/uncordon': { ...node, cordoned: false, draining: false, policy: null },
  'GET /api/nodes/{node_id}/jetpack': {
    jetpack_version: '6.0',
    l4t_version: '36.3.0',
    cuda_version: '12.2',
    cudnn_version: '8.9',
    node_id: 'jetson-01-2b7d4f9e',
  },
  'GET /api/nodes/{node_id}/metrics': {
    node_id: 'gpu-01-7c1e9a2b',
    step: 60,
    since: '2026-01-15T09:00:00Z',
    until: T0,
    fields: ['cpu', 'memory', 'gpu', 'gpu_memory', 'gpu_memory_mib', 'temperature', 'disk'],
    points: [
      {
        t: '2026-01-15T09:58:00Z',
        cpu: 22.1,
        memory: 40.8,
        gpu: 85,
        gpu_memory: 61.9,
        gpu_memory_mib: 50708,
        temperature: 70,
        disk: 38.4,
      },
      {
        t: '2026-01-15T09:59:00Z',
        cpu: 23.5,
        memory: 41.2,
        gpu: 87,
        gpu_memory: 62.5,
        gpu_memory_mib: 51200,
        temperature: 71,
        disk: 38.4,
      },
    ],
  },
  'GET /api/clusters/': [cluster],
  'POST /api/clusters/': { ...cluster, node_ids: ['gpu-01'] },
  'GET /api/clusters/{cluster_id}/status': {
    cluster,
    nodes: [
      { node_id: 'gpu-01', status: 'online', cpu: 23.5, memory: 41.2, gpu: 87, is_manager: true },
      { node_id: 'gpu-02', status: 'online', cpu: 8.1, memory: 17.9, gpu: 0, is_manager: false },
    ],
    online_count: 2,
    total_count: 2,
  },
  'POST /api/clusters/{cluster_id}/nodes/{node_id}': cluster,
  'DELETE /api/clusters/{cluster_id}/nodes/{node_id}': { ...cluster, node_ids: ['gpu-01'] },
  'DELETE /api/clusters/{cluster_id}': {
    status: 'deleted',
    id: 'lab-a',
    name: 'lab-a',
    swarm_cleanup: 'label cluster=lab-a removed from 2 nodes',
  },
  'GET /api/swarm/status': {
    is_manager: true,
    swarm_id: 'fleet-control-plane',
    manager_addr: null,
    nodes_count: 3,
    managers_count: 1,
    workers_count: 3,
  },
  'GET /api/swarm/join-tokens': {
    tokens: [
      {
        id: 'jt-6a1d3f8b',
        role: 'worker',
        issued_at: T0,
        expires_at: '2026-01-16T10:00:00Z',
        uses: 1,
        max_uses: 5,
      },
    ],
  },
  'DELETE /api/swarm/join-tokens/{token_id}': {
    id: 'jt-6a1d3f8b',
    role: 'worker',
    issued_at: T0,
    expires_at: '2026-01-16T10:00:00Z',
    uses: 1,
    max_uses: 5,
  },
  'POST /api/swarm/nodes/{node_id}/labels': {
    id: 'gpu-01-7c1e9a2b',
    hostname: 'gpu-01.lab',
    status: 'ready',
    availability: 'active',
    role: 'worker',
    labels: { cluster: 'lab-a', gpu: 'a100' },
  },
  'GET /api/swarm/services/{service_id}/logs': {
    id: 'svc-web',
    name: 'web',
    logs: [
      {
        container_id: '3f2a9c1b7d4e',
        node_id: 'gpu-01-7c1e9a2b',
        logs: '10.0.0.5 - - "GET / HTTP/1.1" 200 615\n',
      },
      {
        container_id: '8e1d0c2b4a6f',
        node_id: 'gpu-02-1d5c8a3e',
        error: 'node gpu-02 did not answer within 20 s',
      },
    ],
  },
  'DELETE /api/swarm/services/{service_id}': { status: 'deleted', id: 'svc-web', name: 'web' },
  'GET /api/swarm/containers': {
    containers: [
      {
        id: '3f2a9c1b7d4e',
        name: 'web-1',
        image: 'nginx:alpine',
        status: 'running',
        node_id: 'gpu-01-7c1e9a2b',
        ports: { '80/tcp': 32768 },
      },
    ],
    total: 1,
    server: 'fleet-control-plane',
  },
  'POST /api/swarm/containers/{container_id}/restart': {
    restarted: true,
    container_id: '3f2a9c1b7d4e',
    name: 'web-1',
  },
  'POST /api/swarm/containers/{container_id}/stop': { stopped: true },
  'POST /api/swarm/containers/{container_id}/start': {
    started: true,
    container_id: '3f2a9c1b7d4e',
    status: 'running',
  },
};
