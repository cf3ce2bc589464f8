import { createHash } from 'node:crypto';
import * as z from 'zod';
import type { AppContext } from '../core/context.js';
import { taskQueueKeys, keys } from '../core/keys.js';
import { LABELS } from '../../protocol/messages.js';
import { type ContainerSpec } from '../../protocol/commands.js';
import { queryAll, type StoreItem } from '../ports/store.js';
import { cloudBurst } from '../training/schemas.js';

/**
 * The model catalogue: what each model id means to the fleet (the container image that serves
 * it, its API, its GPU memory, its limits). Built-in defaults, overlaid by declarations stored
 * in the table (`PUT /models/catalog/{model_id}`), so a deployment adds or overrides models
 * without a release.
 */

export const MODEL_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** How the model server is called: the request body the control plane builds, the answer it reads. */
export const MODEL_PROTOCOLS = ['vision-generate', 'text-generate'] as const;
export type ModelProtocol = (typeof MODEL_PROTOCOLS)[number];

const modelFields = z.object({
  id: z.string().regex(MODEL_ID_PATTERN, 'letters, digits, . _ - (at most 128)'),
  kind: z.enum(['image', 'text']),
  /** Fleet Commander's model type (`checkpoint`). */
  type: z.string().default('checkpoint'),
  /** Container image of the server that serves this model. */
  image: z.string().min(1),
  /** Port and protocol of the server's API, and the path tasks are POSTed to. */
  port: z.number().int().min(1).max(65535),
  protocol: z.enum(MODEL_PROTOCOLS),
  path: z.string().startsWith('/').default('/generate'),
  /** 0: a CPU model server; it asks the engine for no GPU and fits on any node, GPU or not. */
  gpuMemoryMb: z.number().int().nonnegative(),
  /** Weights on disk, for `size`; GPU memory when unknown. */
  sizeMb: z.number().int().positive().optional(),
  maxWidth: z.number().int().positive().optional(),
  maxHeight: z.number().int().positive().optional(),
  minSteps: z.number().int().positive().optional(),
  maxSteps: z.number().int().positive().optional(),
  /** Rough time to load the weights, for estimates until real load times are measured. */
  loadSeconds: z.number().positive().default(45),
  env: z.record(z.string(), z.string()).default({}),
  /**
   * The server as a process (argv), for nodes without a container engine (process driver): with it
   * the model can be served by a rented node. Container nodes run the image as it is.
   */
  command: z.array(z.string().min(1).max(4096)).min(1).max(64).optional(),
  /** Burst: rent a Novita instance that joins the fleet when no fleet node can serve the queue. */
  cloud: cloudBurst.optional(),
});

const stepsInOrder = (m: { minSteps?: number | undefined; maxSteps?: number | undefined }) =>
  m.minSteps === undefined || m.maxSteps === undefined || m.minSteps <= m.maxSteps;
const stepsMessage = { message: 'minSteps must not exceed maxSteps', path: ['minSteps'] };
// A rented node has the process driver only: it serves the model from its command.
const cloudNeedsCommand = (m: { cloud?: unknown; command?: unknown }) => !m.cloud || !!m.command;
const cloudMessage = {
  message: 'cloud needs command: rented nodes run the model server as a process',
  path: ['command'],
};

export const modelSpec = modelFields
  .refine(stepsInOrder, stepsMessage)
  .refine(cloudNeedsCommand, cloudMessage);
export type ModelSpec = z.output<typeof modelSpec>;
/** PUT /models/catalog/{model_id} body: the id comes from the path. */
export const modelDeclaration = modelFields
  .omit({ id: true })
  .refine(stepsInOrder, stepsMessage)
  .refine(cloudNeedsCommand, cloudMessage);

/** The vision document's default model. */
export const DEFAULT_VISION_MODEL = 'SDXL_4GB_FP8.safetensors';

const SDXL_SERVER = 'localhost:5000/sdxl-trt:r35.3.1';

/** Built-in catalogue: the models the two API documents name. */
export const DEFAULT_MODELS: readonly ModelSpec[] = [
  {
    id: 'SDXL_4GB_FP8.safetensors',
    kind: 'image',
    type: 'checkpoint',
    image: SDXL_SERVER,
    port: 8080,
    protocol: 'vision-generate',
    path: '/generate',
    gpuMemoryMb: 5_120,
    sizeMb: 4_096,
    maxWidth: 1536,
    maxHeight: 1536,
    minSteps: 1,
    maxSteps: 100,
    loadSeconds: 40,
    env: { MODEL_FILE: 'SDXL_4GB_FP8.safetensors' },
  },
  {
    id: 'RealVisXL_V5_Turbo.safetensors',
    kind: 'image',
    type: 'checkpoint',
    image: SDXL_SERVER,
    port: 8080,
    protocol: 'vision-generate',
    path: '/generate',
    gpuMemoryMb: 7_168,
    sizeMb: 6_656,
    maxWidth: 1536,
    maxHeight: 1536,
    minSteps: 1,
    maxSteps: 50,
    loadSeconds: 45,
    env: { MODEL_FILE: 'RealVisXL_V5_Turbo.safetensors' },
  },
  {
    id: 'sdxl-turbo',
    kind: 'image',
    type: 'checkpoint',
    image: SDXL_SERVER,
    port: 8080,
    protocol: 'vision-generate',
    path: '/generate',
    gpuMemoryMb: 6_656,
    sizeMb: 6_656,
    maxWidth: 1024,
    maxHeight: 1024,
    minSteps: 1,
    maxSteps: 50,
    loadSeconds: 40,
    env: { MODEL_FILE: 'sdxl-turbo' },
  },
  {
    id: 'stable-diffusion-xl',
    kind: 'image',
    type: 'checkpoint',
    image: SDXL_SERVER,
    port: 8080,
    protocol: 'vision-generate',
    path: '/generate',
    gpuMemoryMb: 8_192,
    sizeMb: 6_938,
    maxWidth: 1536,
    maxHeight: 1536,
    minSteps: 1,
    maxSteps: 150,
    loadSeconds: 50,
    env: { MODEL_FILE: 'sd_xl_base_1.0.safetensors' },
  },
  {
    id: 'llama-2-7b',
    kind: 'text',
    type: 'llm',
    image: 'localhost:5000/llm-server:latest',
    port: 8000,
    protocol: 'text-generate',
    path: '/generate',
    gpuMemoryMb: 6_656,
    sizeMb: 13_500,
    loadSeconds: 45,
    env: { MODEL_ID: 'meta-llama/Llama-2-7b-chat-hf' },
  },
];

interface ModelItem extends StoreItem {
  model: ModelSpec;
  declaredAt: string;
}

/** Defaults overlaid by stored declarations (same id: the declaration wins), sorted by id. */
export async function listModels(ctx: AppContext): Promise<ModelSpec[]> {
  const declared = await queryAll<ModelItem>(ctx.store, taskQueueKeys.modelsPk, { index: 'gsi1' });
  const byId = new Map<string, ModelSpec>(DEFAULT_MODELS.map((m) => [m.id, m]));
  for (const item of declared) byId.set(item.model.id, item.model);
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export async function getModel(ctx: AppContext, id: string): Promise<ModelSpec | undefined> {
  const k = keys.model(id);
  const item = await ctx.store.get<ModelItem>(k.pk, k.sk);
  return item?.model ?? DEFAULT_MODELS.find((m) => m.id === id);
}

export async function declareModel(ctx: AppContext, model: ModelSpec): Promise<ModelSpec> {
  await ctx.store.put<ModelItem>({
    ...keys.model(model.id),
    ...keys.modelsIndex(model.id),
    model,
    declaredAt: new Date(ctx.now()).toISOString(),
  });
  return model;
}

/** Removes a declaration; a built-in model of the same id shows again. */
export async function removeDeclaredModel(ctx: AppContext, id: string): Promise<boolean> {
  const k = keys.model(id);
  return (await ctx.store.delete(k.pk, k.sk)) !== undefined;
}

export const isBuiltIn = (id: string): boolean => DEFAULT_MODELS.some((m) => m.id === id);

/**
 * The model server's instance id on a node: one per (node, model), stable, so a second task
 * reuses the server and removing it needs no lookup. Engine names allow [a-zA-Z0-9_.-].
 */
export function modelInstanceId(nodeId: string, modelId: string): string {
  const slug = modelId
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 32);
  const hash = createHash('sha256').update(`${nodeId}\u0000${modelId}`).digest('hex').slice(0, 8);
  return `msrv-${slug}-${hash}`;
}

/** The container spec the agent starts (or reuses) to serve `model` on `nodeId` (a process on a process node). */
export function serverSpec(
  model: ModelSpec,
  nodeId: string,
  driver?: 'container' | 'process',
): ContainerSpec {
  const instanceId = modelInstanceId(nodeId, model.id);
  return {
    instanceId,
    imageId: model.image,
    name: instanceId,
    kind: 'model',
    ...(driver === 'process' && model.command ? { command: model.command } : {}),
    env: { MODEL_ID: model.id, ...model.env },
    ports: [{ containerPort: model.port, hostPort: 0, protocol: 'tcp' }],
    volumes: [],
    // A GPU request on a node without a GPU runtime is refused, so only models that need one ask.
    ...(model.gpuMemoryMb > 0 ? { gpus: 'all' as const } : {}),
    labels: { [LABELS.model]: model.id },
    restart: 'on-failure',
  };
}
