import * as z from 'zod';
import { ConflictError, NotFoundError } from '../core/errors.js';
import { route, type AnyRoute } from '../core/route.js';
import {
  findContainer,
  restartContainer,
  STOP_TIMEOUT_MAX_SECONDS,
  stopInstance,
} from '../orchestrator/containers.js';
import { backoffView } from '../orchestrator/views.js';
import { listServices } from '../orchestrator/model.js';
import { instancePage, instancePageQuery } from '../orchestrator/instance-pages.js';
import { imageRef, instanceResources, port } from '../orchestrator/resources.js';
import {
  checkConstraints,
  containerLogs,
  createNamedService,
  deleteNamedService,
  scaleNamedService,
  SERVICE_LOGS_PAGE_MAX,
  serviceLogs,
  serviceView,
} from '../orchestrator/services.js';
import { fleetCounts, nextCursorField } from '../nodes/nodes.js';
import { pendingCommandsBody, pending202 } from '../core/responses.js';
import { swarmCommon as common, swarmNodeRoutes } from './swarm-nodes.js';

/**
 * Fleet Commander's Swarm API over the shared model. No Docker Swarm runs: the control plane is
 * the one manager, every agent's node a worker (`swarm-nodes.ts`), a service the desired count of
 * its image (the same record the orchestrator API changes), and constraints match the nodes' labels.
 */

const MAX_REPLICAS = 100;

const serviceBody = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'letters, digits, ".", "_", "-"; at most 63'),
    image: imageRef,
    replicas: z.number().int().min(0).max(MAX_REPLICAS).default(1),
    mode: z
      .enum(['replicated', 'global'], { error: 'mode is "replicated" or "global"' })
      .default('replicated'),
    ports: z
      .array(z.object({ target_port: port, published_port: z.union([port, z.literal(0)]).optional() }))
      .max(32)
      .default([]),
    env: z
      .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*=/, 'env entries are NAME=value'))
      .max(256)
      .default([]),
    mounts: z
      .array(
        z.object({
          source: z.string().startsWith('/', 'mount sources are absolute host paths'),
          target: z.string().startsWith('/', 'mount targets are absolute container paths'),
          read_only: z.boolean().default(false),
        }),
      )
      .max(32)
      .default([]),
    constraints: z.array(z.string()).max(32).default([]),
    resources: z
      .object({
        gpu: z.number().int().min(0).max(16).optional(),
        cpu_limit: instanceResources.shape.cpu_limit,
        memory_limit: instanceResources.shape.memory_limit,
      })
      .default({}),
  })
  .superRefine((b, ctx) => {
    const published = b.ports.map((p) => p.published_port ?? 0).filter((p) => p > 0);
    if (new Set(published).size !== published.length)
      ctx.addIssue({ code: 'custom', path: ['ports'], message: 'published ports must differ' });
  });

const serviceOut = z.object({
  id: z.string(),
  name: z.string(),
  image: z.string(),
  replicas: z.number(),
  running: z.number(),
  mode: z.enum(['replicated', 'global']),
});

/** A service once its starts settled; `failed` lists the copies that could not start. */
const settledServiceOut = serviceOut.extend({
  failed: z.array(z.object({ id: z.string(), error: z.string() })).optional(),
});
/** One copy's last lines, or why its node could not read them. */
const copyLogsOut = z.object({
  container_id: z.string(),
  node_id: z.string(),
  logs: z.string().optional(),
  error: z.string().optional(),
});
const backoffOut = z.object({ reason: z.string(), attempt: z.number().int(), next_try_at: z.string() });

const serviceParams = z.object({ service_id: z.string().min(1) });
const containerParams = z.object({ container_id: z.string().min(1) });
const tailQuery = z.object({ tail: z.coerce.number().int().min(1).max(10_000).default(100) });

/** Calls that wait for agents: 202 past COMMAND_WAIT_MS. */
const waits = {
  202: pending202(
    'Agents have not answered within COMMAND_WAIT_MS: pending command ids (GET /commands/{command_id})',
  ),
};

export function swarmRoutes(): AnyRoute[] {
  return [
    ...swarmNodeRoutes(),
    route({
      ...common,
      method: 'GET',
      path: '/api/swarm/services',
      summary: 'Services: every image with a desired count, named or not',
      response: z.array(serviceOut),
      handler: async (_req, ctx) => {
        const services = (await listServices(ctx)).filter((s) => s.desiredCount > 0 || s.serviceName);
        return Promise.all(services.map((s) => serviceView(ctx, s)));
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/swarm/services',
      summary: 'Create a named service; waits for its copies like the orchestrator’s starts',
      body: serviceBody,
      response: settledServiceOut,
      successStatus: 201,
      responses: {
        202: pending202('Agents have not answered yet: pending command ids'),
        404: 'The service was deleted while its copies started',
        409: 'Name or image taken, or no node can run it',
        422: 'The node refused every copy (its own policy: a mount of /, the engine socket or a host path it does not allow; or a limit it cannot enforce); nothing was kept',
      },
      handler: async (req, ctx) => {
        const b = req.body;
        checkConstraints(b.constraints, ['body', 'constraints']);
        const env = Object.fromEntries(
          b.env.map((e) => {
            const i = e.indexOf('=');
            return [e.slice(0, i), e.slice(i + 1)];
          }),
        );
        return createNamedService(ctx, {
          name: b.name,
          imageId: b.image,
          replicas: b.replicas,
          global: b.mode === 'global',
          ports: b.ports.map((p) => ({ containerPort: p.target_port, hostPort: p.published_port ?? 0 })),
          env,
          volumes: b.mounts.map((m) => ({
            hostPath: m.source,
            containerPath: m.target,
            readOnly: m.read_only,
          })),
          constraints: b.constraints,
          resources: {
            ...(b.resources.cpu_limit ? { cpu_limit: b.resources.cpu_limit } : {}),
            ...(b.resources.memory_limit ? { memory_limit: b.resources.memory_limit } : {}),
            ...(b.resources.gpu ? { gpus: b.resources.gpu } : {}),
          },
        });
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/swarm/services/{service_id}/scale',
      summary: 'Set the number of copies (id or name)',
      params: serviceParams,
      body: z.object({ replicas: z.number().int().min(0).max(MAX_REPLICAS) }),
      response: settledServiceOut,
      responses: {
        ...waits,
        404: 'Unknown service, or deleted while its copies started',
        409: 'No node can run more copies',
      },
      handler: async (req, ctx) => scaleNamedService(ctx, req.params.service_id, req.body.replicas),
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/swarm/services/{service_id}/logs',
      summary: 'The last lines of a page of copies (running or exited), each read from its node',
      params: serviceParams,
      query: tailQuery.extend({
        limit: z.coerce
          .number()
          .int()
          .min(1)
          .max(SERVICE_LOGS_PAGE_MAX)
          .default(SERVICE_LOGS_PAGE_MAX)
          .describe(
            `Copies a page, by id (1-${SERVICE_LOGS_PAGE_MAX}, default ${SERVICE_LOGS_PAGE_MAX}: a small service in one page); copies neither running nor exited are passed over`,
          ),
        cursor: instancePageQuery.cursor.describe("A page's `next_cursor`: the copies after it"),
      }),
      response: z.object({
        id: z.string(),
        name: z.string(),
        logs: z.array(copyLogsOut),
        next_cursor: nextCursorField,
      }),
      responses: {
        202: pending202(
          "Agents have not answered within COMMAND_WAIT_MS: pending command ids (GET /commands/{command_id}), the page's `containers` and its `next_cursor`",
          pendingCommandsBody.extend({ containers: z.array(z.string()), next_cursor: nextCursorField }),
        ),
        400: 'Invalid pagination cursor',
        404: 'Unknown service',
        502: 'A node could not read the logs',
      },
      handler: async (req, ctx) => serviceLogs(ctx, req.params.service_id, req.query),
    }),
    route({
      ...common,
      method: 'DELETE',
      path: '/api/swarm/services/{service_id}',
      summary: 'Delete a service: its copies are removed and its name freed',
      params: serviceParams,
      response: z.object({ status: z.literal('deleted'), id: z.string(), name: z.string() }),
      responses: { 404: 'Unknown service' },
      handler: async (req, ctx) => ({
        status: 'deleted' as const,
        ...(await deleteNamedService(ctx, req.params.service_id)),
      }),
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/swarm/containers',
      summary:
        'The containers the control plane runs, fleet-wide, a page at a time (a small fleet in one page)',
      query: z.object(instancePageQuery),
      responses: { 400: 'Invalid pagination cursor' },
      response: z.object({
        containers: z.array(
          z.object({
            id: z.string(),
            name: z.string(),
            image: z.string(),
            status: z.string(),
            backoff: backoffOut.optional(),
            node_id: z.string(),
            ports: z.record(z.string(), z.number()),
          }),
        ),
        total: z.number().int(),
        server: z.string(),
        next_cursor: nextCursorField,
      }),
      handler: async (req, ctx) => {
        const [page, nodes] = await Promise.all([instancePage(ctx, req.query), fleetCounts(ctx)]);
        return {
          containers: page.instances.map((i) => ({
            id: i.instanceId,
            name: i.name,
            image: i.imageId,
            status: backoffView(i) ? 'backoff' : i.status,
            ...(backoffView(i) ? { backoff: backoffView(i) } : {}),
            node_id: i.nodeId,
            ports: Object.fromEntries(
              i.ports
                .filter((p) => p.hostPort)
                .map((p) => [`${p.containerPort}/${p.protocol || 'tcp'}`, p.hostPort]),
            ),
          })),
          total: page.total,
          server: `control plane (${nodes.online} of ${nodes.nodes} nodes online)`,
          next_cursor: page.cursor ?? null,
        };
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/swarm/containers/{container_id}/restart',
      summary: 'Restart a running container in place',
      params: containerParams,
      response: z.object({ restarted: z.literal(true), container_id: z.string(), name: z.string() }),
      responses: {
        ...waits,
        404: 'Unknown container',
        409: 'Not running',
        502: 'The node failed to restart it',
      },
      handler: async (req, ctx) => restartContainer(ctx, req.params.container_id),
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/swarm/containers/{container_id}/stop',
      summary: 'Stop a container: one copy fewer wanted (as POST /containers/{imageId}/stop)',
      params: containerParams,
      /** Seconds between SIGTERM and SIGKILL, as `docker stop -t`. */
      query: z.object({ timeout: z.coerce.number().int().min(0).max(STOP_TIMEOUT_MAX_SECONDS).optional() }),
      response: z.object({ stopped: z.boolean() }),
      responses: {
        ...waits,
        404: 'Unknown container',
        409: 'Being removed, or changed concurrently (retry)',
        502: 'The node failed to stop it',
      },
      handler: async (req, ctx) => {
        const inst = await findContainer(ctx, req.params.container_id);
        if (!inst || inst.status === 'removed')
          throw new NotFoundError(`Container ${req.params.container_id} not found`);
        return stopInstance(ctx, inst.imageId, inst.instanceId, req.query.timeout);
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/swarm/containers/{container_id}/start',
      summary: 'Start a container: a running one answers at once; a stopped copy gave up its place',
      params: containerParams,
      response: z.object({
        started: z.literal(true),
        container_id: z.string(),
        status: z.enum(['running', 'pending']),
      }),
      responses: { 404: 'Unknown container', 409: 'Stopped: scale its service up instead' },
      handler: async (req, ctx) => {
        const inst = await findContainer(ctx, req.params.container_id);
        if (!inst || inst.status === 'removed')
          throw new NotFoundError(`Container ${req.params.container_id} not found`);
        if (inst.status === 'running' || inst.status === 'pending')
          return { started: true as const, container_id: inst.instanceId, status: inst.status };
        throw new ConflictError(
          `Container ${inst.name} is ${inst.status}: stopped copies are not restarted; scale ${inst.imageId} up (POST /api/swarm/services/{service_id}/scale) for a new one`,
        );
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/swarm/containers/{container_id}/logs',
      summary: 'The last lines of one container, read from its node',
      params: containerParams,
      query: tailQuery,
      response: z.object({ id: z.string(), name: z.string(), logs: z.string() }),
      responses: { ...waits, 404: 'Unknown container', 502: 'The node could not read the logs' },
      handler: async (req, ctx) => {
        const inst = await findContainer(ctx, req.params.container_id);
        if (!inst || inst.status === 'removed')
          throw new NotFoundError(`Container ${req.params.container_id} not found`);
        return containerLogs(ctx, inst, req.query.tail);
      },
    }),
  ];
}
