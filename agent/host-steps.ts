import type { InstallStep } from '../protocol/install.js';

/** host.install's pieces share these: a failed step with its reason, and shell quoting. */

/** A failure at a step, with the reason the job shows. */
export class InstallStepError extends Error {
  override name = 'InstallStepError';
  constructor(
    readonly step: InstallStep,
    message: string,
  ) {
    super(message);
  }
}

/** Reports a step's progress (best effort: a lost report does not stop the install). */
export type StepReporter = (name: InstallStep, status: 'running' | 'ok', detail?: string) => Promise<void>;

/** Single-quoted for sh and for an env file sourced by sh. */
export const shQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
