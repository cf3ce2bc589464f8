import { randomInt } from 'node:crypto';
import * as z from 'zod';
import { getModel, listModels } from '../cluster/catalogue.js';
import { cancelTask } from '../cluster/lifecycle.js';
import { queuePosition } from '../cluster/queue-position.js';
import { holderWorkers } from '../cluster/workers.js';
import { fleetCounts } from '../nodes/nodes.js';
import { LORAS_PREFIX } from '../cluster/outputs.js';
import { ACTIVE, getTask, submitTask, type TaskItem } from '../cluster/tasks.js';
import { heldSlotPage, slotsOfModel } from '../cluster/slots.js';
import { countOf, readTaskCounts } from '../cluster/task-counts.js';
import { MAX_OFFSET, pageFrom, queuePage, taskPage } from '../cluster/task-pages.js';
import {
  generateRequest,
  modelLimitIssues,
  throwIfIssues,
  unknownModel,
  visionPriority,
} from '../cluster/validation.js';
import { fromVisionStatus, visionJobView, visionStatus, type VisionStatus } from '../cluster/views.js';
import type { AppContext } from '../core/context.js';
import { getNodeRecord } from '../nodes/nodes.js';
import { ConflictError, NotFoundError, ValidationError } from '../core/errors.js';
import { route, type AnyRoute, type RouteSpec } from '../core/route.js';
import * as S from './schemas.js';
import { findLora, listLoras } from './loras.js';

/**
 * Fleet Commander's Vision API (Smart Scheduler). A job is a task of the shared queue
 * (task type `image_generation`); the scheduler module places it, the agent runs it, and the
 * image lands in blobs under outputs/.
 */

export const IMAGE_TASK_TYPE = 'image_generation';

const common: Pick<RouteSpec, 'errorStyle' | 'scope' | 'tags'> = {
  errorStyle: 'fastapi',
  scope: 'user',
  tags: ['Vision'],
};

const jobParams = z.object({ job_id: z.string().min(1) });

const isImageJob = (t: TaskItem) => t.taskType === IMAGE_TASK_TYPE;

/** Names of the given nodes, one META read each (not the fleet); an unknown id names itself. */
async function nameResolver(
  ctx: AppContext,
  ids: Iterable<string | undefined>,
): Promise<(id: string) => string> {
  const wanted = [...new Set(ids)].filter((id): id is string => !!id);
  const names = new Map(
    await Promise.all(
      wanted.map(async (id) => [id, (await getNodeRecord(ctx, id))?.nodeName ?? id] as const),
    ),
  );
  return (id) => names.get(id) ?? id;
}

/** The cluster's state as Vision sees it, and image jobs: generate, follow, cancel, the queue. */
export function visionJobRoutes(): AnyRoute[] {
  return [
    route({
      ...common,
      method: 'GET',
      path: '/api/vision/status',
      summary:
        'Vision cluster: nodes online, busy, switching models, offline; queue length; models loaded where',
      response: S.visionStatusOut,
      handler: async (_req, ctx) => {
        const [catalogue, counts, fleet] = await Promise.all([
          listModels(ctx),
          readTaskCounts(ctx, { finished: false }),
          fleetCounts(ctx),
        ]);
        // The holders of the catalogue's models (the residency index), each with its slots: a node
        // runs a task of a model it holds, so the busy and switching nodes are among them.
        const holders = await holderWorkers(
          ctx,
          catalogue.map((m) => m.id),
          { slots: true },
        );
        const online = holders.filter((w) => w.online);
        // Switching: running a task whose placement switched the model, before the server answered.
        const switching = new Set<string>();
        for (const s of online.flatMap((w) => w.running)) {
          const t = await getTask(ctx, s.taskId);
          if (
            t &&
            t.nodeId === s.nodeId &&
            ACTIVE.includes(t.status) &&
            t.switchedModel &&
            t.serverReadyAtMs === undefined
          )
            switching.add(s.nodeId);
        }
        const modelsLoaded: Record<string, string[]> = {};
        for (const w of online) for (const m of w.resident) (modelsLoaded[m] ??= []).push(w.name);
        // Counted by the sweep's aggregate; never fewer online than the holders seen online now.
        const onlineNodes = Math.max(fleet.online, online.length);
        return {
          online_nodes: onlineNodes,
          busy_nodes: online.filter((w) => w.running.length > 0).length,
          switching_nodes: switching.size,
          offline_nodes: Math.max(0, fleet.nodes - onlineNodes),
          queue_length: counts.states.queued,
          models_loaded: modelsLoaded,
        };
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/vision/generate',
      summary: 'Queue an image generation job',
      body: generateRequest,
      response: S.generatedOut,
      responses: {
        422: 'Invalid parameters: unknown model or LoRA, size not a multiple of 8 or over the model limit, steps out of range',
      },
      handler: async (req, ctx) => {
        const b = req.body;
        const model = await getModel(ctx, b.model);
        if (!model) throw unknownModel('model', b.model);
        if (model.kind !== 'image')
          throw new ValidationError([
            { loc: ['body', 'model'], msg: `${model.id} is not an image model`, type: 'value_error' },
          ]);
        throwIfIssues(modelLimitIssues(model, b));
        let loraKey: string | null = null;
        if (b.lora !== null) {
          const lora = findLora(await listLoras(ctx), b.lora);
          if (!lora)
            throw new ValidationError([
              { loc: ['body', 'lora'], msg: `Unknown LoRA: ${b.lora}`, type: 'value_error' },
            ]);
          loraKey = LORAS_PREFIX + lora.filename;
        }
        const { priority, model: modelId, ...params } = b;
        const task = await submitTask(ctx, {
          source: 'vision',
          taskType: IMAGE_TASK_TYPE,
          model: modelId,
          // Drawn here when not given, so the result can always say which seed made the image.
          parameters: { ...params, seed: b.seed ?? randomInt(0, 2 ** 32 - 1), lora_key: loraKey },
          priority: visionPriority(priority),
          priorityInput: priority,
        });
        const position = await queuePosition(ctx, task);
        return {
          job_id: task.taskId,
          status: 'queued' as const,
          queue_position: position || null,
          target_model: model.id,
        };
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/vision/jobs/{job_id}',
      summary:
        'Job status: queue position while queued, progress and node while processing, result when done',
      params: jobParams,
      response: S.jobOut,
      responses: { 404: 'Unknown job' },
      handler: async (req, ctx) => {
        const t = await getTask(ctx, req.params.job_id);
        if (!t) throw new NotFoundError(`Job ${req.params.job_id} not found`);
        let position: number | undefined;
        if (t.status === 'queued') position = (await queuePosition(ctx, t)) || undefined;
        return visionJobView(t, await nameResolver(ctx, [t.nodeId]), position);
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/vision/jobs',
      summary: 'Image jobs, newest first',
      query: z.object({
        status: z.enum(['queued', 'processing', 'completed', 'failed', 'cancelled']).optional(),
        limit: z.coerce.number().int().min(1).max(1000).default(50),
        offset: z.coerce.number().int().min(0).max(MAX_OFFSET).default(0),
        cursor: z.string().min(1).max(4096).optional(),
      }),
      response: S.jobsOut,
      responses: { 400: 'Invalid pagination cursor' },
      handler: async (req, ctx) => {
        const wanted = req.query.status ? fromVisionStatus(req.query.status as VisionStatus) : undefined;
        const match = (t: TaskItem) => isImageJob(t) && (!wanted || wanted.includes(t.status));
        // Queued jobs alone are read from the queue index, newest first.
        const read = (limit: number, from?: string) =>
          req.query.status === 'queued'
            ? queuePage(ctx, { limit, cursor: from, order: 'newest', match })
            : taskPage(ctx, { limit, cursor: from, match });
        const [page, counts] = await Promise.all([
          pageFrom(read, req.query.limit, req.query.offset, req.query.cursor),
          readTaskCounts(ctx, { finished: true }),
        ]);
        const names = await nameResolver(
          ctx,
          page.items.map((t) => t.nodeId),
        );
        const byType = counts.byType.get(IMAGE_TASK_TYPE);
        return {
          jobs: page.items.map((t) => ({
            // A queued job's place costs a count of the queue ahead of it: GET /api/vision/jobs/{id}
            // answers it, /api/vision/queue pages the queue in order; a listing does neither.
            ...visionJobView(t, names, undefined),
            prompt: typeof t.parameters.prompt === 'string' ? t.parameters.prompt : null,
          })),
          // Counted, not read (task-counts.ts).
          total: byType ? (wanted ?? [undefined]).reduce((n, s) => n + countOf(byType, s), 0) : 0,
          limit: req.query.limit,
          offset: page.offset,
          cursor: page.cursor ?? null,
        };
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/vision/jobs/{job_id}/cancel',
      summary: 'Cancel a job (a running one gets task.cancel on its node)',
      params: jobParams,
      response: S.jobCancelledOut,
      responses: { 404: 'Unknown job', 409: 'Job already finished' },
      handler: async (req, ctx) => {
        const t = await cancelTask(ctx, req.params.job_id);
        return { job_id: t.taskId, status: visionStatus(t.status), message: 'Job cancelled' };
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/vision/jobs/stop-all',
      summary: 'Cancel every queued and processing image job',
      response: S.stopAllOut,
      handler: async (_req, ctx) => {
        // The queued jobs a page at a time and the running ones by the held slots of image models:
        // what it reads grows with what it stops, not with the tasks stored or what else runs.
        const live: TaskItem[] = [];
        let from: string | undefined;
        do {
          const page = await queuePage(ctx, {
            limit: 1000,
            cursor: from,
            order: 'schedule',
            match: isImageJob,
          });
          live.push(...page.items);
          from = page.cursor;
        } while (from);
        const images = (await listModels(ctx)).filter((m) => m.kind === 'image');
        const running = (await Promise.all(images.map((m) => slotsOfModel(ctx, m.id)))).flat();
        for (const s of running) {
          const t = await getTask(ctx, s.taskId);
          if (t && isImageJob(t) && ACTIVE.includes(t.status)) live.push(t);
        }
        const cancelled: string[] = [];
        for (const t of live) {
          try {
            await cancelTask(ctx, t.taskId);
            cancelled.push(t.taskId);
          } catch (error) {
            // Finished meanwhile: nothing to stop.
            if (!(error instanceof ConflictError || error instanceof NotFoundError)) throw error;
          }
        }
        return {
          message: `Stopped ${cancelled.length} job(s)`,
          cancelled: cancelled.length,
          job_ids: cancelled,
        };
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/vision/queue',
      summary:
        'The shared queue in scheduling order (priority with aging, then FIFO), and what is processing (at most `limit`)',
      query: z.object({
        limit: z.coerce.number().int().min(1).max(1000).default(50),
        cursor: z.string().min(1).max(4096).optional(),
      }),
      response: S.queueOut,
      responses: { 400: 'Invalid pagination cursor' },
      handler: async (req, ctx) => {
        const read = (limit: number, from?: string) =>
          queuePage(ctx, { limit, cursor: from, order: 'schedule' });
        // `processing`: the first `limit` running tasks (by node), not every one the fleet runs.
        const [page, counts, slots] = await Promise.all([
          pageFrom(read, req.query.limit, 0, req.query.cursor),
          readTaskCounts(ctx, { finished: false }),
          heldSlotPage(ctx, req.query.limit),
        ]);
        // Names of the nodes running something, not of the fleet.
        const names = await nameResolver(
          ctx,
          slots.map((s) => s.nodeId),
        );
        const processing = [];
        for (const s of slots) {
          const t = await getTask(ctx, s.taskId);
          if (t && ACTIVE.includes(t.status) && t.nodeId === s.nodeId)
            processing.push({
              job_id: t.taskId,
              model: t.model,
              node_id: names(s.nodeId),
              progress: t.progress,
              task_type: t.taskType,
            });
        }
        return {
          queue: page.items.map((t, i) => ({
            position: page.offset + i + 1,
            job_id: t.taskId,
            model: t.model,
            priority: t.priorityInput,
            task_type: t.taskType,
            prompt: typeof t.parameters.prompt === 'string' ? t.parameters.prompt : null,
            created_at: t.createdAt,
          })),
          // The whole queue's length, counted (task-counts.ts); `queue` is one page of it.
          length: counts.states.queued,
          limit: req.query.limit,
          cursor: page.cursor ?? null,
          processing,
        };
      },
    }),
  ];
}
