import { AsyncLocalStorage } from 'node:async_hooks';

/** AWS billing units, the quantities the price list charges for. */
export interface Units {
  /** DynamoDB on-demand read request units (eventually consistent reads count half). */
  readUnits: number;
  /** DynamoDB on-demand write request units, GSI copies included. */
  writeUnits: number;
  /** Of writeUnits, those spent on GSI copies. */
  indexWriteUnits: number;
  dynamoCalls: number;
  /** SQS requests, each 64 KB chunk of a payload counted as one request. */
  sqsRequests: number;
  schedulerInvocations: number;
  /** Scheduler API calls (create, get, list, delete): counted, not billed. */
  schedulerCalls: number;
  /** S3 PUT, COPY, POST and LIST requests. */
  s3WriteRequests: number;
  /** S3 GET requests (and the others priced like GET). */
  s3ReadRequests: number;
  s3BytesIn: number;
  s3BytesOut: number;
  ssmCalls: number;
  /** WebSocket messages, each 32 KB chunk of a frame counted as one message. */
  wsMessages: number;
  wsConnectionMinutes: number;
  /** API Gateway HTTP API requests, each 512 KB chunk counted as one request. */
  httpRequests: number;
  lambdaInvocations: number;
  /** Billed duration (ms rounded up) times memory in GB. */
  lambdaGbSeconds: number;
  /** Bytes written to the function's log (CloudWatch Logs ingestion). */
  logBytes: number;
}

export const UNIT_NAMES = [
  'readUnits',
  'writeUnits',
  'indexWriteUnits',
  'dynamoCalls',
  'sqsRequests',
  'schedulerInvocations',
  'schedulerCalls',
  's3WriteRequests',
  's3ReadRequests',
  's3BytesIn',
  's3BytesOut',
  'ssmCalls',
  'wsMessages',
  'wsConnectionMinutes',
  'httpRequests',
  'lambdaInvocations',
  'lambdaGbSeconds',
  'logBytes',
] as const satisfies readonly (keyof Units)[];

export const zeroUnits = (): Units => Object.fromEntries(UNIT_NAMES.map((n) => [n, 0])) as unknown as Units;

export function addUnits(into: Units, part: Partial<Units>, times = 1): Units {
  for (const n of UNIT_NAMES) into[n] += (part[n] ?? 0) * times;
  return into;
}

/** One line of a meter's record: what `label` (an operation: a route, an event type) spent on `kind` (a port call). */
export interface MeterEntry {
  label: string;
  kind: string;
  calls: number;
  units: Units;
}

/** Operations that ran outside any labelled operation (setup, a timer). */
export const UNLABELLED = 'other';

/**
 * Records billing units per operation and per port call. The operation is carried by
 * AsyncLocalStorage, so everything a request or an event handler does is charged to it however
 * deep the call; the metered ports (metered-ports.ts) and the HTTP and event wrappers add to it.
 */
export class Meter {
  private readonly als = new AsyncLocalStorage<string>();
  private entries = new Map<string, MeterEntry>();

  /** Runs `fn` as operation `label`: its port calls are charged to it. */
  within<T>(label: string, fn: () => T): T {
    return this.als.run(label, fn);
  }

  get label(): string {
    return this.als.getStore() ?? UNLABELLED;
  }

  add(kind: string, units: Partial<Units>, options: { calls?: number; label?: string } = {}): void {
    const label = options.label ?? this.label;
    const key = `${label}\u0000${kind}`;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { label, kind, calls: 0, units: zeroUnits() };
      this.entries.set(key, entry);
    }
    entry.calls += options.calls ?? 1;
    addUnits(entry.units, units);
  }

  /** Every entry recorded since the last reset. */
  list(): MeterEntry[] {
    return [...this.entries.values()].map((e) => ({ ...e, units: { ...e.units } }));
  }

  /** The sum over the entries that `filter` keeps. */
  total(filter: (entry: MeterEntry) => boolean = () => true): Units {
    const sum = zeroUnits();
    for (const e of this.entries.values()) if (filter(e)) addUnits(sum, e.units);
    return sum;
  }

  /** Calls of one kind (e.g. `http`, `event`) per label: how many operations ran. */
  count(label: string, kind: string): number {
    return this.entries.get(`${label}\u0000${kind}`)?.calls ?? 0;
  }

  reset(): void {
    this.entries = new Map();
  }

  /**
   * Counts what the process writes to stdout and stderr as log bytes of the running operation
   * (the Lambda log group ingests exactly that). Returns the function that restores the streams.
   * `swallow` drops the text after counting it.
   */
  captureLogs(options: { swallow?: boolean } = {}): () => void {
    const streams = [process.stdout, process.stderr];
    const originals = streams.map((s) => s.write);
    streams.forEach((stream, i) => {
      const original = originals[i]!;
      stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        const bytes = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
        this.add('log', { logBytes: bytes });
        if (options.swallow) {
          const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
          cb?.();
          return true;
        }
        return (original as (...a: unknown[]) => boolean).call(stream, chunk, ...rest);
      }) as typeof stream.write;
    });
    return () => streams.forEach((stream, i) => (stream.write = originals[i]!));
  }
}
