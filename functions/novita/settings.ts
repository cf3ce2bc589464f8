import type { AppContext } from '../core/context.js';
import { NOVITA_KEY_SECRET, type NovitaCloud } from '../ports/novita-cloud.js';

/** The Novita client of this context (wired by the composition root: the HTTP adapter). */
export const novitaCloud = (ctx: AppContext): NovitaCloud => ctx.novita;

/** Whether a key is set at all: without one the Novita dependency is `not_configured`, not down. */
export async function novitaConfigured(ctx: AppContext): Promise<boolean> {
  return (await ctx.secrets.get(NOVITA_KEY_SECRET)) !== undefined;
}
