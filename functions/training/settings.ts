import * as z from 'zod';
import type { AppContext } from '../core/context.js';
import type { RetryPolicy } from './state.js';

/**
 * Training settings. They are not in core/config.ts yet, so this module reads its own variables
 * (once, from process.env) and lets a test or a bench override them per context.
 *
 *   TRAINING_WEBHOOK_URLS        comma-separated receivers of status notifications; `slack+https://…`
 *                                (or any hooks.slack.com URL) gets the Slack `{text}` format
 *   TRAINING_CHECKPOINT_ROOT     host folder under which each job gets `<root>/<job_id>`
 *   TRAINING_RETRY_BASE_SECONDS  first retry delay; doubles per retry
 *   TRAINING_RETRY_MAX_SECONDS   cap of the retry delay
 *   TRAINING_PLACEMENT_RETRY_SECONDS  how soon a run with no node for it is tried again
 */
export interface WebhookTarget {
  url: string;
  format: 'json' | 'slack';
}

export interface TrainingSettings {
  webhooks: WebhookTarget[];
  checkpointRoot: string;
  retry: RetryPolicy;
  placementRetrySeconds: number;
  /** Per delivery attempt; a dead receiver must not hold the events worker long. */
  webhookTimeoutMs: number;
  webhookMaxAttempts: number;
}

export function parseWebhookTargets(list: string): WebhookTarget[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry): WebhookTarget => {
      const slack = entry.startsWith('slack+');
      const url = new URL(slack ? entry.slice('slack+'.length) : entry);
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new Error(`not an http(s) URL: ${entry}`);
      return { url: url.toString(), format: slack || url.hostname === 'hooks.slack.com' ? 'slack' : 'json' };
    });
}

const envSchema = z.object({
  TRAINING_WEBHOOK_URLS: z
    .string()
    .default('')
    .transform((s, ctx) => {
      try {
        return parseWebhookTargets(s);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    }),
  TRAINING_CHECKPOINT_ROOT: z.string().startsWith('/').default('/var/lib/fleet/checkpoints'),
  TRAINING_RETRY_BASE_SECONDS: z.coerce.number().positive().default(30),
  TRAINING_RETRY_MAX_SECONDS: z.coerce
    .number()
    .positive()
    .default(6 * 3600),
  TRAINING_PLACEMENT_RETRY_SECONDS: z.coerce.number().int().positive().default(30),
});

export function loadTrainingSettings(
  env: Record<string, string | undefined> = process.env,
): TrainingSettings {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = envSchema.safeParse(present);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid training configuration:\n${lines.join('\n')}`);
  }
  const e = result.data;
  return {
    webhooks: e.TRAINING_WEBHOOK_URLS,
    checkpointRoot: e.TRAINING_CHECKPOINT_ROOT.replace(/\/+$/, ''),
    retry: { baseSeconds: e.TRAINING_RETRY_BASE_SECONDS, maxSeconds: e.TRAINING_RETRY_MAX_SECONDS },
    placementRetrySeconds: e.TRAINING_PLACEMENT_RETRY_SECONDS,
    webhookTimeoutMs: 3000,
    webhookMaxAttempts: 6,
  };
}

let fromEnv: TrainingSettings | undefined;
const overrides = new WeakMap<AppContext, Partial<TrainingSettings>>();

/** The settings in force for this context. */
export function trainingSettings(ctx: AppContext): TrainingSettings {
  fromEnv ??= loadTrainingSettings();
  const own = overrides.get(ctx);
  return own ? { ...fromEnv, ...own } : fromEnv;
}

/** Tests and benches: replace some settings for one context. */
export function overrideTrainingSettings(ctx: AppContext, settings: Partial<TrainingSettings>): void {
  overrides.set(ctx, { ...overrides.get(ctx), ...settings });
}

/** Forget the environment read, so a changed process.env is read again. */
export const resetTrainingSettings = (): void => {
  fromEnv = undefined;
};
