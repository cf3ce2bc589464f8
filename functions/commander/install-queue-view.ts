import type { AppContext } from '../core/context.js';
import { listJobs, requireJob, type InstallJobItem } from './install-queue.js';

/** Install jobs as the Install Queue API answers them. */

export function jobView(j: InstallJobItem) {
  return {
    job_id: j.jobId,
    host: j.host,
    port: j.port,
    cluster: j.cluster ?? null,
    node_name: j.nodeName ?? null,
    credential_id: j.credentialId ?? null,
    installer_node_id: j.nodeId ?? null,
    state: j.state,
    step: j.step ?? null,
    error: j.error ?? null,
    steps: j.steps.map((s) => ({ name: s.name, status: s.status, detail: s.detail, at: s.at })),
    facts: j.facts ?? null,
    joined_node_id: j.joinedNodeId ?? null,
    joined_node_name: j.joinedNodeName ?? null,
    attempts: j.attempts,
    created_at: j.createdAt,
    updated_at: j.updatedAt,
    started_at: j.startedAt ?? null,
    finished_at: j.finishedAt ?? null,
  };
}
export type JobView = ReturnType<typeof jobView>;

export async function queueView(ctx: AppContext) {
  const jobs = await listJobs(ctx);
  const counts = { queued: 0, connecting: 0, installing: 0, joined: 0, failed: 0 };
  for (const j of jobs) counts[j.state]++;
  return {
    jobs: jobs.map(jobView),
    total: jobs.length,
    counts,
    concurrency_per_node: ctx.config.INSTALL_CONCURRENCY_PER_NODE,
  };
}

export async function jobDetail(ctx: AppContext, jobId: string) {
  return jobView(await requireJob(ctx, jobId));
}
