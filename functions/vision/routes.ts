import * as z from 'zod';
import { listModels } from '../cluster/catalogue.js';
import { formatMemory } from '../cluster/format.js';
import { switchModel } from '../cluster/model-ops.js';
import { holderWorkers } from '../cluster/workers.js';
import { parseMultipart } from '../cluster/multipart.js';
import {
  LORAS_PREFIX,
  clearOutputs,
  contentTypeOf,
  deleteOutput,
  getOutput,
  listOutputs,
  OUTPUT_CONTENT_TYPES,
} from '../cluster/outputs.js';
import { ASPECT_RATIOS, SCHEDULERS, assertSafeFilename, isSafeFilename } from '../cluster/validation.js';
import { ConflictError, NotFoundError, ValidationError } from '../core/errors.js';
import { rawReply } from '../core/http.js';
import { route, type AnyRoute, type RouteSpec } from '../core/route.js';
import * as S from './schemas.js';
import { visionJobRoutes } from './job-routes.js';
import { findLora, listLoras, LORA_EXTENSIONS, LORA_MAX_BYTES } from './loras.js';

/** Fleet Commander's Vision API: its jobs (job-routes), models, LoRAs and outputs. */

const common: Pick<RouteSpec, 'errorStyle' | 'scope' | 'tags'> = {
  errorStyle: 'fastapi',
  scope: 'user',
  tags: ['Vision'],
};

const filenameParams = z.object({ filename: z.string() });

export function visionRoutes(): AnyRoute[] {
  return [
    ...visionJobRoutes(),
    route({
      ...common,
      method: 'GET',
      path: '/api/vision/models/available',
      summary: 'Image models of the catalogue and the nodes they are loaded on',
      response: S.availableModelsOut,
      handler: async (_req, ctx) => {
        const images = (await listModels(ctx)).filter((m) => m.kind === 'image');
        // Their holders alone (the residency index), each checked online by its own records.
        const online = (
          await holderWorkers(
            ctx,
            images.map((m) => m.id),
            { slots: false },
          )
        ).filter((w) => w.online);
        return {
          models: images.map((m) => ({
            name: m.id,
            type: m.type,
            size: formatMemory(m.sizeMb ?? m.gpuMemoryMb),
            gpu_memory: formatMemory(m.gpuMemoryMb),
            max_width: m.maxWidth ?? null,
            max_height: m.maxHeight ?? null,
            steps: { min: m.minSteps ?? 1, max: m.maxSteps ?? null },
            loaded_on: online.filter((w) => w.resident.includes(m.id)).map((w) => w.name),
          })),
        };
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/vision/models/switch/{node_id}',
      summary: 'Switch the model a node serves (refused while it runs jobs)',
      params: z.object({ node_id: z.string().min(1) }),
      body: z.object({ model: z.string().min(1) }),
      response: S.switchOut,
      responses: { 404: 'Unknown node', 409: 'Node offline or busy', 422: 'Unknown model' },
      handler: async (req, ctx) => switchModel(ctx, req.params.node_id, req.body.model),
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/vision/loras',
      summary: 'Uploaded LoRAs',
      response: S.lorasOut,
      handler: async (_req, ctx) => {
        const loras = await listLoras(ctx);
        return { loras, total: loras.length };
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/vision/loras/upload',
      summary: `Upload a LoRA (multipart: file, name; at most ${LORA_MAX_BYTES / 1024 / 1024} MiB)`,
      bodyType: 'multipart',
      response: S.loraUploadedOut,
      responses: {
        400: 'Bad name or file',
        409: 'A LoRA of that name exists',
        413: 'Too large',
        415: 'Not multipart',
      },
      handler: async (req, ctx) => {
        const form = await parseMultipart(req.rawBody, req.headers['content-type'], LORA_MAX_BYTES);
        const file = form.files.find((f) => f.field === 'file');
        if (!file)
          throw new ValidationError([
            { loc: ['body', 'file'], msg: 'field required', type: 'value_error.missing' },
          ]);
        const ext = LORA_EXTENSIONS.find((e) => file.filename.toLowerCase().endsWith(e));
        if (!ext)
          throw new ValidationError(
            [
              {
                loc: ['body', 'file'],
                msg: `LoRA files end in ${LORA_EXTENSIONS.join(', ')}`,
                type: 'value_error',
              },
            ],
            400,
          );
        const name = form.fields.name?.trim() || file.filename.slice(0, -ext.length);
        if (!isSafeFilename(name) || !isSafeFilename(name + ext))
          throw new ValidationError(
            [
              {
                loc: ['body', 'name'],
                msg: `Invalid LoRA name: ${JSON.stringify(name)}`,
                type: 'value_error',
              },
            ],
            400,
          );
        if (!file.data.length)
          throw new ValidationError([{ loc: ['body', 'file'], msg: 'Empty file', type: 'value_error' }], 400);
        if (findLora(await listLoras(ctx), name)) throw new ConflictError(`LoRA ${name} already exists`);
        await ctx.blobs.put(LORAS_PREFIX + name + ext, file.data, 'application/octet-stream');
        return { message: 'LoRA uploaded', name, filename: name + ext, size: file.data.length };
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/vision/gallery',
      summary: 'Generated images, newest first',
      query: z.object({
        limit: z.coerce.number().int().min(1).max(500).default(50),
        offset: z.coerce.number().int().min(0).default(0),
      }),
      response: S.galleryOut,
      handler: async (req, ctx) => {
        const images = (await listOutputs(ctx)).filter((o) => contentTypeOf(o.filename).startsWith('image/'));
        const page = images.slice(req.query.offset, req.query.offset + req.query.limit);
        return {
          images: page.map((o) => ({ ...o, job_id: /^([0-9a-f-]{36})_/.exec(o.filename)?.[1] ?? null })),
          total: images.length,
          limit: req.query.limit,
          offset: req.query.offset,
        };
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/vision/outputs',
      summary: 'Output files, newest first',
      response: S.outputsOut,
      handler: async (_req, ctx) => {
        const outputs = await listOutputs(ctx);
        return { outputs, total: outputs.length };
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/vision/outputs/{filename}',
      summary: 'One output file',
      params: filenameParams,
      produces: OUTPUT_CONTENT_TYPES,
      responses: { 400: 'Invalid file name', 404: 'No such file' },
      handler: async (req, ctx) => {
        assertSafeFilename(req.params.filename);
        const out = await getOutput(ctx, req.params.filename);
        if (!out) throw new NotFoundError(`Output ${req.params.filename} not found`);
        // Files come from model servers: never sniffed into something else, never a page that runs script.
        return rawReply(200, Buffer.from(out.body), out.contentType, {
          'cache-control': 'private, max-age=3600',
          'x-content-type-options': 'nosniff',
          'content-security-policy': "default-src 'none'; sandbox",
        });
      },
    }),
    route({
      ...common,
      method: 'DELETE',
      path: '/api/vision/outputs/{filename}',
      summary: 'Delete one output file',
      params: filenameParams,
      response: S.outputDeletedOut,
      responses: { 400: 'Invalid file name', 404: 'No such file' },
      handler: async (req, ctx) => {
        assertSafeFilename(req.params.filename);
        if (!(await deleteOutput(ctx, req.params.filename)))
          throw new NotFoundError(`Output ${req.params.filename} not found`);
        return { message: 'Output deleted', filename: req.params.filename };
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/vision/outputs/clear',
      summary: 'Delete every output file',
      response: S.outputsClearedOut,
      handler: async (_req, ctx) => {
        const deleted = await clearOutputs(ctx);
        return { message: `Deleted ${deleted} output(s)`, deleted };
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/vision/schedulers',
      summary: 'Sampler schedulers a job may name',
      response: S.schedulersOut,
      handler: async () => ({ schedulers: [...SCHEDULERS] }),
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/vision/aspect-ratios',
      summary: 'Preset sizes (multiples of 64, about one megapixel)',
      response: S.aspectRatiosOut,
      handler: async () => ({ ratios: ASPECT_RATIOS.map((r) => ({ ...r })) }),
    }),
  ];
}
