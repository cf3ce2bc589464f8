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
