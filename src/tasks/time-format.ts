// The time formats the Task status uses: RFC 3339 in UTC with nine fractional digits, and a short
// human duration for the Duration printer column (see crds/task.yaml, status.duration).

/** Now as RFC 3339 with nanosecond digits (microsecond resolution from the performance clock). */
export function preciseNow(): string {
  return preciseTimestamp(performance.timeOrigin + performance.now());
}

/** Milliseconds since the epoch (fractional allowed) as RFC 3339 with nine fractional digits. */
export function preciseTimestamp(epochMilliseconds: number): string {
  const whole = Math.floor(epochMilliseconds);
  const base = new Date(whole).toISOString(); // 2026-01-02T03:04:05.123Z
  const nanosecondsInMillisecond = Math.round((epochMilliseconds - whole) * 1e6);
  return `${base.slice(0, 23)}${String(nanosecondsInMillisecond).padStart(6, '0').slice(0, 6)}Z`;
}

/** Epoch milliseconds (with fraction) of an RFC 3339 time with up to nine fractional digits. */
export function parseTimestamp(text: string): number {
  const match = /\.(\d+)Z$/.exec(text);
  const whole = Date.parse(text);
  if (!match?.[1]) return whole;
  const fraction = match[1].padEnd(9, '0');
  return Math.floor(whole / 1000) * 1000 + Number(fraction) / 1e6;
}

/** "0.412ms", "850ms", "1.234s", "2m3s", "1h0m5s". */
export function formatDuration(milliseconds: number): string {
  const clamped = Math.max(0, milliseconds);
  if (clamped < 1) return `${trimDecimals(clamped)}ms`;
  if (clamped < 1000) return `${Math.round(clamped)}ms`;
  if (clamped < 60_000) return `${trimDecimals(clamped / 1000)}s`;
  const totalSeconds = Math.round(clamped / 1000);
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  return `${hours > 0 ? `${hours}h` : ''}${minutes}m${seconds}s`;
}

function trimDecimals(value: number): string {
  return value.toFixed(3).replace(/\.?0+$/, '');
}
