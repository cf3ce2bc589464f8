import { loadConfig, type Config } from '../core/config.js';
import type { AppContext } from '../core/context.js';
import type { RetryPolicy } from './state.js';

/**
 * Training settings, derived from the TRAINING_* variables of the typed configuration
 * (functions/core/config.ts) of the context; a test or a bench may override them per context.
 */
export interface WebhookTarget {
  url: string;
  format: 'json' | 'slack';
}

export interface TrainingSettings {
  webhooks: WebhookTarget[];
  checkpointRoot: string;
  checkpointSyncSeconds: number;
  checkpointMaxBytes: number;
  checkpointUrlSeconds: number;
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

/** The training settings of a configuration (its TRAINING_* variables, validated by loadConfig). */
export function trainingSettingsOf(config: Config): TrainingSettings {
  return {
    webhooks: parseWebhookTargets(config.TRAINING_WEBHOOK_URLS),
    checkpointRoot: config.TRAINING_CHECKPOINT_ROOT.replace(/\/+$/, ''),
    checkpointSyncSeconds: config.TRAINING_CHECKPOINT_SYNC_SECONDS,
    checkpointMaxBytes: config.TRAINING_CHECKPOINT_MAX_BYTES,
    checkpointUrlSeconds: config.TRAINING_CHECKPOINT_URL_SECONDS,
    retry: { baseSeconds: config.TRAINING_RETRY_BASE_SECONDS, maxSeconds: config.TRAINING_RETRY_MAX_SECONDS },
    placementRetrySeconds: config.TRAINING_PLACEMENT_RETRY_SECONDS,
    webhookTimeoutMs: 3000,
    webhookMaxAttempts: 6,
  };
}

/** From an environment, through the one typed configuration module. */
export const loadTrainingSettings = (
  env: Record<string, string | undefined> = process.env,
): TrainingSettings => trainingSettingsOf(loadConfig(env));

const fromConfig = new WeakMap<Config, TrainingSettings>();

/** The settings in force for this context: its configuration's (derived once per configuration). */
export function trainingSettings(ctx: AppContext): TrainingSettings {
  let settings = fromConfig.get(ctx.config);
  if (!settings) {
    settings = trainingSettingsOf(ctx.config);
    fromConfig.set(ctx.config, settings);
  }
  return settings;
}

/**
 * Tests and benches: replace some settings for one context. They are written into the context's
 * configuration (a new object), so the context stays the one place a handler's settings come from.
 */
export function overrideTrainingSettings(
  ctx: AppContext,
  settings: Partial<
    Pick<
      TrainingSettings,
      'webhooks' | 'checkpointRoot' | 'checkpointMaxBytes' | 'retry' | 'placementRetrySeconds'
    >
  >,
): void {
  ctx.config = {
    ...ctx.config,
    ...(settings.webhooks
      ? {
          TRAINING_WEBHOOK_URLS: settings.webhooks
            .map((w) => (w.format === 'slack' ? `slack+${w.url}` : w.url))
            .join(','),
        }
      : {}),
    ...(settings.checkpointRoot !== undefined ? { TRAINING_CHECKPOINT_ROOT: settings.checkpointRoot } : {}),
    ...(settings.checkpointMaxBytes !== undefined
      ? { TRAINING_CHECKPOINT_MAX_BYTES: settings.checkpointMaxBytes }
      : {}),
    ...(settings.retry
      ? {
          TRAINING_RETRY_BASE_SECONDS: settings.retry.baseSeconds,
          TRAINING_RETRY_MAX_SECONDS: settings.retry.maxSeconds,
        }
      : {}),
    ...(settings.placementRetrySeconds !== undefined
      ? { TRAINING_PLACEMENT_RETRY_SECONDS: settings.placementRetrySeconds }
      : {}),
  };
}
