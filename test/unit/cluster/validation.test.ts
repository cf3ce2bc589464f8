import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MODELS,
  DEFAULT_VISION_MODEL,
  type ModelSpec,
} from '../../../functions/cluster/catalogue.js';
import {
  assertSafeFilename,
  clusterPriority,
  generateRequest,
  imageParameterIssues,
  isSafeFilename,
  modelLimitIssues,
  priorityLabel,
  submitTaskRequest,
  visionPriority,
} from '../../../functions/cluster/validation.js';
import { ValidationError } from '../../../functions/core/errors.js';

const sdxl = DEFAULT_MODELS.find((m) => m.id === DEFAULT_VISION_MODEL)!;
const llama = DEFAULT_MODELS.find((m) => m.id === 'llama-2-7b')!;

describe('POST /api/vision/generate body', () => {
  it("fills the document's defaults", () => {
    expect(generateRequest.parse({ prompt: 'a cat' })).toEqual({
      prompt: 'a cat',
      negative_prompt: '',
      width: 1024,
      height: 1024,
      steps: 20,
      guidance_scale: 7.5,
      seed: null,
      model: 'SDXL_4GB_FP8.safetensors',
      lora: null,
      lora_strength: 0.8,
      priority: 0,
      scheduler: 'euler',
    });
  });

  it('takes sizes that are multiples of 8 and refuses others', () => {
    expect(generateRequest.safeParse({ prompt: 'x', width: 1344, height: 768 }).success).toBe(true);
    for (const width of [1001, 1020, 63, 0, -8, 512.5]) {
      const r = generateRequest.safeParse({ prompt: 'x', width });
      expect(r.success, String(width)).toBe(false);
    }
    const r = generateRequest.safeParse({ prompt: 'x', height: 1001 });
    expect(r.error?.issues[0]).toMatchObject({ path: ['height'], message: 'height must be a multiple of 8' });
  });

  it('refuses a missing prompt, an unknown scheduler, a negative seed', () => {
    expect(generateRequest.safeParse({}).success).toBe(false);
    expect(generateRequest.safeParse({ prompt: 'x', scheduler: 'magic' }).success).toBe(false);
    expect(generateRequest.safeParse({ prompt: 'x', seed: -1 }).success).toBe(false);
  });
});

describe('model limits', () => {
  it('passes what fits and names each field that does not', () => {
    expect(modelLimitIssues(sdxl, { width: 1536, height: 1536, steps: 100 })).toEqual([]);
    const issues = modelLimitIssues(sdxl, { width: 1544, height: 2048, steps: 101 });
    expect(issues.map((i) => i.loc)).toEqual([
      ['body', 'width'],
      ['body', 'height'],
      ['body', 'steps'],
    ]);
    expect(issues[0]!.msg).toContain('maximum 1536');
    expect(modelLimitIssues(sdxl, { steps: 0 })).toHaveLength(1);
  });

  it('a model without limits accepts any size', () => {
    const open: ModelSpec = { ...sdxl, maxWidth: undefined, maxHeight: undefined, maxSteps: undefined };
    expect(modelLimitIssues(open, { width: 8192, height: 8192, steps: 999 })).toEqual([]);
  });

  it('checks image parameters given through POST /tasks like /generate, and leaves text models alone', () => {
    expect(imageParameterIssues(sdxl, { prompt: 'x' })).toEqual([]);
    expect(imageParameterIssues(sdxl, { width: 1003 })[0]).toMatchObject({
      loc: ['body', 'parameters', 'width'],
    });
    expect(imageParameterIssues(sdxl, { width: 'wide' })).toHaveLength(1);
    expect(imageParameterIssues(sdxl, { steps: 1.5 })).toHaveLength(1);
    expect(imageParameterIssues(sdxl, { width: 2048 })[0]).toMatchObject({ type: 'model_limit' });
    expect(imageParameterIssues(llama, { width: 1003, max_tokens: 512 })).toEqual([]);
  });
});

describe('POST /tasks body', () => {
  it('defaults priority to normal and refuses unknown priorities', () => {
    expect(submitTaskRequest.parse({ task_type: 'text_generation', model_name: 'llama-2-7b' })).toMatchObject(
      { priority: 'normal', parameters: {} },
    );
    expect(submitTaskRequest.safeParse({ task_type: 't', model_name: 'm', priority: 'urgent' }).success).toBe(
      false,
    );
    expect(submitTaskRequest.safeParse({ task_type: 't', model_name: 'm', timeout: 0 }).success).toBe(false);
  });
});

describe('priority mapping through the scheduler module', () => {
  it('puts both APIs on one scale and labels it back', () => {
    expect(clusterPriority('normal')).toBe(visionPriority(0));
    expect(clusterPriority('critical')).toBe(visionPriority(10));
    expect(clusterPriority('low')).toBe(visionPriority(-3));
    for (const p of ['low', 'normal', 'high', 'critical'] as const)
      expect(priorityLabel(clusterPriority(p))).toBe(p);
    expect(priorityLabel(visionPriority(99))).toBe('critical');
  });
});

describe('file names', () => {
  it('accepts plain names and refuses traversal, separators, hidden files', () => {
    for (const ok of [
      'image_123.png',
      'a.b.c',
      'LoRA-v2.safetensors',
      '550e8400-e29b-41d4-a716-446655440000_image_0.png',
    ])
      expect(isSafeFilename(ok), ok).toBe(true);
    for (const bad of [
      '',
      '..',
      '../x',
      'a/b',
      'a\\b',
      '.hidden',
      'a..b',
      'x\u0000y',
      'é.png',
      ' a.png',
      'x'.repeat(201),
    ])
      expect(isSafeFilename(bad), JSON.stringify(bad)).toBe(false);
  });

  it('never accepts a name with a separator or a double dot', () => {
    fc.assert(
      fc.property(fc.string(), fc.constantFrom('/', '\\', '..'), fc.string(), (a, sep, b) => {
        expect(isSafeFilename(a + sep + b)).toBe(false);
      }),
    );
  });

  it('refuses with a 400 in the FastAPI shape', () => {
    try {
      assertSafeFilename('../etc/passwd');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).status).toBe(400);
      expect((error as ValidationError).issues[0]!.loc).toEqual(['path', 'filename']);
    }
  });
});
