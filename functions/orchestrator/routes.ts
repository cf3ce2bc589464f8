import * as z from 'zod';
import { NotFoundError, ValidationError } from '../core/errors.js';
import { reply } from '../core/http.js';
import { route, type AnyRoute, type RouteSpec } from '../core/route.js';
import { commandView, getCommand } from '../nodes/commands.js';
import {
  deleteContainer,
  startContainers,
  startOrReuse,
  stopInstance,
  updateResources,
  STOP_TIMEOUT_MAX_SECONDS,
} from './containers.js';
import {
  deleteEndpoint,
  endpointIn,
  endpointOut,
  endpointStatus,
  listEndpoints,
  setEndpointStatus,
  upsertEndpoint,
} from './registry.js';
import { instanceHealth, listContainers, listImageInstances, listImages } from './views.js';
import { instancePageQuery } from './instance-pages.js';
import { nextCursorField } from '../nodes/nodes.js';
import { imageRef, instanceResources, port } from './resources.js';
import { detailedHealth, integrationTest, systemResources } from './system.js';
import { boolQuery } from '../core/query.js';
import { commandOut, pending202 } from '../core/responses.js';

/** Most copies one request may add. */
export const MAX_COUNT = 100;

const count = z
  .number()
  .int()
  .min(1, 'count must be at least 1')
  .max(MAX_COUNT, `count must be at most ${MAX_COUNT}`);

/** Not in the documented models: optional extensions this control plane needs to place and run copies. */
const startExtensions = {
  /** Container ports to publish; each running copy registers one endpoint per port. */
  ports: z.array(port).max(32).optional(),
  env: z.record(z.string(), z.string()).optional(),
  command: z.array(z.string()).optional(),
  /** Run on this node only (id or name); unknown → 422. */
  node_id: z.string().min(1).optional(),
  /** Host address published ports bind to; 127.0.0.1 when not given (0.0.0.0: every interface). */
  host_ip: z.union([z.ipv4(), z.ipv6()]).optional(),
};

const startBody = z.object({
  count: count.default(1),
  resources: instanceResources.optional(),
  ...startExtensions,
});
const startContainerBody = z.object({
  count: count.default(1),
  resources: instanceResources.extend({ image: imageRef }),
  ...startExtensions,
});

const imageParams = z.object({ imageId: imageRef });

const resourcesOut = z.record(z.string(), z.union([z.string(), z.number()]));
const pendingOut = z.object({ status: z.literal('pending'), pending_commands: z.array(z.string()) });
/** Every copy a start asked for failed; the desired count stays and the copies retry with backoff. */
const startFailures = {
  422: 'No node could pull the image (`IMAGE_PULL_FAILED`)',
  502: 'The engine could not start the container (`START_FAILED`)',
};

const portsOut = z.record(z.string(), z.string()).describe('"<container port>/<protocol>" → host port');
const containerOut = z.object({
  id: z.string(),
  name: z.string(),
  image: z.string(),
  status: z.string(),
  backoff: z.object({ reason: z.string(), attempt: z.number().int(), next_try_at: z.string() }).optional(),
  ports: portsOut,
  created_at: z.string(),
  resources: resourcesOut,
  node_id: z.string(),
});
const startedOut = z.object({
  ok: z.literal(true),
  action: z.enum(['created', 'reused']),
  image: z.string(),
  container_id: z.string(),
  name: z.string(),
  status: z.string(),
  ports: portsOut,
});

const componentOut = z.object({ status: z.enum(['OK', 'WARNING', 'ERROR']), message: z.string() });
const detailedHealthOut = z.object({
  status: z.enum(['OK', 'DEGRADED', 'ERROR']),
  timestamp: z.string(),
  components: z.object({
    docker: componentOut,
    database: componentOut,
    container_manager: componentOut,
    system_resources: z.object({
      status: z.enum(['OK', 'WARNING']),
      cpu_usage: z.string(),
      memory_usage: z.string(),
    }),
  }),
});
const checkOut = z.object({ status: z.enum(['PASS', 'FAIL']), message: z.string() });
const usage = { usage_percent: z.number() };

const changeResponses = {
  202: pending202(
    'Agents have not answered within COMMAND_WAIT_MS: {"status":"pending","pending_commands":[...]}',
  ),
};

const common: Pick<RouteSpec, 'tags' | 'errorStyle' | 'scope'> = {
  tags: ['Orchestrator'],
  errorStyle: 'fastapi',
  scope: 'user',
};

/** The NVIDIA Orchestrator API, fleet-wide: containers run on the nodes' agents. */
export function orchestratorRoutes(): AnyRoute[] {
  return [
    route({
      ...common,
      tags: ['Health'],
      method: 'GET',
      path: '/health/detailed',
      summary: 'Table, node agents, managed containers and fleet resources',
      response: detailedHealthOut,
      responses: {
        503: { description: 'The table is unreachable (status ERROR)', schema: detailedHealthOut },
      },
      handler: async (_req, ctx) => {
        const body = await detailedHealth(ctx);
        return reply(body.status === 'ERROR' ? 503 : 200, body);
      },
    }),
    route({
      ...common,
      tags: ['Health'],
      method: 'GET',
      path: '/test/integration',
      summary: 'Integration self-test against the table and the node agents',
      response: z.object({
        timestamp: z.string(),
        tests: z.object({
          docker_connection: checkOut,
          container_listing: checkOut,
          database: checkOut,
          system_resources: checkOut,
          health_monitoring: checkOut,
        }),
        overall_status: z.enum(['PASSED', 'FAILED']),
      }),
      handler: async (_req, ctx) => integrationTest(ctx),
    }),
    route({
      ...common,
      tags: ['Health'],
      method: 'GET',
      path: '/system/resources',
      summary: 'Resources of every online node summed, or of one node (?node_id=)',
      query: z.object({ node_id: z.string().min(1).optional() }),
      response: z.object({
        system: z.object({
          cpu: z.object({
            total_cores: z.number(),
            current_usage_percent: z.number(),
            available_cores: z.number(),
          }),
          memory: z.object({ total_gb: z.number(), available_gb: z.number(), ...usage }),
          disk: z.object({ total_gb: z.number(), free_gb: z.number(), ...usage }),
        }),
        docker: z.object({
          containers_running: z.number().int(),
          total_cpu_usage: z.number(),
          total_memory_usage_mb: z.number(),
        }),
      }),
      handler: async (req, ctx) => systemResources(ctx, req.query.node_id),
    }),
    route({
      ...common,
      method: 'GET',
      path: '/images',
      summary: 'Images with their desired state and running counts',
      response: z.object({
        images: z.array(
          z.object({
            image: z.string(),
            desired_count: z.number(),
            current_running: z.number(),
            total_instances: z.number(),
            resources: resourcesOut,
            rollout: z
              .object({
                started_at: z.string(),
                updated: z.number().int().describe('Copies given the limits so far'),
                finished_at: z.string().nullable(),
              })
              .optional()
              .describe(
                'The last limits change (PUT /containers/{imageId}/resources) as it reaches the copies',
              ),
          }),
        ),
      }),
      handler: async (_req, ctx) => listImages(ctx),
    }),
    route({
      ...common,
      method: 'POST',
      path: '/start/container',
      summary: 'Start, or reuse, a container of an image',
      body: startContainerBody,
      response: startedOut,
      responses: { ...changeResponses, ...startFailures, 409: 'No online node can run it' },
      handler: async (req, ctx) => {
        const { image, ...resources } = req.body.resources;
        return startOrReuse(ctx, image, { ...req.body, resources });
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/containers',
      summary: 'Managed containers, a page at a time (a small fleet in one page)',
      query: z.object({
        ...instancePageQuery,
        node_id: z
          .string()
          .min(1)
          .max(200)
          .optional()
          .describe("Only this node's containers (every one, one page)"),
      }),
      response: z.object({
        containers: z.array(containerOut),
        total: z.number().int(),
        next_cursor: nextCursorField,
      }),
      responses: { 400: 'Invalid pagination cursor' },
      handler: async (req, ctx) => listContainers(ctx, req.query),
    }),
    route({
      ...common,
      method: 'GET',
      path: '/containers/instances/{instanceId}/health',
      summary: 'Health of one instance: healthy, warning (75-90%), critical (>90%) or stopped',
      params: z.object({ instanceId: z.string().min(1) }),
      response: z.object({
        cpu_usage: z.number(),
        memory_usage: z.number(),
        disk_usage: z.number(),
        status: z.enum(['healthy', 'warning', 'critical', 'stopped']),
        errors: z.array(z.string()).nullable(),
      }),
      responses: { 404: 'Unknown instance' },
      handler: async (req, ctx) => instanceHealth(ctx, req.params.instanceId),
    }),
    route({
      ...common,
      method: 'GET',
      path: '/containers/{imageId}/instances',
      summary: 'Instances of one image, a page at a time (a small image in one page)',
      greedy: ['imageId'],
      params: imageParams,
      query: z.object({
        ...instancePageQuery,
        limit: instancePageQuery.limit.describe(
          'Copies a page, by id (default 1,000: a small image in one page)',
        ),
      }),
      response: z.object({
        instances: z.array(
          z.object({
            id: z.string(),
            status: z.string(),
            endpoint: z.string().nullable(),
            resources: resourcesOut,
            node_id: z.string(),
          }),
        ),
        next_cursor: nextCursorField,
      }),
      responses: { 400: 'Invalid pagination cursor' },
      handler: async (req, ctx) => listImageInstances(ctx, req.params.imageId, req.query),
    }),
    route({
      ...common,
      method: 'POST',
      path: '/containers/{imageId}/start',
      summary: 'Start `count` more containers of an image',
      greedy: ['imageId'],
      params: imageParams,
      // Every StartBody field is optional, the body itself too.
      body: startBody.optional(),
      response: z.object({ started: z.array(z.string()) }).or(pendingOut),
      responses: { ...changeResponses, ...startFailures, 409: 'No online node can run it' },
      handler: async (req, ctx) => startContainers(ctx, req.params.imageId, req.body ?? { count: 1 }),
    }),
    route({
      ...common,
      method: 'POST',
      path: '/containers/{imageId}/stop',
      summary: 'Stop one instance (one copy fewer wanted)',
      greedy: ['imageId'],
      params: imageParams,
      body: z.object({
        instanceId: z.string().min(1),
        /** Seconds between SIGTERM and SIGKILL (the engine's default is 10). */
        timeout: z.number().int().min(0).max(STOP_TIMEOUT_MAX_SECONDS).optional(),
      }),
      response: z.object({ stopped: z.boolean() }).or(pendingOut),
      responses: {
        ...changeResponses,
        404: 'Unknown instance',
        409: 'The instance is being removed, or changed concurrently (retry)',
        502: 'The node failed to stop it (the detail has its error)',
      },
      handler: async (req, ctx) =>
        stopInstance(ctx, req.params.imageId, req.body.instanceId, req.body.timeout),
    }),
    route({
      ...common,
      method: 'DELETE',
      path: '/containers/{idOrName}',
      summary: 'Delete a container by id, name or engine container id',
      params: z.object({ idOrName: z.string().min(1) }),
      query: z.object({ force: boolQuery.default(false) }),
      response: z.object({ deleted: z.boolean(), container_id: z.string(), name: z.string() }).or(pendingOut),
      responses: {
        ...changeResponses,
        404: 'Unknown container',
        409: 'Running and force is false, or changed concurrently (retry)',
        502: 'The node failed to remove it',
      },
      handler: async (req, ctx) => deleteContainer(ctx, req.params.idOrName, req.query.force),
    }),
    route({
      ...common,
      method: 'PUT',
      path: '/containers/{imageId}/resources',
      summary: 'New limits for an image and its running containers',
      greedy: ['imageId'],
      params: imageParams,
      body: instanceResources.refine((r) => Object.values(r).some((v) => v !== undefined), {
        message: 'at least one of cpu_limit, memory_limit, disk_limit is required',
      }),
      response: z
        .object({
          updated: z.array(z.string()).describe("This request's page of copies with the new limits"),
          failed: z.array(z.object({ id: z.string(), error: z.string() })).optional(),
          pending: z
            .number()
            .int()
            .describe('About how many copies the rollout updates in the background (GET /images `rollout`)'),
        })
        .or(pendingOut.extend({ updated: z.array(z.string()), pending: z.number().int() })),
      responses: { ...changeResponses, 404: 'Unknown image' },
      handler: async (req, ctx) => updateResources(ctx, req.params.imageId, req.body),
    }),
    route({
      ...common,
      tags: ['Commands'],
      method: 'GET',
      path: '/commands/{command_id}',
      summary: 'One command sent to a node agent, with its result once reported',
      params: z.object({ command_id: z.string().min(1) }),
      response: commandOut,
      responses: { 404: 'Unknown command' },
      handler: async (req, ctx) => {
        const c = await getCommand(ctx, req.params.command_id);
        if (!c) throw new NotFoundError(`Command ${req.params.command_id} not found`);
        return commandView(c);
      },
    }),
    route({
      ...common,
      tags: ['Registry'],
      method: 'GET',
      path: '/registry/endpoints',
      summary: 'Registered endpoints (?image_id= filters), a page at a time (a small fleet in one page)',
      query: z.object({
        image_id: z.string().min(1).optional(),
        ...instancePageQuery,
        limit: instancePageQuery.limit.describe('Endpoints a page, by image and id (default 1,000)'),
        cursor: instancePageQuery.cursor.describe("A page's `next_cursor`: the endpoints after it"),
      }),
      response: z.object({ endpoints: z.array(endpointOut), next_cursor: nextCursorField }),
      responses: { 400: 'Invalid pagination cursor' },
      handler: async (req, ctx) => listEndpoints(ctx, req.query),
    }),
    route({
      ...common,
      tags: ['Registry'],
      method: 'POST',
      path: '/registry/endpoints',
      summary: 'Register or update a service endpoint',
      body: endpointIn,
      response: endpointOut,
      handler: async (req, ctx) => upsertEndpoint(ctx, req.body),
    }),
    route({
      ...common,
      tags: ['Registry'],
      method: 'DELETE',
      path: '/registry/endpoints/{endpoint_id}',
      summary: 'Delete an endpoint',
      params: z.object({ endpoint_id: z.string().min(1) }),
      response: z.object({ ok: z.literal(true) }),
      responses: { 404: 'Unknown endpoint' },
      handler: async (req, ctx) => {
        await deleteEndpoint(ctx, req.params.endpoint_id);
        return { ok: true as const };
      },
    }),
    route({
      ...common,
      tags: ['Registry'],
      method: 'PUT',
      path: '/registry/endpoints/{endpoint_id}/status',
      summary: 'Set an endpoint UP or DOWN (`?status=`, or `{"status": ...}` in the body)',
      params: z.object({ endpoint_id: z.string().min(1) }),
      query: z.object({ status: endpointStatus.optional() }),
      body: z.object({ status: endpointStatus }).optional(),
      response: endpointOut,
      responses: { 404: 'Unknown endpoint' },
      handler: async (req, ctx) => {
        const status = req.query.status ?? req.body?.status;
        if (!status)
          throw new ValidationError([
            { loc: ['query', 'status'], msg: 'field required', type: 'value_error.missing' },
          ]);
        return setEndpointStatus(ctx, req.params.endpoint_id, status);
      },
    }),
  ];
}
