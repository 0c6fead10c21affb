/**
 * parseDuration reads a duration such as `6h`, `30m`, `45s`, `2d`, `500ms` or a bare number of seconds, into
 * milliseconds; it returns null for anything else (the caller names the variable in its error).
 */
export function parseDuration(raw: string): number | null {
  const m = /^(\d{1,9})\s*(ms|s|m|h|d)?$/.exec(raw.trim());
  if (!m) return null;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 'ms'];
  return Number(m[1]) * unit;
}
