import * as z from 'zod';
import { route, type AnyRoute, type RouteSpec } from '../../core/route.js';
import { imageRef } from '../../orchestrator/resources.js';
import { buildAndDeploy, buildImage, deployImage } from './build.js';
import { RegistryClient } from './registry.js';
import { pending202, pendingCommandsBody } from '../../core/responses.js';

const MAX_REPLICAS = 100;
// Docker's distribution reference grammar: lowercase path components joined by separators.
const imageName = z
  .string()
  .max(255)
  .regex(
    /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/,
    'lowercase letters and digits, separated by ".", "_", "__", "-" or "/" (e.g. my-service or team/my-service)',
  );
const tag = z
  .string()
  .regex(
    /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/,
    'letters, digits, "_", ".", "-"; at most 128, not starting with "." or "-"',
  );
const serviceName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'letters, digits, ".", "_", "-"; at most 63');

const buildFields = z.object({
  image_name: imageName,
  tag: tag.default('latest'),
  /** On the node; its folder is the build context. Relative paths start at the agent's --build-root. */
  dockerfile_path: z
    .string()
    .min(1)
    .max(4096)
    .refine((p) => !p.includes('\0'), 'contains a NUL byte'),
  build_args: z
    .record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'build arg names: letters, digits, "_"'),
      z.string().max(64 * 1024),
    )
    .refine((r) => Object.keys(r).length <= 100, 'at most 100 build args')
    .default({}),
  /** The node whose agent builds (id or name); default: the first online node by name. */
  node_id: z.string().min(1).optional(),
});

const deployFields = z.object({
  service_name: serviceName,
  /** Places the copies on nodes labelled cluster=<cluster> (agent --labels, or POST /api/swarm/nodes/{id}/labels). */
  cluster: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'letters, digits, ".", "_", "-"')
    .optional(),
  replicas: z.number().int().min(0).max(MAX_REPLICAS).default(1),
});

export const buildBody = buildFields;
export const deployBody = deployFields.extend({ image: imageRef });
export const buildAndDeployBody = buildFields.extend(deployFields.shape);

const buildOut = z.object({
  image: z.string(),
  image_id: z.string(),
  node_id: z.string(),
  pushed: z.literal(true),
  digest: z.string().nullable(),
  log_tail: z.string(),
  command_id: z.string(),
});

/** The named service deployed: its view, what was done and where it may run. */
const deployOut = z.looseObject({
  id: z.string(),
  name: z.string(),
  image: z.string(),
  replicas: z.number().int(),
  running: z.number().int(),
  action: z.enum(['created', 'scaled']),
  cluster: z.string().nullable(),
  constraints: z.array(z.string()),
});
const deployPendingOut = pendingCommandsBody.extend({
  action: z.enum(['created', 'scaled']),
  cluster: z.string().nullable(),
  constraints: z.array(z.string()),
});

const common: Pick<RouteSpec, 'tags' | 'errorStyle' | 'scope'> = {
  tags: ['Build'],
  errorStyle: 'fastapi',
  scope: 'user',
};

const buildPending =
  'The build outlived COMMAND_WAIT_MS: command_id and pending_commands; follow it with GET /commands/{command_id} (output.imageId, output.logTail once succeeded)';
const buildResponses = {
  202: pending202(buildPending, pendingCommandsBody.extend({ command_id: z.string(), image: z.string() })),
  403: 'The node’s agent has no --build-root, or the Dockerfile is outside it',
  404: 'Unknown node',
  409: 'The node is offline, or no node is online',
  422: 'Invalid body, or the build failed (detail holds the last lines)',
  502: 'Built, but the registry refused the push; or the node could not run the build',
  503: 'REGISTRY_URL is not set',
};

export function buildRoutes(): AnyRoute[] {
  return [
    route({
      ...common,
      method: 'GET',
      path: '/api/build/registry/images',
      summary: 'Images in the configured registry (Docker Registry HTTP API v2) with their tags',
      response: z.object({
        images: z.array(z.object({ name: z.string(), tags: z.array(z.string()), full_image: z.string() })),
        registry: z.string(),
      }),
      responses: {
        502: 'The registry answered an error',
        503: 'Registry unreachable, or REGISTRY_URL not set',
      },
      handler: async (_req, ctx) => {
        const client = await RegistryClient.fromContext(ctx);
        return { images: await client.images(), registry: client.host };
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/build/build',
      summary:
        'A node’s agent builds the folder of dockerfile_path, tags it <registry>/<image_name>:<tag> and pushes it; waits up to COMMAND_WAIT_MS',
      body: buildBody,
      response: buildOut,
      responses: buildResponses,
      handler: async (req, ctx) => buildImage(ctx, req.body),
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/build/deploy',
      summary:
        'Create the named swarm service of an image, or scale it; cluster adds node.labels.cluster==<cluster>',
      body: deployBody,
      response: deployOut,
      responses: {
        201: { description: 'Created the service', schema: deployOut },
        202: pending202('Agents have not answered yet: pending command ids', deployPendingOut),
        409: 'The service runs another image or elsewhere, or no node can run it',
      },
      handler: async (req, ctx) => deployImage(ctx, req.body),
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/build/build-and-deploy',
      summary: 'Build and push, then deploy the pushed image; a failed build deploys nothing',
      body: buildAndDeployBody,
      response: z.object({ build: buildOut, deploy: deployOut }),
      responses: {
        ...buildResponses,
        201: {
          description: 'Built, and created the service',
          schema: z.object({ build: buildOut, deploy: deployOut }),
        },
        202: pending202(
          `${buildPending}; nothing is deployed yet: POST /api/build/deploy once it succeeded. Or built, and the deploy's agents have not answered yet`,
          z.union([
            pendingCommandsBody.extend({
              command_id: z.string(),
              image: z.string(),
              deployed: z.literal(false),
              deploy: z.string(),
            }),
            z.object({ build: buildOut, deploy: deployPendingOut }),
          ]),
        ),
      },
      handler: async (req, ctx) => buildAndDeploy(ctx, req.body),
    }),
  ];
}
