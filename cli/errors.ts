/**
 * Exit codes of `fleet` (README "CLI"): scripts branch on these, so they only ever grow.
 */
export const EXIT = {
  ok: 0,
  /** Anything unexpected, and 5xx answers of the control plane. */
  error: 1,
  /** Bad arguments, or the control plane refused the request's shape (400/422). */
  usage: 2,
  /** The control plane could not be reached. */
  unreachable: 3,
  /** No API key, or one the control plane refused or whose role is too low (401/403). */
  auth: 4,
  /** The node, container, job, task or service does not exist (404). */
  notFound: 5,
  /** The control plane refused in the current state: name taken, no node fits, node offline (409). */
  conflict: 6,
  /** Still pending when --timeout ran out (commands, tasks, runs); it may still finish. */
  timeout: 7,
  /** What was asked ran and failed: a command, a task, a training run. */
  failed: 8,
} as const;

export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

/** An HTTP status → the exit code it means. */
export function exitFor(status: number): number {
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 404) return EXIT.notFound;
  if (status === 409) return EXIT.conflict;
  if (status === 400 || status === 413 || status === 415 || status === 422) return EXIT.usage;
  if (status === 504) return EXIT.timeout;
  return EXIT.error;
}
