/**
 * Docker multiplexes stdout/stderr of a container without a TTY: frames of an 8-byte header
 * (stream type 0/1/2, three zero bytes, big-endian length) then the payload. A TTY container's
 * log is raw; that is detected from the first header and returned as is.
 */
export function demuxLogs(buffer: Buffer): { stdout: string; stderr: string; combined: string } {
  const looksFramed =
    buffer.length >= 8 && buffer[0]! <= 2 && buffer[1] === 0 && buffer[2] === 0 && buffer[3] === 0;
  if (!looksFramed) {
    const text = buffer.toString('utf8');
    return { stdout: text, stderr: '', combined: text };
  }
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const all: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const type = buffer[offset]!;
    const size = buffer.readUInt32BE(offset + 4);
    const payload = buffer.subarray(offset + 8, offset + 8 + size);
    (type === 2 ? err : out).push(payload);
    all.push(payload);
    offset += 8 + size;
  }
  return {
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(err).toString('utf8'),
    combined: Buffer.concat(all).toString('utf8'),
  };
}

export interface LogEntry {
  stream: 'stdout' | 'stderr';
  /** The engine's stamp in nanoseconds since the epoch; null when the line carried none. */
  ns: bigint | null;
  /** The stamp has whole seconds only (Podman's API): lines within that second are not ordered. */
  coarse: boolean;
  text: string;
}

/** The last lines of a container, ordered by the engine's timestamps, with each stream also on its own. */
export interface LogTail {
  /** Both streams by the engine's stamps; where the stamps cannot order them, stdout then stderr. */
  text: string;
  stdout: string;
  stderr: string;
}

const STAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2}) /;

/**
 * Two engine readers stamp stdout and stderr apart; Docker's were seen stamping a stderr line
 * 0.16 ms before the stdout lines written just before it. Lines of different streams closer than
 * this are not ordered by their stamps.
 */
export const UNORDERED_WITHIN_NS = 10_000_000n;

/** RFC 3339 with up to nanoseconds (Docker trims trailing zeros; Podman stamps whole seconds). */
export function stampNs(line: string): { ns: bigint | null; coarse: boolean; rest: string } {
  const m = STAMP.exec(line);
  if (!m) return { ns: null, coarse: false, rest: line };
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return { ns: null, coarse: false, rest: line };
  const frac = BigInt((m[2] ?? '').padEnd(9, '0'));
  return { ns: BigInt(ms) * 1_000_000n + frac, coarse: m[2] === undefined, rest: line.slice(m[0].length) };
}

/** Lines of a log fetched with `timestamps: true`, in the engine's order. */
export function parseStampedLogs(buffer: Buffer): LogEntry[] {
  const out: LogEntry[] = [];
  for (const frame of demuxFrames(buffer)) {
    for (const line of frame.text.split('\n')) {
      if (line === '') continue;
      const { ns, coarse, rest } = stampNs(line);
      out.push({ stream: frame.stream, ns, coarse, text: rest });
    }
  }
  return out;
}

/**
 * Orders by the engine's stamps and keeps the last `tail` lines. Where lines of both streams lie
 * closer together than their stamps can tell apart, they are kept apart instead: that group's
 * stdout lines, then its stderr lines, each stream in its own (always true) order. Each stream's
 * own tail comes along too.
 */
export function orderedTail(entries: LogEntry[], tail: number): LogTail {
  const sorted = entries
    .map((e, i) => ({ e, i }))
    .sort((a, b) => {
      if (a.e.ns !== null && b.e.ns !== null && a.e.ns !== b.e.ns) return a.e.ns < b.e.ns ? -1 : 1;
      return a.i - b.i;
    })
    .map(({ e }) => e);
  const ordered: LogEntry[] = [];
  let group: LogEntry[] = [];
  const flush = () => {
    ordered.push(
      ...group.filter((e) => e.stream === 'stdout'),
      ...group.filter((e) => e.stream === 'stderr'),
    );
    group = [];
  };
  for (const e of sorted) {
    const prev = group.at(-1);
    if (prev && !closeTogether(prev, e)) flush();
    group.push(e);
  }
  flush();
  const lines = (list: LogEntry[]) =>
    list
      .slice(-tail)
      .map((e) => `${e.text}\n`)
      .join('');
  return {
    text: lines(ordered),
    stdout: lines(entries.filter((e) => e.stream === 'stdout')),
    stderr: lines(entries.filter((e) => e.stream === 'stderr')),
  };
}

function closeTogether(a: LogEntry, b: LogEntry): boolean {
  if (a.ns === null || b.ns === null) return false;
  const gap = b.ns > a.ns ? b.ns - a.ns : a.ns - b.ns;
  if (a.coarse || b.coarse) return gap < 1_000_000_000n && a.ns / 1_000_000_000n === b.ns / 1_000_000_000n;
  return gap < UNORDERED_WITHIN_NS;
}

function demuxFrames(buffer: Buffer): { stream: 'stdout' | 'stderr'; text: string }[] {
  const looksFramed =
    buffer.length >= 8 && buffer[0]! <= 2 && buffer[1] === 0 && buffer[2] === 0 && buffer[3] === 0;
  if (!looksFramed) return [{ stream: 'stdout', text: buffer.toString('utf8') }];
  const frames: { stream: 'stdout' | 'stderr'; text: string }[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const type = buffer[offset]!;
    const size = buffer.readUInt32BE(offset + 4);
    frames.push({
      stream: type === 2 ? 'stderr' : 'stdout',
      text: buffer.subarray(offset + 8, offset + 8 + size).toString('utf8'),
    });
    offset += 8 + size;
  }
  return frames;
}
