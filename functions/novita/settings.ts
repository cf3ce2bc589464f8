import type { AppContext } from '../core/context.js';
import type { NovitaCloud } from './cloud.js';
import { HttpNovitaCloud } from './http-cloud.js';

/** The Secrets port name of the Novita API key (SSM SecureString `<SECRETS_PREFIX>novita-api-key`). */
export const NOVITA_KEY_SECRET = 'novita-api-key';

const KEY_CACHE_MS = 60_000;
const clouds = new WeakMap<AppContext, NovitaCloud>();

/** The key, re-read at most once a minute so a rotation takes effect without a restart. */
function keyReader(ctx: AppContext): () => Promise<string | undefined> {
  let cached: { value: string | undefined; at: number } | undefined;
  return async () => {
    if (!cached || ctx.now() - cached.at > KEY_CACHE_MS || !cached.value) {
      cached = { value: await ctx.secrets.get(NOVITA_KEY_SECRET), at: ctx.now() };
    }
    return cached.value;
  };
}

/** The Novita client of this context: the HTTP adapter at NOVITA_BASE_URL unless a test set one. */
export function novitaCloud(ctx: AppContext): NovitaCloud {
  let cloud = clouds.get(ctx);
  if (!cloud) {
    cloud = new HttpNovitaCloud({
      baseUrl: ctx.config.NOVITA_BASE_URL,
      apiKey: keyReader(ctx),
      secretName: NOVITA_KEY_SECRET,
      timeoutMs: ctx.config.NOVITA_TIMEOUT_MS,
    });
    clouds.set(ctx, cloud);
  }
  return cloud;
}

/** Tests and benches: use another client for one context. */
export function useNovitaCloud(ctx: AppContext, cloud: NovitaCloud): void {
  clouds.set(ctx, cloud);
}

/** Whether a key is set at all: without one the Novita dependency is `not_configured`, not down. */
export async function novitaConfigured(ctx: AppContext): Promise<boolean> {
  return (await ctx.secrets.get(NOVITA_KEY_SECRET)) !== undefined;
}
