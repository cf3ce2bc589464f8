import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { AGENT_SERVICE, redact, type LogLevelName } from '../protocol/log.js';

/**
 * Structured logs in the control plane's format (protocol/log.ts): one JSON object a line,
 * `{"timestamp","level","message","service",...fields}`, commandId on a command's lines, secret
 * fields redacted. `format: 'text'` prints the same line for a person: `timestamp LEVEL message k=v`.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line (component, commandId...). */
  child(fields: LogFields): Logger;
}

/**
 * The operation a line belongs to: each round of a loop (a heartbeat, a poll, an engine event)
 * runs in a scope with its own requestId, sent to the control plane as `x-request-id` so its
 * lines can be matched; a command's lines add its commandId. Lines outside any round (start-up,
 * shutdown) carry the process's own id.
 */
const scope = new AsyncLocalStorage<LogFields>();
const PROCESS_REQUEST_ID = `agent-${randomUUID()}`;

/** Runs `fn` as one operation: every line logged inside it (awaits included) carries `fields`. */
export function inLogScope<T>(fields: LogFields, fn: () => T): T {
  return scope.run({ ...scope.getStore(), ...fields }, fn);
}

/** A new operation with a fresh requestId. */
export const inNewOperation = <T>(fn: () => T): T => inLogScope({ requestId: randomUUID() }, fn);

/** The requestId of the current operation (the process's outside any). */
export const currentRequestId = (): string => {
  const id = scope.getStore()?.['requestId'];
  return typeof id === 'string' ? id : PROCESS_REQUEST_ID;
};

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function isLogLevel(value: string): value is LogLevel {
  return value in RANK;
}

/** Errors do not survive JSON.stringify; keep what helps diagnose. */
export function errorFields(error: unknown): LogFields {
  if (!(error instanceof Error)) return { message: String(error) };
  const e = error as Error & { code?: unknown; statusCode?: unknown; status?: unknown; cause?: unknown };
  const out: LogFields = { name: e.name, message: e.message };
  if (e.code !== undefined) out['code'] = e.code;
  if (e.statusCode !== undefined) out['statusCode'] = e.statusCode;
  if (e.status !== undefined) out['status'] = e.status;
  if (e.cause instanceof Error) out['cause'] = e.cause.message;
  return out;
}

function normalise(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) out[k] = v instanceof Error ? errorFields(v) : v;
  return out;
}

export type LogFormat = 'json' | 'text';
export const isLogFormat = (value: string): value is LogFormat => value === 'json' || value === 'text';

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  fields?: LogFields;
  write?: (line: string) => void;
  now?: () => Date;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const min = RANK[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const now = options.now ?? (() => new Date());
  const base = options.fields ?? {};

  const format = options.format ?? 'json';

  function render(level: LogLevel, msg: string, fields: LogFields): string {
    const head = {
      timestamp: now().toISOString(),
      level: level.toUpperCase() as LogLevelName,
      message: msg,
      service: AGENT_SERVICE,
    };
    const rest = redact({
      requestId: PROCESS_REQUEST_ID,
      ...scope.getStore(),
      ...base,
      ...normalise(fields),
    }) as LogFields;
    if (format === 'json') return JSON.stringify({ ...head, ...rest });
    // For a person the ids go last: they matter when matching lines, not when reading one.
    const { requestId, ...own } = rest;
    const pairs = Object.entries({ ...own, requestId }).map(
      ([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`,
    );
    return [head.timestamp, head.level.padEnd(5), msg, ...pairs].join(' ');
  }

  function emit(level: LogLevel, msg: string, fields?: LogFields): void {
    if (RANK[level] < min) return;
    let line: string;
    try {
      line = render(level, msg, fields ?? {});
    } catch {
      // A cyclic field must not take the agent down.
      line = JSON.stringify({
        timestamp: now().toISOString(),
        level: level.toUpperCase(),
        message: msg,
        service: AGENT_SERVICE,
        fieldsError: 'unserialisable',
      });
    }
    write(line);
  }

  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}

/** For tests and library use: drops everything. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
