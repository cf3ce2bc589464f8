import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MODELS,
  modelDeclaration,
  modelInstanceId,
  modelSpec,
  serverSpec,
} from '../../../functions/cluster/catalogue.js';
import { formatDuration, formatMemory, formatUptime } from '../../../functions/cluster/format.js';
import { outputName } from '../../../functions/cluster/outputs.js';
import { freeSlots, type SlotItem } from '../../../functions/cluster/slots.js';
import { queueOrder, runTimeoutFor, type TaskItem } from '../../../functions/cluster/tasks.js';
import { isSafeFilename } from '../../../functions/cluster/validation.js';
import {
  maxConcurrencyOf,
  MODEL_SETTLE_MS,
  residentModels,
  type NodeModelsItem,
} from '../../../functions/cluster/workers.js';
import { LABELS } from '../../../protocol/messages.js';
import { containerSpec } from '../../../protocol/commands.js';
import type { NodeItem } from '../../../functions/fleet/nodes.js';

describe('model catalogue', () => {
  it('every built-in model is a valid declaration, with the vision document models in it', () => {
    for (const m of DEFAULT_MODELS) expect(modelSpec.parse(m)).toEqual(m);
    expect(DEFAULT_MODELS.map((m) => m.id)).toEqual(
      expect.arrayContaining([
        'SDXL_4GB_FP8.safetensors',
        'RealVisXL_V5_Turbo.safetensors',
        'sdxl-turbo',
        'llama-2-7b',
      ]),
    );
  });

  it('refuses a declaration with steps out of order or a bad port', () => {
    const base = {
      kind: 'image',
      image: 'srv:1',
      port: 8080,
      protocol: 'vision-generate',
      gpuMemoryMb: 4096,
    };
    expect(modelDeclaration.safeParse(base).success).toBe(true);
    expect(modelDeclaration.safeParse({ ...base, minSteps: 10, maxSteps: 5 }).success).toBe(false);
    expect(modelDeclaration.safeParse({ ...base, port: 70000 }).success).toBe(false);
    expect(modelDeclaration.safeParse({ ...base, protocol: 'grpc' }).success).toBe(false);
  });

  it('gives each (node, model) a stable, engine-safe, distinct server instance id', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        (node, m1, m2) => {
          const a = modelInstanceId(node, m1);
          expect(a).toMatch(/^[a-z0-9][a-z0-9.-]*$/);
          expect(a.length).toBeLessThanOrEqual(50);
          expect(modelInstanceId(node, m1)).toBe(a);
          if (m1 !== m2) expect(modelInstanceId(node, m2)).not.toBe(a);
        },
      ),
    );
  });

  it('builds a model server spec the agent protocol accepts, labelled with the model', () => {
    const spec = serverSpec(DEFAULT_MODELS[0]!, 'agx0-1234');
    expect(containerSpec.parse(spec)).toEqual(spec);
    expect(spec).toMatchObject({
      kind: 'model',
      gpus: 'all',
      labels: { [LABELS.model]: DEFAULT_MODELS[0]!.id },
      ports: [{ containerPort: 8080, hostPort: 0 }],
    });
  });

  it('lets a CPU model (gpuMemoryMb 0) be declared; its server asks for no GPU', () => {
    const cpu = modelSpec.parse({
      id: 'cpu-sd',
      kind: 'image',
      image: 'srv:1',
      port: 8080,
      protocol: 'vision-generate',
      gpuMemoryMb: 0,
    });
    const spec = serverSpec(cpu, 'node-1');
    expect(containerSpec.parse(spec)).toEqual(spec);
    expect(spec.gpus).toBeUndefined();
    expect(modelSpec.safeParse({ ...cpu, gpuMemoryMb: -1 }).success).toBe(false);
  });
});

describe('formatting', () => {
  it('writes sizes and durations as the documents do', () => {
    expect([formatMemory(24_576), formatMemory(6_656), formatMemory(512), formatMemory(undefined)]).toEqual([
      '24GB',
      '6.5GB',
      '512MB',
      null,
    ]);
    expect([
      formatDuration(3.2),
      formatDuration(15),
      formatDuration(120),
      formatDuration(125),
      formatDuration(3780),
      formatDuration(-1),
    ]).toEqual(['3.2s', '15s', '2m', '2m 5s', '1h 3m', null]);
    expect(formatUptime((7 * 24 * 60 + 4 * 60 + 23) * 60_000 + 5_000)).toBe('7d 4h 23m');
  });
});

describe('output names', () => {
  it('are always one safe path segment carrying the task id', () => {
    fc.assert(
      fc.property(fc.string(), (agentName) => {
        const name = outputName('550e8400-e29b-41d4-a716-446655440000', agentName);
        expect(isSafeFilename(name)).toBe(true);
        expect(name.startsWith('550e8400-e29b-41d4-a716-446655440000_')).toBe(true);
      }),
    );
    expect(outputName('t1', '../../etc/passwd')).toBe('t1_passwd');
    expect(outputName('t1', 'image_0.png')).toBe('t1_image_0.png');
  });
});

const task = (over: Partial<TaskItem>): TaskItem => ({
  pk: 'p',
  sk: 's',
  taskId: 't',
  source: 'vision',
  taskType: 'image_generation',
  model: 'm',
  parameters: {},
  priority: 0,
  priorityInput: 0,
  status: 'queued',
  createdAt: new Date(0).toISOString(),
  createdAtMs: 0,
  runTimeoutSeconds: 600,
  attempts: 0,
  progress: 0,
  ...over,
});

describe('queue order', () => {
  it('is the scheduler order: priority, then age, with timed-out tasks left out', () => {
    const q = [
      task({ taskId: 'old-low', priority: -1, createdAtMs: 0 }),
      task({ taskId: 'normal', priority: 0, createdAtMs: 1_000 }),
      task({ taskId: 'critical', priority: 2, createdAtMs: 2_000 }),
      task({ taskId: 'normal-2', priority: 0, createdAtMs: 3_000 }),
      task({ taskId: 'expired', priority: 2, createdAtMs: 0, timeoutSeconds: 1 }),
    ];
    expect(queueOrder(q, 5_000).map((t) => t.taskId)).toEqual(['critical', 'normal', 'normal-2', 'old-low']);
    // After 40 minutes of waiting the low task has aged past a fresh critical one.
    const later = [q[0]!, task({ taskId: 'fresh-critical', priority: 2, createdAtMs: 40 * 60_000 })];
    expect(queueOrder(later, 40 * 60_000)[0]!.taskId).toBe('old-low');
  });

  it('gives the agent what is left of a deadline, else the default run timeout', () => {
    expect(runTimeoutFor(task({}), 10_000)).toBe(600);
    expect(runTimeoutFor(task({ timeoutSeconds: 300 }), 100_000)).toBe(200);
    expect(runTimeoutFor(task({ timeoutSeconds: 300 }), 400_000)).toBe(1);
  });
});

const node = (over: Partial<NodeItem>): NodeItem => ({ labels: {}, loadedModels: [], ...over }) as NodeItem;

describe('workers', () => {
  it("trusts the control plane's record until a heartbeat after the settle time", () => {
    const record: NodeModelsItem = { pk: 'p', sk: 's', nodeId: 'n', models: ['B'], updatedAtMs: 1_000 };
    expect(residentModels(node({ loadedModels: ['A'] }), undefined)).toEqual(['A']);
    expect(residentModels(node({ loadedModels: ['A'], lastHeartbeatMs: 1_500 }), record)).toEqual(['B']);
    expect(
      residentModels(node({ loadedModels: ['C'], lastHeartbeatMs: 1_000 + MODEL_SETTLE_MS }), record),
    ).toEqual(['C']);
  });

  it('reads max concurrency from the node label, default 1', () => {
    expect(maxConcurrencyOf(node({}))).toBe(1);
    expect(maxConcurrencyOf(node({ labels: { 'max-concurrency': '4' } }))).toBe(4);
    expect(maxConcurrencyOf(node({ labels: { 'max-concurrency': '0' } }))).toBe(0);
    expect(maxConcurrencyOf(node({ labels: { 'max-concurrency': 'lots' } }))).toBe(1);
  });

  it('offers the free slot numbers, lowest first', () => {
    const held = [{ slot: 1 }, { slot: 3 }] as SlotItem[];
    expect(freeSlots(4, held)).toEqual([0, 2]);
    expect(freeSlots(2, [{ slot: 0 }, { slot: 1 }] as SlotItem[])).toEqual([]);
  });
});
