/** The documents write sizes and durations as strings ("24GB", "3.2s", "7d 4h 23m"). */

const round1 = (n: number): number => Math.round(n * 10) / 10;

/** MiB → "24GB", "6.5GB", "512MB". */
export function formatMemory(mb: number | undefined): string | null {
  if (mb === undefined || !Number.isFinite(mb)) return null;
  if (mb < 1024) return `${Math.round(mb)}MB`;
  return `${round1(mb / 1024)}GB`;
}

/** Seconds → "3.2s", "15s", "2m", "2m 5s", "1h 3m". */
export function formatDuration(seconds: number | undefined): string | null {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return null;
  if (seconds < 60) return `${round1(seconds)}s`;
  const s = Math.round(seconds);
  if (s < 3600) return s % 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s / 60}m`;
  const m = Math.floor(s / 60);
  return m % 60 ? `${Math.floor(m / 60)}h ${m % 60}m` : `${m / 60}h`;
}

/** Milliseconds → "7d 4h 23m". */
export function formatUptime(ms: number): string {
  const totalMinutes = Math.max(0, Math.floor(ms / 60_000));
  const d = Math.floor(totalMinutes / 1440);
  const h = Math.floor((totalMinutes % 1440) / 60);
  const m = totalMinutes % 60;
  return `${d}d ${h}h ${m}m`;
}

export const percent = (part: number, whole: number): number =>
  whole > 0 ? round1((100 * part) / whole) : 0;

export { round1 };
