import type { AppContext } from './core/context.js';
import { ensureReconcileSchedule } from './orchestrator/reconciler.js';

/**
 * The control plane's own recurring schedules (safety-net sweeps). Upserting is idempotent:
 * the local runtime calls this at every start; on AWS the first deploy's smoke call does.
 */
export async function ensureAppSchedules(ctx: AppContext): Promise<void> {
  await ensureReconcileSchedule(ctx);
}
