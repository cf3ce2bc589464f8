import * as z from 'zod';
import { NotFoundError } from '../core/errors.js';
import { route, type AnyRoute, type RouteSpec } from '../core/route.js';
import {
  declareModel,
  isBuiltIn,
  listModels,
  modelDeclaration,
  removeDeclaredModel,
  MODEL_ID_PATTERN,
} from './catalogue.js';
import { modelBurstState } from '../novita/model-burst.js';
import { assignModel, loadTimesOf, unloadModel } from './model-ops.js';
import { holderWorkers } from './workers.js';
import { CLUSTER_PRIORITIES } from './validation.js';
import { assignmentsView, catalogueView } from './views.js';
import * as S from './schemas.js';

const common: Pick<RouteSpec, 'errorStyle' | 'scope'> = {
  errorStyle: 'fastapi',
  scope: 'user',
};

/** The Cluster Manager's Models API: assignments to workers, and the model catalogue. */
export function clusterModelRoutes(): AnyRoute[] {
  return [
    route({
      ...common,
      tags: ['Models'],
      method: 'POST',
      path: '/models/assign',
      summary: 'Assign a model to workers (preload starts its server now)',
      body: z.object({
        model_name: z.string().min(1),
        worker_ids: z.array(z.string().min(1)).min(1).max(100),
        preload: z.boolean().default(true),
        priority: z.enum(CLUSTER_PRIORITIES).default('normal'),
      }),
      response: S.assignOut,
      responses: {
        404: 'Unknown worker',
        409: 'Worker offline, or the model does not fit',
        422: 'Unknown model',
      },
      handler: async (req, ctx) => assignModel(ctx, req.body),
    }),
    route({
      ...common,
      tags: ['Models'],
      method: 'POST',
      path: '/models/unload',
      summary: 'Unload a model from workers (force requeues its running tasks)',
      body: z.object({
        model_name: z.string().min(1),
        worker_ids: z.array(z.string().min(1)).max(100).optional(),
        force: z.boolean().default(false),
      }),
      response: S.unloadOut,
      responses: { 404: 'Unknown worker', 409: 'The model has running tasks and force is false' },
      handler: async (req, ctx) => unloadModel(ctx, req.body),
    }),
    route({
      ...common,
      tags: ['Models'],
      method: 'GET',
      path: '/models/assignments',
      summary: 'Models per worker',
      response: S.assignmentsOut,
      handler: async (_req, ctx) => {
        // The holders of the catalogue's models (the residency index), not the fleet.
        const catalogue = await listModels(ctx);
        const workers = await holderWorkers(
          ctx,
          catalogue.map((m) => m.id),
          { slots: false },
        );
        // Load times of the workers listed (those holding a model) only.
        const holding = workers.filter((w) => w.resident.length || w.reported.length).map((w) => w.id);
        const loadTimes = await loadTimesOf(ctx, holding);
        return assignmentsView(workers, catalogue, loadTimes);
      },
    }),
    route({
      ...common,
      tags: ['Models'],
      method: 'GET',
      path: '/models/catalog',
      summary: 'The model catalogue (ours): built-in models and declared ones',
      response: z.object({ models: z.array(S.catalogueModelOut) }),
      handler: async (_req, ctx) => ({
        models: await Promise.all(
          (await listModels(ctx)).map(async (m) => ({
            ...catalogueView(m, isBuiltIn(m.id)),
            // A model with `cloud`: its rented instance, or why the last burst was refused.
            ...(m.cloud ? { burst: await modelBurstState(ctx, m.id) } : {}),
          })),
        ),
      }),
    }),
    route({
      ...common,
      tags: ['Models'],
      method: 'PUT',
      path: '/models/catalog/{model_id}',
      summary: 'Declare a model (ours): its server image, API port and protocol, GPU memory, limits',
      params: z.object({ model_id: z.string().regex(MODEL_ID_PATTERN) }),
      body: modelDeclaration,
      response: S.catalogueModelOut,
      handler: async (req, ctx) =>
        catalogueView(
          await declareModel(ctx, { ...req.body, id: req.params.model_id }),
          isBuiltIn(req.params.model_id),
        ),
    }),
    route({
      ...common,
      tags: ['Models'],
      method: 'DELETE',
      path: '/models/catalog/{model_id}',
      summary: 'Remove a declaration (ours); a built-in model of that id shows again',
      params: z.object({ model_id: z.string().min(1) }),
      response: z.object({ deleted: z.string(), built_in: z.boolean() }),
      responses: { 404: 'No declaration of that id' },
      handler: async (req, ctx) => {
        if (!(await removeDeclaredModel(ctx, req.params.model_id)))
          throw new NotFoundError(`No declared model ${req.params.model_id}`);
        return { deleted: req.params.model_id, built_in: isBuiltIn(req.params.model_id) };
      },
    }),
  ];
}
