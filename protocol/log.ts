/**
 * The one log line format of the control plane and the agent: a JSON object a line with
 * `timestamp` (ISO 8601), `level` (DEBUG, INFO, WARN, ERROR), `message`, `service`, then the
 * line's fields; a line about an API request carries `requestId`, one about a node command
 * `commandId`. Field values under a secret-looking name are replaced before the line is written.
 */
export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

/** Service names on the lines. */
export const AGENT_SERVICE = 'fleet-agent';

export const REDACTED = '[REDACTED]';

/** Names whose values are credentials: API keys, bearer tokens, passwords, secrets, AWS keys. */
const SECRET_NAME =
  /(authorization|password|passwd|secret|token|api[-_]?key|credential|private[-_]?key|session[-_]?key|accesskeyid|cookie)/i;

/** Whether a field of this name is never logged as is. */
export const isSecretName = (name: string): boolean => SECRET_NAME.test(name);

/** A copy with every secret-looking field replaced, at any depth (arrays and plain objects). */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null)
    return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[k] = isSecretName(k) && v !== undefined && v !== null && v !== '' ? REDACTED : redact(v, depth + 1);
  return out;
}
