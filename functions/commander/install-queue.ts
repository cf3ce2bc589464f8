import { randomUUID } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { ConflictError, HttpError, NotFoundError } from '../core/errors.js';
import { installKeys } from '../core/keys.js';
import { queryAll, type StoreItem, deleteIf, putIfAbsent, updateIf, putIf } from '../ports/store.js';
import { parseCidr } from '../../protocol/network.js';
import { type HostFacts, type InstallStep, type InstallStepReport } from '../../protocol/install.js';
import { dispatchCommand } from '../nodes/commands.js';
import { getNode, isOnline, resolveNode, type NodeItem } from '../nodes/nodes.js';
import { ensureIndexed, pickOnlineNode } from '../nodes/address-index.js';
import { findCredentialById, type CredentialItem } from './vault.js';
import { fleetClusterKeys } from '../core/keys.js';

/**
 * The Install Queue: hosts onboarded over SSH. The control plane cannot reach a LAN, so an online
 * agent on the host's network runs host.install (agent/host-install.ts), at most
 * INSTALL_CONCURRENCY_PER_NODE at a time per node; the rest wait `queued`. The agent fetches the
 * login for the command (POST /agent/install/{id}/credential) and reports its steps as it goes;
 * the result ends the job `joined` (the new node is registered) or `failed` with the step and reason.
 */

export type InstallState = 'queued' | 'connecting' | 'installing' | 'joined' | 'failed';
export const ACTIVE: InstallState[] = ['connecting', 'installing'];
export const FINISHED: InstallState[] = ['joined', 'failed'];

export interface InstallJobItem extends StoreItem {
  jobId: string;
  host: string;
  port: number;
  cluster?: string;
  nodeName?: string;
  /** A vault credential; absent for an inline one (secret `install/<jobId>` while the job lives). */
  credentialId?: string;
  inline?: { username: string };
  /** The node asked for; else chosen at each start. */
  requestedNodeId?: string;
  /** The node whose agent runs (or last ran) the install. */
  nodeId?: string;
  commandId?: string;
  /** The node's install slot it runs in (`SLOT#nn`), while it runs. */
  slot?: string;
  state: InstallState;
  step?: InstallStep;
  error?: string;
  steps: InstallStepReport[];
  facts?: HostFacts;
  joinedNodeId?: string;
  joinedNodeName?: string;
  attempts: number;
  createdAt: string;
  updatedAt: string;
  startedAt?: string;
  finishedAt?: string;
}

/** The inline password of a swarm join-remote job; deleted when the job ends. */
export const inlineSecretName = (jobId: string) => `install/${jobId}`;

const iso = (ms: number) => new Date(ms).toISOString();

export async function getJob(ctx: AppContext, jobId: string): Promise<InstallJobItem | undefined> {
  const k = installKeys.job(jobId);
  return ctx.store.get<InstallJobItem>(k.pk, k.sk);
}

export async function requireJob(ctx: AppContext, jobId: string): Promise<InstallJobItem> {
  const job = await getJob(ctx, jobId);
  if (!job) throw new NotFoundError(`Install job ${jobId} not found`);
  return job;
}

/** Every job, oldest first; a running one whose node went offline or that outlived its time is ended `failed` first. */
export async function listJobs(ctx: AppContext): Promise<InstallJobItem[]> {
  const jobs = await queryAll<InstallJobItem>(ctx.store, installKeys.jobsPk, { index: 'gsi1' });
  const out: InstallJobItem[] = [];
  for (const job of jobs) out.push(ACTIVE.includes(job.state) ? ((await reapIfLost(ctx, job)) ?? job) : job);
  return out;
}

/** A running job whose result can no longer come: its node is offline, or it ran past the join timeout plus 10 minutes. */
async function reapIfLost(ctx: AppContext, job: InstallJobItem): Promise<InstallJobItem | undefined> {
  const node = job.nodeId ? await getNode(ctx, job.nodeId) : undefined;
  const limitMs = (ctx.config.INSTALL_JOIN_TIMEOUT_SECONDS + 600) * 1000;
  const error =
    !node || !isOnline(node, ctx)
      ? `node ${node?.nodeName ?? job.nodeId} went offline during the install`
      : ctx.now() - Date.parse(job.startedAt ?? job.createdAt) > limitMs
        ? `no result from node ${node.nodeName} within ${limitMs / 1000} s`
        : undefined;
  if (!error) return undefined;
  await finish(ctx, job, { state: 'failed', step: job.step ?? 'connect', error });
  return getJob(ctx, job.jobId);
}

/** A vault credential by id, or by name. */
export async function resolveCredential(ctx: AppContext, ref: string): Promise<CredentialItem> {
  const byId = await findCredentialById(ctx, ref);
  if (byId) return byId;
  const k = fleetClusterKeys.credential(ref);
  const byName = await ctx.store.get<CredentialItem>(k.pk, k.sk);
  if (byName) return byName;
  throw new NotFoundError(`Credential ${ref} not found`);
}

/** The node asked for (online); else an online node with an address in the host's /24 (by address); else an online one (address-index.ts). */
async function installerNode(ctx: AppContext, host: string, ref: string | undefined): Promise<NodeItem> {
  // Never the host itself: its agent would replace itself half-way through.
  const jobs = await queryAll<InstallJobItem>(ctx.store, installKeys.jobsPk, { index: 'gsi1' });
  const isTarget = (n: NodeItem) =>
    (n.addresses ?? []).includes(host) || jobs.some((j) => j.host === host && j.joinedNodeId === n.nodeId);
  if (ref !== undefined) {
    const node = await resolveNode(ctx, ref);
    if (!node) throw new NotFoundError(`Node ${ref} not found`);
    if (!isOnline(node, ctx))
      throw new ConflictError(`Node ${node.nodeName} is offline: its agent cannot install`, 'NODE_OFFLINE');
    if (isTarget(node))
      throw new ConflictError(
        `Node ${node.nodeName} is ${host} itself: another node must install it`,
        'NODE_IS_TARGET',
      );
    return node;
  }
  let subnet;
  try {
    subnet = parseCidr(`${host}/24`);
  } catch {
    subnet = undefined; // a name: no subnet to prefer
  }
  await ensureIndexed(ctx);
  const node = await pickOnlineNode(ctx, { subnet, accept: (n) => !isTarget(n) });
  if (!node)
    throw new ConflictError('No node is online to install from: start an agent on that network', 'NO_NODE');
  return node;
}

export interface QueueInput {
  host: string;
  port: number;
  cluster?: string | undefined;
  nodeName?: string | undefined;
  credentialId?: string | undefined;
  /** swarm join-remote: stored as a secret for the job's life. */
  inline?: { username: string; password: string } | undefined;
  nodeRef?: string | undefined;
}

/** Queues one install and starts it when its node has room. */
export async function queueInstall(ctx: AppContext, input: QueueInput): Promise<InstallJobItem> {
  const credential =
    input.credentialId !== undefined ? await resolveCredential(ctx, input.credentialId) : undefined;
  if (!credential && !input.inline) throw new HttpError(400, 'credential_id is required');
  const busy = (await listJobs(ctx)).find(
    (j) => j.host === input.host && j.port === input.port && !FINISHED.includes(j.state),
  );
  if (busy)
    throw new ConflictError(
      `${input.host} already has an install in progress (job ${busy.jobId})`,
      'INSTALL_IN_PROGRESS',
    );
  const node = await installerNode(ctx, input.host, input.nodeRef);
  const jobId = randomUUID();
  const now = ctx.now();
  if (input.inline) await ctx.secrets.put(inlineSecretName(jobId), input.inline.password);
  const job: InstallJobItem = {
    ...installKeys.job(jobId),
    ...installKeys.jobsIndex(iso(now), jobId),
    jobId,
    host: input.host,
    port: input.port,
    ...(input.cluster ? { cluster: input.cluster } : {}),
    ...(input.nodeName ? { nodeName: input.nodeName } : {}),
    ...(credential ? { credentialId: credential.credId } : {}),
    ...(input.inline ? { inline: { username: input.inline.username } } : {}),
    ...(input.nodeRef !== undefined ? { requestedNodeId: node.nodeId } : {}),
    nodeId: node.nodeId,
    state: 'queued',
    steps: [],
    attempts: 0,
    createdAt: iso(now),
    updatedAt: iso(now),
    version: 1,
  };
  await ctx.store.put(job, { notExists: true });
  await pumpNode(ctx, node.nodeId);
  return (await getJob(ctx, jobId)) ?? job;
}

interface SlotItem extends StoreItem {
  nodeId: string;
  jobId: string;
  claimedAtMs: number;
}

/** A claimed slot whose job has not moved on within this is taken to be left by a crash. */
const SLOT_CLAIM_GRACE_MS = 60_000;

/**
 * Claims a free install slot of the node for the job (a conditional put, so concurrent pumps never
 * run more than INSTALL_CONCURRENCY_PER_NODE). A slot left by a job that no longer runs in it
 * (a crash between writes) is taken over, on condition that it still names that job.
 */
async function claimSlot(ctx: AppContext, nodeId: string, jobId: string): Promise<string | undefined> {
  for (let n = 0; n < ctx.config.INSTALL_CONCURRENCY_PER_NODE; n++) {
    const k = installKeys.slot(nodeId, n);
    const item: SlotItem = { ...k, nodeId, jobId, claimedAtMs: ctx.now() };
    if (await putIfAbsent(ctx.store, item)) return k.sk;
    const held = await ctx.store.get<SlotItem>(k.pk, k.sk);
    if (!held) continue; // released meanwhile: the next pump takes it
    const holder = await getJob(ctx, held.jobId);
    const running =
      holder && ACTIVE.includes(holder.state) && holder.slot === k.sk && holder.nodeId === nodeId;
    const starting = holder?.state === 'queued' && ctx.now() - held.claimedAtMs < SLOT_CLAIM_GRACE_MS;
    if (running || starting) continue;
    if (await putIf(ctx.store, item, { equals: { jobId: held.jobId } })) return k.sk;
  }
  return undefined;
}

async function releaseSlot(
  ctx: AppContext,
  nodeId: string,
  slot: string | undefined,
  jobId: string,
): Promise<void> {
  if (!slot) return;
  await deleteIf(ctx.store, installKeys.slot(nodeId, 0).pk, slot, { equals: { jobId } }); // taken over already
}

/** Starts queued jobs of a node, oldest first, each in a free slot of its INSTALL_CONCURRENCY_PER_NODE. */
export async function pumpNode(ctx: AppContext, nodeId: string): Promise<void> {
  const queued = (await listJobs(ctx)).filter((j) => j.nodeId === nodeId && j.state === 'queued');
  for (const job of queued) {
    const slot = await claimSlot(ctx, nodeId, job.jobId);
    if (!slot) return;
    if (!(await startJob(ctx, job, slot))) await releaseSlot(ctx, nodeId, slot, job.jobId);
  }
}

async function startJob(ctx: AppContext, job: InstallJobItem, slot: string): Promise<boolean> {
  const commandId = randomUUID();
  const now = iso(ctx.now());
  const written = await updateIf(
    ctx.store,
    job.pk,
    job.sk,
    {
      set: { state: 'connecting', commandId, slot, startedAt: now, updatedAt: now, steps: [] },
      add: { attempts: 1 },
      remove: ['error', 'step', 'finishedAt'],
    },
    { equals: { state: 'queued', version: job.version, nodeId: job.nodeId } },
  );
  if (!written) return false; // another pump started it
  const hk = installKeys.hostKey(job.host, job.port);
  const known = await ctx.store.get<StoreItem & { key: string }>(hk.pk, hk.sk);
  try {
    await dispatchCommand(
      ctx,
      job.nodeId!,
      {
        type: 'host.install',
        jobId: job.jobId,
        host: job.host,
        port: job.port,
        ...(job.cluster ? { cluster: job.cluster } : {}),
        ...(job.nodeName ? { nodeName: job.nodeName } : {}),
        ...(known ? { hostKey: known.key } : {}),
        ...(ctx.config.INSTALL_CONTROL_PLANE_URL
          ? { controlPlaneUrl: ctx.config.INSTALL_CONTROL_PLANE_URL }
          : {}),
        joinTimeoutSeconds: ctx.config.INSTALL_JOIN_TIMEOUT_SECONDS,
      },
      { commandId },
    );
  } catch (error) {
    await finish(
      ctx,
      { ...job, commandId, slot },
      { state: 'failed', step: 'connect', error: `could not send the install to node ${job.nodeId}` },
    );
    throw error;
  }
  return true;
}

/** Ends a job (conditional on its command), drops an inline secret, and lets the node's next job start. */
export async function finish(
  ctx: AppContext,
  job: InstallJobItem,
  end: { state: 'joined' | 'failed'; step?: InstallStep; error?: string; set?: Record<string, unknown> },
): Promise<boolean> {
  const now = iso(ctx.now());
  const written = await updateIf(
    ctx.store,
    job.pk,
    job.sk,
    {
      set: {
        state: end.state,
        finishedAt: now,
        updatedAt: now,
        ...(end.step ? { step: end.step } : {}),
        ...(end.error ? { error: end.error } : {}),
        ...end.set,
      },
      remove: end.state === 'joined' ? ['error', 'step', 'slot'] : ['slot'],
    },
    { equals: { commandId: job.commandId, state: ACTIVE } },
  );
  if (!written) return false; // applied already, or a retry took over
  if (job.inline) await ctx.secrets.delete(inlineSecretName(job.jobId)).catch(() => undefined);
  if (job.nodeId) {
    await releaseSlot(ctx, job.nodeId, job.slot, job.jobId);
    await pumpNode(ctx, job.nodeId);
  }
  return true;
}

/** Puts a failed job back in the queue (on its node if still online, else on another). */
export async function retryJob(ctx: AppContext, jobId: string): Promise<InstallJobItem> {
  const job = await requireJob(ctx, jobId);
  if (job.state !== 'failed')
    throw new ConflictError(
      `Install job ${jobId} is ${job.state}: only failed jobs are retried`,
      'NOT_FAILED',
    );
  if (job.inline)
    throw new ConflictError(
      `Install job ${jobId} had an inline credential, deleted when it failed: call POST /api/swarm/join-remote again`,
      'CREDENTIAL_GONE',
    );
  const node = await installerNode(ctx, job.host, job.requestedNodeId);
  const now = iso(ctx.now());
  const requeued = await updateIf(
    ctx.store,
    job.pk,
    job.sk,
    {
      set: { state: 'queued', nodeId: node.nodeId, updatedAt: now, steps: [] },
      remove: ['error', 'step', 'finishedAt', 'commandId', 'slot'],
    },
    { equals: { state: 'failed', version: job.version } },
  );
  if (!requeued) throw new ConflictError(`Install job ${jobId} changed meanwhile: try again`, 'RACE');
  await pumpNode(ctx, node.nodeId);
  return requireJob(ctx, jobId);
}

export async function retryFailed(ctx: AppContext) {
  const retried: InstallJobItem[] = [];
  const skipped: { job_id: string; host: string; reason: string }[] = [];
  for (const job of (await listJobs(ctx)).filter((j) => j.state === 'failed')) {
    try {
      retried.push(await retryJob(ctx, job.jobId));
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      skipped.push({ job_id: job.jobId, host: job.host, reason: error.message });
    }
  }
  return { retried, skipped };
}

/** Deletes the joined and failed jobs; queued and running ones stay. */
export async function clearFinished(ctx: AppContext) {
  const cleared: string[] = [];
  for (const job of (await listJobs(ctx)).filter((j) => FINISHED.includes(j.state))) {
    if (await deleteIf(ctx.store, job.pk, job.sk, { equals: { state: job.state, version: job.version } }))
      cleared.push(job.jobId); // retried meanwhile: it stays
  }
  const remaining = (await listJobs(ctx)).length;
  return { status: 'cleared' as const, cleared: cleared.length, job_ids: cleared, remaining };
}

/** Forgets the stored host key, so the next install trusts whatever key the host presents. */
export async function forgetHostKey(ctx: AppContext, host: string, port: number) {
  const k = installKeys.hostKey(host, port);
  const old = await ctx.store.delete<StoreItem & { key: string }>(k.pk, k.sk);
  if (!old) throw new NotFoundError(`No host key is stored for ${host}:${port}`);
  return { status: 'deleted' as const, host, port };
}
