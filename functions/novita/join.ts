import type { AppContext } from '../core/context.js';
import { keys, novitaKeys } from '../core/keys.js';
import { emit } from '../core/events.js';
import type { NovitaInstanceItem } from './model.js';
import { isBurst, settleEndedBurst } from './burst-index.js';
import { retireInstance } from './live-index.js';
import { novitaCloud } from './settings.js';
import { updateIf } from '../ports/store.js';

/**
 * A Novita instance that joins the fleet: its startup command fetches the agent from this control
 * plane and runs it with the process driver (the instance is itself a container), configured by
 * the instance's environment: FLEET_URL, FLEET_NODE_NAME (the instance's id), FLEET_JOIN_TOKEN
 * (single use, good for that node name only), FLEET_CLUSTER, FLEET_LABELS.
 */

/** One sh line; `node` is the instance's own when it has one, else the runtime the control plane serves. */
export const JOIN_STARTUP_COMMAND = [
  'set -e',
  'd="${FLEET_AGENT_HOME:-/opt/fleet-agent}"',
  'mkdir -p "$d"',
  'curl -fsSL --retry 3 -o "$d/agent.mjs" "$FLEET_URL/install/agent.mjs"',
  // ssh2 is bundled apart (agent/build.ts): only host.install loads it.
  'curl -fsSL --retry 3 -o "$d/agent-ssh2.cjs" "$FLEET_URL/install/agent-ssh2.cjs"',
  'if ! command -v node >/dev/null 2>&1; then curl -fsSL --retry 3 -o "$d/node.tar.gz" "$FLEET_URL/install/node-$(uname -m).tar.gz"; mkdir -p "$d/node"; tar -xzf "$d/node.tar.gz" -C "$d/node"; PATH="$d/node/bin:$d/node/package/bin:$PATH"; fi',
  'exec node "$d/agent.mjs" --driver process --state-dir "$d/state"',
].join('; ');

export const startupCommand = () => `sh -c '${JOIN_STARTUP_COMMAND.replaceAll("'", `'\\''`)}'`;

export function joinEnvs(input: {
  url: string;
  nodeName: string;
  token: string;
  cluster?: string;
  labels?: Record<string, string>;
}): { key: string; value: string }[] {
  const envs = [
    { key: 'FLEET_URL', value: input.url },
    { key: 'FLEET_NODE_NAME', value: input.nodeName },
    { key: 'FLEET_JOIN_TOKEN', value: input.token },
    { key: 'FLEET_DRIVER', value: 'process' },
  ];
  if (input.cluster) envs.push({ key: 'FLEET_CLUSTER', value: input.cluster });
  const labels = Object.entries(input.labels ?? {});
  if (labels.length) envs.push({ key: 'FLEET_LABELS', value: labels.map(([k, v]) => `${k}=${v}`).join(',') });
  return envs;
}

/** The node an instance became, on the instance's record (the node carries the instance). */
export async function linkInstanceNode(
  ctx: AppContext,
  instanceId: string,
  nodeId: string,
  nodeName: string,
): Promise<void> {
  const k = novitaKeys.instance(instanceId);
  const item = await updateIf<NovitaInstanceItem>(
    ctx.store,
    k.pk,
    k.sk,
    { set: { nodeId, nodeName, joinedAt: new Date(ctx.now()).toISOString() } },
    { exists: true },
  );
  if (!item) {
    ctx.logger.warn('a node joined for an instance that is gone', { instanceId, nodeId });
    return;
  }
  // Rented for a model's queue: its tasks are placed now, not at the next scheduled run.
  if (item.burstModel)
    await emit(ctx, { type: 'placement.run', reason: 'rented node joined', requestedAt: Date.now() });
}

/**
 * Gives a rented instance back: deleted at Novita, recorded as terminated, its node cordoned (it
 * goes offline and the nodes sweep retires it). Idempotent: the record is marked first, once.
 */
export async function terminateInstance(
  ctx: AppContext,
  item: NovitaInstanceItem,
  why: string,
): Promise<void> {
  const terminatedAt = new Date(ctx.now()).toISOString();
  const first = await updateIf<NovitaInstanceItem>(
    ctx.store,
    item.pk,
    item.sk,
    { set: { terminatedAt } },
    { absent: ['terminatedAt'] },
  );
  if (!first) return;
  if (item.nodeId) {
    const k = keys.node(item.nodeId);
    await updateIf(
      ctx.store,
      k.pk,
      k.sk,
      { set: { cordoned: true, cordonedAt: new Date(ctx.now()).toISOString() } },
      { exists: true },
    );
  }
  if (item.novitaInstanceId) await deleteAtNovita(ctx, item.novitaInstanceId, item.instanceId, why);
  // Last, so nothing above waits on them: a crash before is finished by the next read of the live
  // bursts and by the Novita schedule (live-index.ts).
  if (isBurst(item)) await settleEndedBurst(ctx, { ...item, terminatedAt });
  await retireInstance(ctx, first);
}

async function deleteAtNovita(ctx: AppContext, novitaInstanceId: string, instanceId: string, why: string) {
  try {
    await novitaCloud(ctx).deleteInstance(novitaInstanceId);
    ctx.logger.info('rented instance terminated', { instanceId, why });
  } catch (error) {
    // Recorded as terminated either way: a failed delete is for a person to see in the log.
    ctx.logger.error('could not delete a rented instance at Novita', {
      instanceId,
      why,
      error: (error as Error).message,
    });
  }
}
