import { createHash } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { ConflictError, HttpError, NotFoundError, ValidationError, UpstreamError } from '../core/errors.js';
import { claimName, releaseName } from '../core/name-guard.js';
import { swarmKeys } from '../core/keys.js';
import { dispatchCommand, type CommandItem } from '../nodes/commands.js';
import type { StoreItem } from '../ports/store.js';
import { parseConstraint } from './constraints.js';
import { changeService, nextService } from './desired-state.js';
import { failures, settle } from '../nodes/settle.js';
import { getService, listServices, type InstanceItem, type ServiceItem } from './model.js';
import { imageInstanceCounts } from './instance-counts.js';
import { imageInstancePage } from './instance-pages.js';
import { allRefused, startRefused } from './observation.js';
import { reconcile } from './reconciler.js';
import type { InstanceResources } from './resources.js';

/**
 * Named services (the Fleet Commander Swarm API) over the orchestrator's desired state: a service
 * is the desired count of one image, with a unique name, placement constraints, mounts and fixed
 * host ports. The reconciler runs it like any other image, so both APIs see the same copies.
 */
export interface NamedServiceInput {
  name: string;
  imageId: string;
  replicas: number;
  /** Container port → fixed host port (0: the engine picks one). */
  ports: { containerPort: number; hostPort: number }[];
  env: Record<string, string>;
  volumes: { hostPath: string; containerPath: string; readOnly: boolean }[];
  constraints: string[];
  resources: InstanceResources;
  /** One copy on each eligible node instead of `replicas`. */
  global?: boolean;
}

/** Stable, opaque id of the service of an image (Swarm ids are opaque too). */
export const serviceId = (imageId: string) =>
  `svc-${createHash('sha256').update(imageId).digest('hex').slice(0, 16)}`;

/** Refuses constraints that do not parse, naming each one's position. */
export function checkConstraints(constraints: string[], loc: (string | number)[]): void {
  const issues = constraints.flatMap((c, i) => {
    const parsed = parseConstraint(c);
    return typeof parsed === 'string'
      ? [{ loc: [...loc, i], msg: `${c}: ${parsed}`, type: 'value_error' }]
      : [];
  });
  if (issues.length) throw new ValidationError(issues);
}

/** By id (`svc-…`), by name, or (an unnamed one, started through POST /start/container) by the image it shows as its name. */
export async function findService(ctx: AppContext, ref: string): Promise<ServiceItem | undefined> {
  const guard = swarmKeys.serviceName(ref);
  const named = await ctx.store.get<StoreItem & { imageId: string }>(guard.pk, guard.sk);
  if (named) {
    const s = await getService(ctx, named.imageId);
    if (s?.serviceName === ref) return s;
  }
  const all = await listServices(ctx);
  return (
    // By id, a service the Swarm list shows: one deleted (unnamed, none wanted) is gone.
    all.find((s) => serviceId(s.imageId) === ref && (s.desiredCount > 0 || s.serviceName !== undefined)) ??
    all.find((s) => !s.serviceName && s.imageId === ref && s.desiredCount > 0)
  );
}

/** The name guard of a service, bound to its image once the service is written (core/name-guard.ts). */
function claimServiceName(ctx: AppContext, name: string, imageId: string) {
  return claimName<StoreItem & { imageId: string }>(ctx, {
    key: swarmKeys.serviceName(name),
    owner: { imageId },
    // A named service holds its name at any count; only its delete takes the name off.
    alive: async (held) => (await getService(ctx, held.imageId))?.serviceName === name,
    conflict: () => new ConflictError(`A service named ${name} exists`),
  });
}

/** Takes the name off the image's service and leaves it no copies (only while it bears `name`, when given). */
async function unnameService(ctx: AppContext, imageId: string, name?: string): Promise<void> {
  await changeService(ctx, imageId, async (current) => {
    if (!current || (name !== undefined && current.serviceName !== name)) return undefined;
    const { serviceName: _name, constraints: _c, volumes: _v, hostPorts: _h, global: _g, ...rest } = current;
    return { next: { ...rest, desiredCount: 0, updatedAt: new Date(ctx.now()).toISOString() }, wanted: 0 };
  });
}

/** The name guard first, then the service, then the guard bound; then the reconciler places the copies and the call waits for them. */
export async function createNamedService(ctx: AppContext, input: NamedServiceInput) {
  const claim = await claimServiceName(ctx, input.name, input.imageId);
  try {
    await changeService(ctx, input.imageId, async (current) => {
      if (current && current.desiredCount > 0)
        throw new ConflictError(
          `Image ${input.imageId} already runs as ${current.serviceName ?? 'an orchestrator service'} (${current.desiredCount} wanted): scale or delete that one`,
        );
      // A global service's count is the reconciler's (one per eligible node); 1 marks it wanted until then.
      const count = input.global ? 1 : input.replicas;
      const base = nextService(ctx, input.imageId, current, count, {
        resources: input.resources,
        ports: input.ports.map((p) => p.containerPort),
        env: input.env,
      });
      const hostPorts = Object.fromEntries(
        input.ports.filter((p) => p.hostPort > 0).map((p) => [String(p.containerPort), p.hostPort]),
      );
      const next: ServiceItem = {
        ...base,
        resources: input.resources,
        serviceName: input.name,
        constraints: input.constraints,
        volumes: input.volumes,
        hostPorts,
        ...(input.global ? { global: true } : {}),
      };
      // Nothing to check before a global service: with no eligible node it simply runs nowhere yet.
      return { next, wanted: input.global ? 0 : input.replicas };
    });
  } catch (error) {
    await claim.release();
    throw error;
  }
  if (!(await claim.bind())) {
    await unnameService(ctx, input.imageId, input.name);
    throw new ConflictError(`A service named ${input.name} exists`);
  }
  return placeAndWait(ctx, input.imageId, input.name);
}

/** Runs the reconciler for the image and waits for the starts it sent (202 past COMMAND_WAIT_MS). */
async function placeAndWait(ctx: AppContext, imageId: string, created?: string) {
  const outcome = await reconcile(ctx, { imageId });
  const placed = outcome.placed.filter((p) => p.imageId === imageId);
  return settle(
    ctx,
    placed.map((p) => p.commandId),
    async (commands) => {
      // A new service whose every copy its node refused for what was asked (its policy, a limit it
      // cannot enforce): nothing is kept, and the answer says why.
      if (created && commands.every((c) => c.status === 'failed') && allRefused(commands)) {
        for (const c of commands)
          if (c.instanceId) await startRefused(ctx, c.instanceId, c.error ?? 'refused');
        await unnameService(ctx, imageId, created);
        await releaseName(ctx, swarmKeys.serviceName(created), { imageId });
        throw new HttpError(
          422,
          `The node refused to run service ${created}: ${failures(commands)
            .map((f) => f.error)
            .join('; ')}. Nothing was kept`,
          'START_REFUSED',
        );
      }
      // Deleted while its copies started: there is no service left to show.
      const service = await getService(ctx, imageId);
      if (!service) throw new NotFoundError(`Service ${created ?? serviceId(imageId)} was deleted meanwhile`);
      return {
        ...(await serviceView(ctx, service)),
        ...(failures(commands).length ? { failed: failures(commands) } : {}),
      };
    },
    { id: serviceId(imageId) },
  );
}

export async function scaleNamedService(ctx: AppContext, ref: string, replicas: number) {
  const found = await findService(ctx, ref);
  if (!found) throw new NotFoundError(`Service ${ref} not found`);
  if (found.global)
    throw new ValidationError([
      {
        loc: ['body', 'replicas'],
        msg: `Service ${ref} is global: it runs one copy on each eligible node and cannot be scaled`,
        type: 'value_error',
      },
    ]);
  await changeService(ctx, found.imageId, async (current) => {
    if (!current) throw new NotFoundError(`Service ${ref} not found`);
    const more = replicas - current.desiredCount;
    return {
      next: { ...current, desiredCount: replicas, updatedAt: new Date(ctx.now()).toISOString() },
      wanted: Math.max(0, more),
    };
  });
  return placeAndWait(ctx, found.imageId);
}

/** Every copy removed (the reconciler retires them) and the name freed; the image keeps no desired count. */
export async function deleteNamedService(
  ctx: AppContext,
  ref: string,
): Promise<{ id: string; name: string }> {
  const found = await findService(ctx, ref);
  if (!found) throw new NotFoundError(`Service ${ref} not found`);
  const name = found.serviceName ?? found.imageId;
  await unnameService(ctx, found.imageId);
  if (found.serviceName)
    await releaseName(ctx, swarmKeys.serviceName(found.serviceName), { imageId: found.imageId });
  await reconcile(ctx, { imageId: found.imageId });
  return { id: serviceId(found.imageId), name };
}

/** A service with its running copies as counted (instance-counts.ts: one small query, not its copies). */
export async function serviceView(ctx: AppContext, s: ServiceItem) {
  const counts = await imageInstanceCounts(ctx, s.imageId);
  return {
    id: serviceId(s.imageId),
    name: s.serviceName ?? s.imageId,
    image: s.imageId,
    replicas: s.desiredCount,
    running: counts.running,
    mode: s.global ? ('global' as const) : ('replicated' as const),
  };
}

/** Asks each copy's node for its last `tail` lines; one entry per copy, with its logs or why not. */
async function readLogs(ctx: AppContext, copies: InstanceItem[], tail: number) {
  const sent = await Promise.all(
    copies.map(async (instance) => ({
      instance,
      commandId: await dispatchCommand(ctx, instance.nodeId, {
        type: 'container.logs',
        instanceId: instance.instanceId,
        tail,
      }),
    })),
  );
  return {
    commandIds: sent.map((s) => s.commandId),
    collect: (commands: CommandItem[]) =>
      sent.map(({ instance, commandId }) => {
        const c = commands.find((x) => x.commandId === commandId);
        const output = c?.output as { logs?: unknown } | undefined;
        return {
          container_id: instance.instanceId,
          node_id: instance.nodeId,
          ...(c?.status === 'succeeded' && typeof output?.logs === 'string'
            ? { logs: output.logs }
            : { error: c?.error ?? 'no logs' }),
        };
      }),
  };
}

/** Copies a page of a service's logs holds at most (and by default: a small service in one page). */
export const SERVICE_LOGS_PAGE_MAX = 50;

/**
 * The last `tail` lines of the running or exited copies of a page of a service's copies by id
 * (`limit` after `cursor`; copies in other states are passed over, so a page may hold fewer): a
 * global service has a copy on every node, and one request reads and asks a page of them.
 */
export async function serviceLogs(
  ctx: AppContext,
  ref: string,
  query: { tail: number; limit: number; cursor?: string | undefined },
) {
  const found = await findService(ctx, ref);
  if (!found) throw new NotFoundError(`Service ${ref} not found`);
  const page = await imageInstancePage(ctx, found.imageId, query);
  const copies = page.instances.filter((i) => i.status === 'running' || i.status === 'exited');
  const { commandIds, collect } = await readLogs(ctx, copies, query.tail);
  const next_cursor = page.cursor ?? null;
  return settle(
    ctx,
    commandIds,
    async (commands) => ({
      id: serviceId(found.imageId),
      name: found.serviceName ?? found.imageId,
      logs: collect(commands),
      next_cursor,
    }),
    { containers: copies.map((c) => c.instanceId), next_cursor },
  );
}

/** The last `tail` lines of one copy. */
export async function containerLogs(ctx: AppContext, inst: InstanceItem, tail: number) {
  const { commandIds, collect } = await readLogs(ctx, [inst], tail);
  return settle(ctx, commandIds, async (commands) => {
    const [entry] = collect(commands);
    if (entry && 'error' in entry)
      throw new UpstreamError(`Could not read the logs of ${inst.name}: ${entry.error}`);
    return { id: inst.instanceId, name: inst.name, logs: entry?.logs ?? '' };
  });
}
