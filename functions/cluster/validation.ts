import * as z from 'zod';
import { ValidationError, type ValidationIssue } from '../core/errors.js';
import { fromClusterPriority, fromVisionPriority, type ClusterPriority } from '../task-planner/index.js';
import { DEFAULT_VISION_MODEL, type ModelSpec } from './catalogue.js';

/** Pure request checks shared by the cluster and vision APIs. Everything here throws before anything is written. */

export const SCHEDULERS = [
  'euler',
  'euler_a',
  'dpm++_2m',
  'dpm++_2m_karras',
  'ddim',
  'lms',
  'heun',
  'dpm_fast',
] as const;

export const ASPECT_RATIOS = [
  { name: '1:1', width: 1024, height: 1024 },
  { name: '16:9', width: 1344, height: 768 },
  { name: '9:16', width: 768, height: 1344 },
  { name: '4:3', width: 1152, height: 896 },
  { name: '3:4', width: 896, height: 1152 },
  { name: '3:2', width: 1216, height: 832 },
  { name: '2:3', width: 832, height: 1216 },
  { name: '21:9', width: 1536, height: 640 },
] as const;

const dimension = (name: string) =>
  z
    .number()
    .int()
    .min(64, `${name} must be at least 64`)
    .refine((v) => v % 8 === 0, `${name} must be a multiple of 8`);

/** POST /api/vision/generate, with the defaults of the document's table. */
export const generateRequest = z.object({
  prompt: z.string().min(1).max(10_000),
  negative_prompt: z.string().max(10_000).default(''),
  width: dimension('width').default(1024),
  height: dimension('height').default(1024),
  steps: z.number().int().min(1).default(20),
  guidance_scale: z.number().min(0).max(50).default(7.5),
  /** null: the control plane draws one, so the result can report it. */
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .nullable()
    .default(null),
  model: z.string().min(1).default(DEFAULT_VISION_MODEL),
  lora: z.string().min(1).nullable().default(null),
  lora_strength: z.number().min(-4).max(4).default(0.8),
  /** Higher first; clamped onto the cluster's four tiers (task-planner/priority.ts). */
  priority: z.number().int().default(0),
  scheduler: z.enum(SCHEDULERS).default('euler'),
});
export type GenerateRequest = z.output<typeof generateRequest>;

export const CLUSTER_PRIORITIES = ['low', 'normal', 'high', 'critical'] as const;

/** POST /tasks. */
export const submitTaskRequest = z.object({
  task_type: z.string().min(1).max(64),
  model_name: z.string().min(1),
  parameters: z.record(z.string(), z.unknown()).default({}),
  priority: z.enum(CLUSTER_PRIORITIES).default('normal'),
  /** Seconds from submission to the task's end, queueing included. */
  timeout: z
    .number()
    .int()
    .positive()
    .max(7 * 24 * 3600)
    .optional(),
  /** Ours: restrict the task to nodes of one GPU type or with given labels. */
  requirements: z
    .object({ gpu_type: z.string().min(1).optional(), labels: z.record(z.string(), z.string()).optional() })
    .optional(),
});
export type SubmitTaskRequest = z.output<typeof submitTaskRequest>;

export const clusterPriority = (p: ClusterPriority): number => fromClusterPriority(p);
export const visionPriority = (p: number): number => fromVisionPriority(p);

/** Inverse of the mapping, for the cluster view of a vision job. */
export function priorityLabel(priority: number): ClusterPriority {
  return priority <= -1 ? 'low' : priority === 0 ? 'normal' : priority === 1 ? 'high' : 'critical';
}

function issue(field: string, msg: string, type = 'value_error'): ValidationIssue {
  return { loc: ['body', field], msg, type };
}

export function unknownModel(field: string, id: string): ValidationError {
  return new ValidationError([issue(field, `Unknown model: ${id}`, 'unknown_model')]);
}

/** Size and step limits of the model; empty when the parameters fit. */
export function modelLimitIssues(
  model: ModelSpec,
  params: { width?: unknown; height?: unknown; steps?: unknown },
  prefix: string[] = [],
): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  const loc = (f: string) => ['body', ...prefix, f];
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const width = num(params.width);
  const height = num(params.height);
  const steps = num(params.steps);
  if (width !== undefined && model.maxWidth !== undefined && width > model.maxWidth)
    out.push({
      loc: loc('width'),
      msg: `width ${width} exceeds ${model.id}'s maximum ${model.maxWidth}`,
      type: 'model_limit',
    });
  if (height !== undefined && model.maxHeight !== undefined && height > model.maxHeight)
    out.push({
      loc: loc('height'),
      msg: `height ${height} exceeds ${model.id}'s maximum ${model.maxHeight}`,
      type: 'model_limit',
    });
  if (steps !== undefined) {
    const min = model.minSteps ?? 1;
    const max = model.maxSteps;
    if (steps < min || (max !== undefined && steps > max))
      out.push({
        loc: loc('steps'),
        msg: `steps must be between ${min} and ${max ?? '∞'} for ${model.id}`,
        type: 'model_limit',
      });
  }
  return out;
}

/**
 * Image parameters given through POST /tasks get the same checks as /generate: whole multiples
 * of 8 and the model's limits.
 */
export function imageParameterIssues(
  model: ModelSpec,
  parameters: Record<string, unknown>,
): ValidationIssue[] {
  if (model.kind !== 'image') return [];
  const out: ValidationIssue[] = [];
  for (const f of ['width', 'height'] as const) {
    const v = parameters[f];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 64 || v % 8 !== 0)
      out.push({
        loc: ['body', 'parameters', f],
        msg: `${f} must be an integer multiple of 8, at least 64`,
        type: 'value_error',
      });
  }
  const steps = parameters.steps;
  if (steps !== undefined && (typeof steps !== 'number' || !Number.isInteger(steps)))
    out.push({ loc: ['body', 'parameters', 'steps'], msg: 'steps must be an integer', type: 'value_error' });
  return out.length ? out : modelLimitIssues(model, parameters, ['parameters']);
}

export function throwIfIssues(issues: ValidationIssue[]): void {
  if (issues.length) throw new ValidationError(issues);
}

/** Output and LoRA names: one path segment, no traversal, nothing hidden. */
export const SAFE_FILENAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export function isSafeFilename(name: string): boolean {
  return SAFE_FILENAME.test(name) && !name.includes('..');
}

/** 400 (the document's "Bad Request - Invalid parameters") for a name that could leave its folder. */
export function assertSafeFilename(name: string, field = 'filename'): void {
  if (!isSafeFilename(name))
    throw new ValidationError(
      [{ loc: ['path', field], msg: `Invalid ${field}: ${JSON.stringify(name)}`, type: 'value_error' }],
      400,
    );
}
