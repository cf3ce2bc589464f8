import type { Config } from './config.js';
import type { AppContext } from './context.js';

// Placeholder until the AWS adapters land: the emulator mode is wired in the next commit.
export function createAwsContext(_config: Config, _options: { mode: AppContext['mode']; now?: () => number }): AppContext {
  throw new Error('AWS adapters not wired yet');
}
export async function ensureAwsResources(_ctx: AppContext): Promise<void> {}
