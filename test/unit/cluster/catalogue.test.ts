import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MODELS,
  modelDeclaration,
  modelInstanceId,
  modelSpec,
  serverSpec,
} from '../../../functions/cluster/catalogue.js';
import { containerSpec } from '../../../protocol/commands.js';
import { LABELS } from '../../../protocol/messages.js';

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
