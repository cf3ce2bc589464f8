/** Structured JSON logs, one object a line: `{"time","level","msg",...fields}`. */
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

export interface LoggerOptions {
  level?: LogLevel;
  fields?: LogFields;
  write?: (line: string) => void;
  now?: () => Date;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const min = RANK[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const now = options.now ?? (() => new Date());
  const base = options.fields ?? {};

  function emit(level: LogLevel, msg: string, fields?: LogFields): void {
    if (RANK[level] < min) return;
    let line: string;
    try {
      line = JSON.stringify({ time: now().toISOString(), level, msg, ...base, ...normalise(fields ?? {}) });
    } catch {
      // A cyclic field must not take the agent down.
      line = JSON.stringify({
        time: now().toISOString(),
        level,
        msg,
        ...base,
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
