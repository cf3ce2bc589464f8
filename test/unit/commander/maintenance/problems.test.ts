import { describe, expect, it } from 'vitest';
import { detectProblems, problemId } from '../../../../functions/commander/maintenance/problems.js';
import type { NodeItem } from '../../../../functions/nodes/nodes.js';
import type { InstanceItem } from '../../../../functions/orchestrator/model.js';

function node(name: string, over: Partial<NodeItem> = {}): NodeItem {
  return {
    pk: `NODE#${name}-id`,
    sk: 'META',
    nodeId: `${name}-id`,
    nodeName: name,
    hostname: name,
    addresses: ['10.0.0.1'],
    arch: 'arm64',
    os: 'linux',
    cpuCount: 8,
    memoryMb: 16_000,
    diskGb: 100,
    gpus: [],
    labels: {},
    agentVersion: 'test',
    tokenHash: 'x',
    registeredAt: '2026-01-01T00:00:00.000Z',
    status: 'online',
    lastHeartbeat: '2026-01-01T00:00:00.000Z',
    loadedModels: [],
    containerStats: {},
    metrics: {
      cpuPercent: 10,
      memoryUsedMb: 1000,
      memoryTotalMb: 16_000,
      diskUsedGb: 10,
      diskTotalGb: 100,
      gpus: [],
    },
    ...over,
  };
}

const gpu = (index: number, temperatureC: number | null) => ({
  index,
  uuid: null,
  name: 'Orin',
  utilizationGpu: 0,
  utilizationMemory: 0,
  memoryTotalMiB: null,
  memoryUsedMiB: null,
  memoryFreeMiB: null,
  temperatureC,
  powerDrawW: null,
  powerLimitW: null,
});

const instance = (over: Partial<InstanceItem>): InstanceItem =>
  ({
    pk: 'INSTANCE#i',
    sk: 'META',
    instanceId: 'i1',
    imageId: 'web:1',
    nodeId: 'agx0-id',
    name: 'container-i1',
    status: 'running',
    ordinal: 0,
    resources: {},
    reserve: { cpu: 0, memoryMb: 0, diskGb: 0, gpus: 0 },
    containerPorts: [],
    ports: [],
    createdAt: '',
    updatedAt: '',
    ...over,
  }) as InstanceItem;

const up = () => true;
const kinds = (nodes: NodeItem[], instances: InstanceItem[] = [], online: (n: NodeItem) => boolean = up) =>
  detectProblems(nodes, instances, online).map((p) => [p.nodeName, p.type, p.severity, p.fix ?? null]);

describe('detectProblems', () => {
  it('a healthy fleet has none', () => {
    expect(kinds([node('agx0'), node('agx1')])).toEqual([]);
  });

  it.each([
    [79.9, null],
    [80, 'warning'],
    [89.9, 'warning'],
    [90, 'critical'],
  ] as const)('disk %d %% → %s', (used, severity) => {
    const found = kinds([node('agx0', { metrics: { ...node('x').metrics!, diskUsedGb: used } })]);
    expect(found).toEqual(severity ? [['agx0', 'disk_space', severity, 'docker_cleanup']] : []);
  });

  it('memory from 90 %, GPU temperature from 85 °C (nvidia-smi or the tegrastats GPU zone)', () => {
    const m = node('x').metrics!;
    expect(kinds([node('a', { metrics: { ...m, memoryUsedMb: 14_399 } })])).toEqual([]);
    expect(kinds([node('a', { metrics: { ...m, memoryUsedMb: 14_400 } })])).toEqual([
      ['a', 'high_memory', 'warning', null],
    ]);
    expect(kinds([node('a', { metrics: { ...m, gpus: [gpu(0, 84.9), gpu(1, null)] } })])).toEqual([]);
    expect(kinds([node('a', { metrics: { ...m, gpus: [gpu(0, 40), gpu(1, 85)] } })])).toEqual([
      ['a', 'gpu_temperature', 'warning', null],
    ]);
    // A hot CPU zone is not a GPU problem; an offline sensor (null) reads nothing.
    const jetson = (temperatures: Record<string, number | null>) =>
      node('j', { metrics: { ...m, tegrastats: { temperatures } } });
    expect(kinds([jetson({ CPU: 99, tj: 99, GPU: null })])).toEqual([]);
    const [hot] = detectProblems([jetson({ gpu: 88.4, CPU: 50 })], [], up);
    expect(hot).toMatchObject({
      type: 'gpu_temperature',
      message: 'GPU temperature at 88 °C on j: tegrastats gpu 88 °C',
    });
  });

  it('an offline node is one critical problem: its stale readings are not judged', () => {
    const stale = node('agx2', { metrics: { ...node('x').metrics!, diskUsedGb: 99 } });
    const found = detectProblems([stale], [instance({ nodeId: 'agx2-id', status: 'exited' })], () => false);
    expect(found).toEqual([
      {
        id: problemId('agx2-id', 'node_offline'),
        nodeId: 'agx2-id',
        nodeName: 'agx2',
        type: 'node_offline',
        severity: 'critical',
        message: 'Node agx2 is offline: no heartbeat since 2026-01-01T00:00:00.000Z',
      },
    ]);
  });

  it('managed containers down: the orchestrator’s exited or failed copies, stopped model servers; not runs or stopped copies', () => {
    const n = node('agx0', {
      containerStats: {
        m1: { state: 'exited', kind: 'model', cpuPercent: null, memoryPercent: null, memoryUsageMb: null },
        r1: { state: 'exited', kind: 'run', cpuPercent: null, memoryPercent: null, memoryUsageMb: null },
        m2: { state: 'running', kind: 'model', cpuPercent: 1, memoryPercent: 1, memoryUsageMb: 1 },
      },
    });
    const instances = [
      instance({ instanceId: 'a', name: 'container-a', status: 'exited', exitCode: 3 }),
      instance({ instanceId: 'b', name: 'container-b', imageId: 'api:2', status: 'failed' }),
      instance({ instanceId: 'c', name: 'container-c', status: 'stopped' }),
      instance({ instanceId: 'd', name: 'container-d', status: 'exited', nodeId: 'elsewhere' }),
    ];
    const [p] = detectProblems([n], instances, up);
    expect(p).toMatchObject({ type: 'container_exited', severity: 'warning', fix: 'restart_exited' });
    expect(p!.message).toBe(
      '3 managed containers are down on agx0: container-a (web:1, exited with code 3), container-b (api:2, failed to start), model server m1',
    );
    // Only a model server down: nothing for restart_exited to do.
    const [models] = detectProblems([n], [], up);
    expect(models).toMatchObject({ type: 'container_exited' });
    expect(models!.fix).toBeUndefined();
  });

  it('ids are stable per node and type; critical first, then by node name', () => {
    expect(problemId('n1', 'disk_space')).toBe(problemId('n1', 'disk_space'));
    expect(problemId('n1', 'disk_space')).not.toBe(problemId('n2', 'disk_space'));
    expect(problemId('n1', 'disk_space')).not.toBe(problemId('n1', 'high_memory'));
    const m = node('x').metrics!;
    const found = kinds(
      [
        node('b', { metrics: { ...m, diskUsedGb: 85, memoryUsedMb: 15_000 } }),
        node('c', { metrics: { ...m, diskUsedGb: 95 } }),
        node('a', { metrics: { ...m, diskUsedGb: 85 } }),
        node('z'),
      ],
      [],
      (n) => n.nodeName !== 'z',
    );
    expect(found).toEqual([
      ['c', 'disk_space', 'critical', 'docker_cleanup'],
      ['z', 'node_offline', 'critical', null],
      ['a', 'disk_space', 'warning', 'docker_cleanup'],
      ['b', 'disk_space', 'warning', 'docker_cleanup'],
      ['b', 'high_memory', 'warning', null],
    ]);
  });
});
