import type { AppContext } from '../../core/context.js';
import { ConflictError, HttpError, NotFoundError, ForbiddenError, UpstreamError } from '../../core/errors.js';
import { Reply } from '../../core/http.js';
import { BUILD_ERRORS, imageBuildOutput } from '../../../protocol/build.js';
import { dispatchCommand, type CommandItem } from '../../nodes/commands.js';
import { eligibleGroups, isOnline, resolveNode, type NodeItem } from '../../nodes/nodes.js';
import { settle } from '../../nodes/settle.js';
import { createNamedService, findService, scaleNamedService } from '../../orchestrator/services.js';
import { registryTarget } from './registry.js';

/**
 * The Build API: a node's agent builds a folder it holds (image.build), tags the image for the
 * configured registry and pushes it; deploy turns an image into a named swarm service.
 */

export interface BuildInput {
  image_name: string;
  tag: string;
  dockerfile_path: string;
  build_args: Record<string, string>;
  node_id?: string | undefined;
}

export interface DeployInput {
  image: string;
  service_name: string;
  cluster?: string | undefined;
  replicas: number;
}

export interface BuildResult {
  image: string;
  image_id: string;
  node_id: string;
  pushed: true;
  digest: string | null;
  log_tail: string;
  command_id: string;
}

/** The node asked for (online), or the first by name of the eligible-node index's first group (online, not cordoned). */
async function buildNode(ctx: AppContext, ref: string | undefined): Promise<NodeItem> {
  if (ref !== undefined) {
    const node = await resolveNode(ctx, ref);
    if (!node) throw new NotFoundError(`Node ${ref} not found`);
    if (!isOnline(node, ctx))
      throw new ConflictError(`Node ${node.nodeName} is offline: its agent cannot build`, 'NODE_OFFLINE');
    return node;
  }
  for await (const group of eligibleGroups(ctx)) return group.sort((a, b) => a.nodeName.localeCompare(b.nodeName))[0]!;
  throw new ConflictError('No node is online to build on: start an agent with --build-root', 'NO_NODE');
}

function buildError(c: CommandItem | undefined, node: NodeItem, image: string): HttpError {
  const reason = c?.error ?? 'no result';
  switch (c?.output?.['errorType']) {
    case BUILD_ERRORS.disabled:
      return new ForbiddenError(
        `Image builds are disabled on node ${node.nodeName}: restart its agent with --build-root <dir> (or FLEET_BUILD_ROOT=<dir>) to allow builds of folders under <dir>`,
      );
    case BUILD_ERRORS.path:
      return new ForbiddenError(`Node ${node.nodeName} refused the build context: ${reason}`);
    case BUILD_ERRORS.build:
      return new HttpError(422, `The build of ${image} failed on ${node.nodeName}: ${reason}`);
    case BUILD_ERRORS.push:
      return new UpstreamError(`The push of ${image} failed on ${node.nodeName}: ${reason}`);
    default:
      return new UpstreamError(`The build of ${image} could not run on ${node.nodeName}: ${reason}`);
  }
}

/**
 * Sends image.build and waits like the orchestrator's calls: the result, or past COMMAND_WAIT_MS
 * 202 with the command id to follow (GET /commands/{command_id}).
 */
export async function buildImage(ctx: AppContext, input: BuildInput): Promise<BuildResult | Reply> {
  const registry = registryTarget(ctx);
  const node = await buildNode(ctx, input.node_id);
  const image = `${registry.host}/${input.image_name}:${input.tag}`;
  const commandId = await dispatchCommand(ctx, node.nodeId, {
    type: 'image.build',
    image,
    dockerfilePath: input.dockerfile_path,
    buildArgs: input.build_args,
    push: true,
    insecureRegistry: registry.insecure,
    timeoutSeconds: 3600,
  });
  const out = await settle(
    ctx,
    [commandId],
    async ([c]) => {
      if (!c || c.status !== 'succeeded') throw buildError(c, node, image);
      const parsed = imageBuildOutput.safeParse(c.output ?? {});
      if (!parsed.success || !parsed.data.pushed)
        throw new UpstreamError(`The agent of ${node.nodeName} answered an unreadable build result`);
      return {
        image,
        image_id: parsed.data.imageId,
        node_id: node.nodeId,
        pushed: true as const,
        digest: parsed.data.digest,
        log_tail: parsed.data.logTail,
        command_id: commandId,
      };
    },
    { command_id: commandId, node_id: node.nodeId, image, follow: `GET /commands/${commandId}` },
  );
  return out as BuildResult | Reply;
}

export const clusterConstraint = (cluster: string) => `node.labels.cluster==${cluster}`;

/** Creates the named service, or scales it when it already runs this image where asked. */
export async function deployImage(ctx: AppContext, input: DeployInput) {
  const constraints = input.cluster ? [clusterConstraint(input.cluster)] : [];
  const existing = await findService(ctx, input.service_name);
  let out: unknown;
  let action: 'created' | 'scaled';
  if (existing && existing.serviceName === input.service_name && existing.desiredCount > 0) {
    if (existing.imageId !== input.image)
      throw new ConflictError(
        `Service ${input.service_name} runs ${existing.imageId}: delete it (DELETE /api/swarm/services/${input.service_name}) or deploy ${input.image} under another name`,
      );
    const held = existing.constraints ?? [];
    if (held.length !== constraints.length || held.some((c) => !constraints.includes(c)))
      throw new ConflictError(
        `Service ${input.service_name} runs with constraints [${held.join(', ')}], not [${constraints.join(', ')}]: delete it first to move it`,
      );
    out = await scaleNamedService(ctx, input.service_name, input.replicas);
    action = 'scaled';
  } else {
    out = await createNamedService(ctx, {
      name: input.service_name,
      imageId: input.image,
      replicas: input.replicas,
      ports: [],
      env: {},
      volumes: [],
      constraints,
      resources: {},
    });
    action = 'created';
  }
  const extra = { action, cluster: input.cluster ?? null, constraints };
  if (out instanceof Reply) return new Reply(out.status, { ...(out.body as object), ...extra }, out.headers);
  return new Reply(action === 'created' ? 201 : 200, { ...(out as object), ...extra });
}

/** Build, then deploy what was pushed; a failed build throws before anything is deployed. */
export async function buildAndDeploy(
  ctx: AppContext,
  input: BuildInput & Omit<DeployInput, 'image'>,
) {
  const built = await buildImage(ctx, input);
  if (built instanceof Reply) {
    // The build outlived the wait: nothing is deployed; the client deploys once it succeeded.
    const body = built.body as Record<string, unknown>;
    return new Reply(202, {
      ...body,
      deployed: false,
      deploy: `the build is still running: once GET /commands/${String(body['command_id'])} shows succeeded, POST /api/build/deploy with image ${String(body['image'])}`,
    });
  }
  const deployed = await deployImage(ctx, {
    image: built.image,
    service_name: input.service_name,
    cluster: input.cluster,
    replicas: input.replicas,
  });
  if (deployed instanceof Reply) return new Reply(deployed.status, { build: built, deploy: deployed.body }, deployed.headers);
  return { build: built, deploy: deployed };
}
