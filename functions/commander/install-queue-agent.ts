import type { AppContext } from '../core/context.js';
import { NotFoundError } from '../core/errors.js';
import { installKeys } from '../core/keys.js';
import { putIfAbsent, updateIf } from '../ports/store.js';
import { hostInstallOutput, type InstallCredential, type InstallStepReport } from '../../protocol/install.js';
import { getCommand, type CommandItem } from '../nodes/commands.js';
import { issueJoinToken } from '../nodes/join-tokens.js';
import { getNode, type NodeItem } from '../nodes/nodes.js';
import { ACTIVE, finish, getJob, inlineSecretName } from './install-queue.js';
import { findCredentialById, secretName } from './vault.js';

/**
 * The agent's side of an install job: the login it fetches for the running host.install, the
 * steps it reports, and its result ending the job.
 */

const iso = (ms: number) => new Date(ms).toISOString();

/** Command-result hook: ends the job of a host.install (and stores the host key on first use). */
export async function applyHostInstallResult(ctx: AppContext, command: CommandItem): Promise<void> {
  if (command.command.type !== 'host.install' || command.status === 'pending') return;
  const job = await getJob(ctx, command.command.jobId);
  if (!job || job.commandId !== command.commandId || !ACTIVE.includes(job.state)) return;
  if (command.status === 'failed') {
    await finish(ctx, job, {
      state: 'failed',
      step: job.step ?? 'connect',
      error: command.error ?? 'the agent could not run the install',
    });
    return;
  }
  const out = hostInstallOutput.safeParse(command.output ?? {});
  if (!out.success) {
    await finish(ctx, job, {
      state: 'failed',
      step: 'register',
      error: 'the agent answered an unreadable install result',
    });
    return;
  }
  const o = out.data;
  if (o.hostKey) {
    const hk = installKeys.hostKey(job.host, job.port);
    // Trusted already: never replaced here.
    await putIfAbsent(ctx.store, {
      ...hk,
      host: job.host,
      port: job.port,
      key: o.hostKey,
      firstSeen: iso(ctx.now()),
    });
  }
  const set = { steps: o.steps, ...(o.facts ? { facts: o.facts } : {}) };
  if (o.outcome === 'joined' && o.nodeId && (await getNode(ctx, o.nodeId))) {
    await finish(ctx, job, {
      state: 'joined',
      set: { ...set, joinedNodeId: o.nodeId, joinedNodeName: o.nodeName },
    });
  } else {
    await finish(ctx, job, {
      state: 'failed',
      step: o.failedStep ?? 'register',
      error: o.reason ?? `the agent reported node ${o.nodeId ?? '?'}, which is not registered`,
      set,
    });
  }
}

/** The running host.install command `commandId` of this node, and its job; 404 for anything else. */
async function runningInstall(ctx: AppContext, node: NodeItem, commandId: string) {
  const command = await getCommand(ctx, commandId);
  if (
    !command ||
    command.nodeId !== node.nodeId ||
    command.command.type !== 'host.install' ||
    command.status !== 'pending'
  )
    throw new NotFoundError(`No install ${commandId} is running on this node`);
  const job = await getJob(ctx, command.command.jobId);
  if (!job || job.commandId !== commandId || !ACTIVE.includes(job.state))
    throw new NotFoundError(`No install ${commandId} is running on this node`);
  return job;
}

/** POST /agent/install/{commandId}/credential: the login and a one-use join token, for the node running that install only. */
export async function installCredentialFor(
  ctx: AppContext,
  node: NodeItem,
  commandId: string,
): Promise<InstallCredential> {
  const job = await runningInstall(ctx, node, commandId);
  let username: string;
  let password: string | undefined;
  if (job.inline) {
    username = job.inline.username;
    password = await ctx.secrets.get(inlineSecretName(job.jobId));
  } else {
    const cred = job.credentialId ? await findCredentialById(ctx, job.credentialId) : undefined;
    if (!cred) throw new NotFoundError(`The credential of install job ${job.jobId} was deleted`);
    username = cred.username;
    password = await ctx.secrets.get(secretName(cred.credId));
  }
  if (password === undefined) throw new NotFoundError(`The password of install job ${job.jobId} is gone`);
  const { token } = await issueJoinToken(ctx, 'worker', {
    maxUses: 1,
    ttlSeconds: ctx.config.INSTALL_JOIN_TIMEOUT_SECONDS + 600,
  });
  return { username, password, joinToken: token };
}

/** POST /agent/install/{commandId}/steps: progress; `installing` once the host answered. */
export async function recordInstallSteps(
  ctx: AppContext,
  node: NodeItem,
  commandId: string,
  steps: InstallStepReport[],
): Promise<void> {
  const job = await runningInstall(ctx, node, commandId);
  const connected = steps.some((s) => s.name === 'connect' && s.status === 'ok');
  const last = steps.at(-1);
  // Ended meanwhile: nothing to record.
  await updateIf(
    ctx.store,
    job.pk,
    job.sk,
    {
      set: {
        steps,
        updatedAt: iso(ctx.now()),
        ...(connected ? { state: 'installing' } : {}),
        ...(last ? { step: last.name } : {}),
      },
    },
    { equals: { commandId, state: ACTIVE } },
  );
}
