import type { AppContext } from '../core/context.js';
import { migrationHealth } from './migration-views.js';
import { novitaCloud, novitaConfigured } from './settings.js';

/**
 * The Novita part of /health: the API is called with the configured key on every check; without
 * a key it is `not_configured` and does not make the service unhealthy (the rest of the control
 * plane works without Novita).
 */
export async function novitaApiProbe(ctx: AppContext): Promise<(() => Promise<void>) | undefined> {
  if (!(await novitaConfigured(ctx))) return undefined;
  return () => novitaCloud(ctx).ping();
}

export { migrationHealth };
