import * as z from 'zod';

/** Response schemas of the Vision API (functions/vision/routes.ts; job views in functions/cluster/views.ts). */

const visionStatus = z.enum(['queued', 'processing', 'completed', 'failed', 'cancelled']);

export const visionStatusOut = z.object({
  online_nodes: z.number().int(),
  busy_nodes: z.number().int(),
  switching_nodes: z.number().int(),
  offline_nodes: z.number().int(),
  queue_length: z.number().int(),
  models_loaded: z.record(z.string(), z.array(z.string())).describe('model → names of the nodes serving it'),
});

export const generatedOut = z.object({
  job_id: z.string(),
  status: z.literal('queued'),
  queue_position: z.number().int().nullable(),
  target_model: z.string(),
});

/** By status: queue_position while queued; progress and node_id while processing; result once completed; error once failed or cancelled. */
export const jobOut = z.object({
  job_id: z.string(),
  status: visionStatus,
  model: z.string(),
  created_at: z.string(),
  queue_position: z.number().int().nullable().optional(),
  progress: z.number().optional(),
  node_id: z.string().nullable().optional(),
  result: z
    .object({
      image_url: z.string().nullable(),
      images: z.array(z.string()),
      seed: z.number().nullable(),
      generation_time: z.number().nullable(),
      node_id: z.string().nullable(),
    })
    .optional(),
  error: z.string().optional(),
});

const page = { total: z.number().int(), limit: z.number().int(), offset: z.number().int() };

const nextCursor = z.string().nullable().describe('Pass as ?cursor= for the next page; null on the last');

export const jobsOut = z.object({
  jobs: z.array(jobOut.extend({ prompt: z.string().nullable() })),
  ...page,
  cursor: nextCursor,
});

export const jobCancelledOut = z.object({ job_id: z.string(), status: visionStatus, message: z.string() });

export const stopAllOut = z.object({
  message: z.string(),
  cancelled: z.number().int(),
  job_ids: z.array(z.string()),
});

export const queueOut = z.object({
  queue: z.array(
    z.object({
      position: z.number().int(),
      job_id: z.string(),
      model: z.string(),
      priority: z.unknown().describe('The priority as submitted'),
      task_type: z.string(),
      prompt: z.unknown().nullable(),
      created_at: z.string(),
    }),
  ),
  length: z.number().int(),
  limit: z.number().int(),
  cursor: nextCursor,
  processing: z.array(
    z.object({
      job_id: z.string(),
      model: z.string(),
      node_id: z.string(),
      progress: z.number(),
      task_type: z.string(),
    }),
  ),
});

export const availableModelsOut = z.object({
  models: z.array(
    z.object({
      name: z.string(),
      type: z.string(),
      size: z.string().nullable(),
      gpu_memory: z.string().nullable(),
      max_width: z.number().int().nullable(),
      max_height: z.number().int().nullable(),
      steps: z.object({ min: z.number().int(), max: z.number().int().nullable() }),
      loaded_on: z.array(z.string()),
    }),
  ),
});

export const switchOut = z.object({
  node_id: z.string(),
  model: z.string(),
  status: z.enum(['switching', 'loaded']),
  previous_models: z.array(z.string()),
  estimated_time: z.string().nullable(),
});

const lora = z.object({
  name: z.string(),
  filename: z.string(),
  size: z.number().int(),
  uploaded_at: z.string(),
});
export const lorasOut = z.object({ loras: z.array(lora), total: z.number().int() });
export const loraUploadedOut = z.object({
  message: z.string(),
  name: z.string(),
  filename: z.string(),
  size: z.number().int(),
});

const outputFile = z.object({
  filename: z.string(),
  url: z.string(),
  size: z.number().int(),
  created_at: z.string(),
});
export const galleryOut = z.object({
  images: z.array(outputFile.extend({ job_id: z.string().nullable() })),
  ...page,
});
export const outputsOut = z.object({ outputs: z.array(outputFile), total: z.number().int() });
export const outputDeletedOut = z.object({ message: z.string(), filename: z.string() });
export const outputsClearedOut = z.object({ message: z.string(), deleted: z.number().int() });
export const schedulersOut = z.object({ schedulers: z.array(z.string()) });
export const aspectRatiosOut = z.object({
  ratios: z.array(z.object({ name: z.string(), width: z.number().int(), height: z.number().int() })),
});
