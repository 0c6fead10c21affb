/** Summary is what the tables show of a set of samples. */
export interface Summary {
  n: number;
  median: number;
  p95: number;
  mean: number;
  min: number;
  max: number;
}

/** percentile is the nearest-rank percentile (p in 0..100) of unsorted samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

/** summarize computes the median, p95 (nearest rank), mean, min and max of samples. */
export function summarize(samples: readonly number[]): Summary {
  const n = samples.length;
  const sum = samples.reduce((a, b) => a + b, 0);
  return {
    n,
    median: percentile(samples, 50),
    p95: percentile(samples, 95),
    mean: n ? sum / n : Number.NaN,
    min: n ? Math.min(...samples) : Number.NaN,
    max: n ? Math.max(...samples) : Number.NaN,
  };
}

/** ms formats milliseconds with 3 significant-ish decimals. */
export function ms(v: number): string {
  if (!Number.isFinite(v)) return '-';
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

/** bytes formats a byte count: exact below 10 kB, else kB/MB with one decimal. */
export function bytes(v: number): string {
  if (!Number.isFinite(v)) return '-';
  if (v < 10_000) return `${Math.round(v)} B`;
  if (v < 10_000_000) return `${(v / 1000).toFixed(1)} kB`;
  return `${(v / 1_000_000).toFixed(1)} MB`;
}

/** table renders rows as a Markdown table (readable as plain text too), columns padded. */
export function table(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  align: readonly ('l' | 'r')[] = [],
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const cell = (s: string, i: number) => (align[i] === 'l' ? s.padEnd(widths[i]!) : s.padStart(widths[i]!));
  const line = (r: readonly string[]) => `| ${r.map((c, i) => cell(c, i)).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (align[i] === 'l' ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}
