/** What every table of operation docs shares: the entry's shape and the sentences said once. */

export interface OperationDoc {
  description: string;
  /** The request body example (JSON bodies). */
  request?: unknown;
  /** Example values of path parameters. */
  params?: Record<string, string>;
  /** An example of the success response body. */
  response?: unknown;
  /** An example of a 202 that is not a list of pending commands. */
  accepted?: unknown;
}

/** Said once for every call that waits for agents (functions/nodes/settle.ts). */
export const WAITS =
  'Waits for the agents up to COMMAND_WAIT_MS (20 s by default); past that it answers 202 with `pending_commands`, each to follow with GET /commands/{command_id}.';
export const RESOURCES =
  '`cpu_limit` is in cores as a string (`"0.5"`, `"2"`); `memory_limit` and `disk_limit` are sizes with a binary unit (`"512m"`, `"1g"`, `"10g"`); `gpus` is a whole number of GPUs (0 to 16).';

/** The body of a 202 from a call that waits for agents. */
export const PENDING_EXAMPLE = { status: 'pending', pending_commands: ['cmd-7f3c2a9e1b4d'] };
