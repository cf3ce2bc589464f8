import type { AppContext } from '../core/context.js';
import {
  ConflictError,
  HttpError,
  TimedOutError,
  UnauthenticatedError,
  UpstreamError,
} from '../core/errors.js';
import { reply, type Reply } from '../core/http.js';
import { networkKeys } from '../core/keys.js';
import type { StoreItem } from '../ports/store.js';
import { getNode } from '../nodes/nodes.js';
import { ensureIndexed, nodeAt } from '../nodes/address-index.js';
import {
  FINISHED,
  getJob,
  listJobs,
  queueInstall,
  resolveCredential,
  type InstallJobItem,
  type InstallState,
} from './install-queue.js';

/**
 * The Network and Swarm routes that queue installs (POST /api/network/join goes straight to
 * queueInstall): auto-join-all over the last scan, and swarm join-remote with an inline login.
 */

/** Hostnames and vendors of GPU servers worth onboarding, beside Jetsons. */
const GPU_SERVER_NAME = /gpu|dgx|cuda|rtx|a100|h100|h200|l40|spark/i;

interface ScanDevice {
  ip: string;
  hostname: string | null;
  vendor: string | null;
  isJetson: boolean;
  ports: number[];
}

/** POST /api/network/auto-join-all: queues the last scan's Jetsons and GPU servers that are not in the fleet and have SSH open. */
export async function autoJoinAll(
  ctx: AppContext,
  body: { credential_id?: string | undefined; cluster?: string | undefined; node_id?: string | undefined },
) {
  const ref = body.credential_id ?? ctx.config.AUTO_JOIN_CREDENTIAL;
  if (!ref) throw new HttpError(400, 'No credential: give credential_id, or set AUTO_JOIN_CREDENTIAL');
  const credential = await resolveCredential(ctx, ref);
  const l = networkKeys.latest();
  const latest = await ctx.store.get<StoreItem & { subnet: string }>(l.pk, l.sk);
  const scanKey = latest && networkKeys.scan(latest.subnet);
  const scan =
    scanKey && (await ctx.store.get<StoreItem & { devices?: ScanDevice[] }>(scanKey.pk, scanKey.sk));
  if (!scan?.devices)
    throw new ConflictError('No completed network scan yet: GET /api/network/scan first', 'NO_SCAN');
  await ensureIndexed(ctx);
  const jobs = await listJobs(ctx);
  const queued: { ip: string; job_id: string; state: InstallState }[] = [];
  const skipped: { ip: string; reason: string }[] = [];
  for (const d of scan.devices) {
    const busy = jobs.find((j) => j.host === d.ip && j.port === 22 && !FINISHED.includes(j.state));
    // A node at the address: one small read (the address index), not the fleet.
    const inFleet = await nodeAt(ctx, d.ip);
    const looksRight =
      d.isJetson || d.vendor === 'NVIDIA' || GPU_SERVER_NAME.test(d.hostname ?? '');
    const reason = inFleet
      ? 'already in the fleet'
      : !d.ports.includes(22)
        ? 'SSH (port 22) is not open'
        : !looksRight
          ? 'does not look like a Jetson or a GPU server'
          : busy
            ? `an install is already ${busy.state} (job ${busy.jobId})`
            : null;
    if (reason) {
      skipped.push({ ip: d.ip, reason });
      continue;
    }
    try {
      const job = await queueInstall(ctx, {
        host: d.ip,
        port: 22,
        credentialId: credential.credId,
        cluster: body.cluster,
        nodeRef: body.node_id,
      });
      queued.push({ ip: d.ip, job_id: job.jobId, state: job.state });
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      skipped.push({ ip: d.ip, reason: error.message });
    }
  }
  return { subnet: scan.subnet as string, queued, skipped };
}

/** How a failed join-remote answers: the document's 401 for a refused login, 504 for an SSH timeout. */
function joinFailure(job: InstallJobItem): HttpError {
  const why = `Node ${job.host} did not join: ${job.step ? `${job.step}: ` : ''}${job.error ?? 'failed'}`;
  const details = { job_id: job.jobId, step: job.step ?? null };
  if (job.step === 'connect' && /authentication failed/.test(job.error ?? ''))
    return new UnauthenticatedError(why, 'AUTHENTICATION_ERROR', details);
  if (job.step === 'connect' && /timed out|unreachable|refused|does not resolve/.test(job.error ?? ''))
    return new TimedOutError(why, 'GATEWAY_TIMEOUT', details);
  return new UpstreamError(why, 'INSTALL_FAILED', details);
}

/** Waits for a job to end, up to COMMAND_WAIT_MS. */
async function waitForJob(ctx: AppContext, jobId: string): Promise<InstallJobItem | undefined> {
  const deadline = Date.now() + ctx.config.COMMAND_WAIT_MS;
  let delay = 200;
  for (;;) {
    const job = await getJob(ctx, jobId);
    if (!job || FINISHED.includes(job.state)) return job;
    const left = deadline - Date.now();
    if (left <= 0) return job;
    await new Promise((r) => setTimeout(r, Math.min(delay, left)));
    delay = Math.min(delay * 1.5, 1000);
  }
}

/** POST /api/swarm/join-remote: an install with an inline login; the document's answer once the node is online, else 202 with the job. */
export async function joinRemote(
  ctx: AppContext,
  body: {
    node_ip: string;
    username: string;
    password: string;
    cluster?: string | undefined;
    node_id?: string | undefined;
  },
) {
  const queued = await queueInstall(ctx, {
    host: body.node_ip,
    port: 22,
    cluster: body.cluster,
    inline: { username: body.username, password: body.password },
    nodeRef: body.node_id,
  });
  const job = (await waitForJob(ctx, queued.jobId)) ?? queued;
  if (job.state === 'failed') throw joinFailure(job);
  if (job.state === 'joined') {
    const node = job.joinedNodeId ? await getNode(ctx, job.joinedNodeId) : undefined;
    return {
      status: 'success' as const,
      message: `Node ${job.host} joined swarm successfully`,
      node_id: job.joinedNodeId!,
      cluster: node?.cluster ?? job.cluster ?? null,
      job_id: job.jobId,
    };
  }
  return reply(202, {
    status: 'installing' as const,
    message: `Node ${job.host} is being installed; follow GET /api/install-queue/queue/${job.jobId}`,
    job_id: job.jobId,
    state: job.state,
  }) as Reply;
}
