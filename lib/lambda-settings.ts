/**
 * Lambda settings every function shares, apart from lib/function.ts so that the cost model
 * (bench/cost) reads the same values without loading the CDK.
 */

/** CPU scales with memory: 1 GB keeps cold starts and JSON/zod work short for a few cents more. */
export const LAMBDA_MEMORY_MB = 1024;

/**
 * Functions sized apart by default: the agent routes (heartbeats, command acks) do a few small
 * reads and writes each and run most often (one heartbeat a node every 30 s), so half a GB halves
 * their GB-seconds. The events worker runs the minute schedule and event handlers, waiting on the
 * table far more than computing; its largest unit of work is bounded (a sweep invocation reads at
 * most 10,000 records, about 5 s at 1 GB on dynalite, well inside its 60 s). `-c lambdaMemory=agent=1024,events=1024`
 * restores the common size.
 */
export const LAMBDA_MEMORY_DEFAULTS: Readonly<Record<string, number>> = { agent: 512, events: 512 };

/**
 * Lambda's own log lines (system logs, JSON format) at WARN: the START and REPORT lines it writes at
 * INFO for every invocation (about 300 bytes, most of a heartbeat's log volume) are not ingested;
 * timeouts and crashes still are. Duration and memory stay in the CloudWatch metrics.
 * https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html
 */
export const LAMBDA_SYSTEM_LOG_LEVEL = 'WARN' as const;

/** Bytes of system log lines ingested per successful invocation at that level (the cost model's figure). */
export const LAMBDA_SYSTEM_LOG_BYTES: Record<'DEBUG' | 'INFO' | 'WARN', number> = {
  // START (~70), END (~55) and REPORT (~150-190) lines in the text format: an estimate from their documented shape.
  DEBUG: 300,
  INFO: 300,
  WARN: 0,
};

/** Functions whose memory a deployment may set: the route groups, the events worker, the WebSocket function. */
export type FunctionName = string;

/**
 * `agent=512,events=768`: memory per function, from `-c lambdaMemory=...` (cdk) or
 * `npm run cost -- --memory ...`, over LAMBDA_MEMORY_DEFAULTS. Functions not named keep LAMBDA_MEMORY_MB.
 */
export function parseLambdaMemory(value: unknown, known: readonly string[]): Record<FunctionName, number> {
  const out: Record<string, number> = Object.fromEntries(
    Object.entries(LAMBDA_MEMORY_DEFAULTS).filter(([name]) => known.includes(name)),
  );
  if (value === undefined || value === '') return out;
  for (const part of String(value).split(',')) {
    const [name, mb] = part.split('=').map((s) => s.trim());
    const n = Number(mb);
    if (!name || !known.includes(name))
      throw new Error(`lambdaMemory: unknown function ${String(name)} (one of ${known.join(', ')})`);
    if (!Number.isInteger(n) || n < 128 || n > 10_240)
      throw new Error(`lambdaMemory: ${name} needs whole MB from 128 to 10240, got ${String(mb)}`);
    out[name] = n;
  }
  return out;
}

/**
 * `-c reservedConcurrency=agent=50,events=10`: concurrency reserved for (and capped at) each named
 * function, so a flood on one route group cannot take the account's pool from the others (agents'
 * heartbeats, the events worker). Unnamed functions share the unreserved pool.
 */
export function parseReservedConcurrency(value: unknown, known: readonly string[]): Record<string, number> {
  if (value === undefined || value === '') return {};
  const out: Record<string, number> = {};
  for (const part of String(value).split(',')) {
    const [name, count] = part.split('=').map((s) => s.trim());
    const n = Number(count);
    if (!name || !known.includes(name))
      throw new Error(`reservedConcurrency: unknown function ${String(name)} (one of ${known.join(', ')})`);
    if (!Number.isInteger(n) || n < 0)
      throw new Error(`reservedConcurrency: ${name} needs a whole number >= 0, got ${String(count)}`);
    out[name] = n;
  }
  return out;
}
