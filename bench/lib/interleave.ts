import { appendFloor, commitFloor } from './floors.js';
import { merge, type Measurement } from './pawledger.js';
import type { WalMeter } from './pg.js';
import { summarize } from './stats.js';

/** FloorsNow is the two durable writes' floors measured at one moment: medians (ms) of each. */
export interface FloorsNow {
  /** commit is the median autocommitted one-row PostgreSQL INSERT. */
  commit: number;
  /** append is the median 500-byte append + fdatasync. */
  append: number;
}

/**
 * floorPartsNowMs re-measures the two floors briefly (commit and append+fdatasync, `n` operations each) and gives
 * each one's median: a yardstick for the machine's load at this moment.
 */
export async function floorPartsNowMs(url: string, dir: string, wal: WalMeter, n: number): Promise<FloorsNow> {
  const commit = await commitFloor(url, n, wal, 3, false);
  const append = await appendFloor(dir, n, 'fdatasync', 3);
  return { commit: summarize(commit.times).median, append: summarize(append.times).median };
}

/** floorsNowMs is floorPartsNowMs' two medians added: median commit + median append+fdatasync. */
export async function floorsNowMs(url: string, dir: string, wal: WalMeter, n: number): Promise<number> {
  const f = await floorPartsNowMs(url, dir, wal, n);
  return f.commit + f.append;
}

/**
 * interleave measures `total(i)` saves for each subject i in `rounds` rounds, visiting the subjects in a rotating
 * order each round and re-measuring the floors before each visit, so a change in the machine's load during the run
 * falls on every subject alike. It returns one merged measurement per subject, in the subjects' order.
 */
export async function interleave<T>(options: {
  subjects: T[];
  total: (i: number) => number;
  rounds: number;
  measure: (s: T, n: number) => Promise<Measurement>;
  /** floors measures the floors before a visit: their sum, or each one (kept apart in the measurement too). */
  floors: () => Promise<number | FloorsNow>;
  label: (s: T) => string;
  onRound?: (line: string) => void;
}): Promise<Measurement[]> {
  const { subjects, total, rounds, measure, floors, label, onRound } = options;
  const runs: Measurement[][] = subjects.map(() => []);
  const done = subjects.map(() => 0);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < subjects.length; k++) {
      const i = (k + r) % subjects.length;
      const n = Math.min(Math.ceil(total(i) / rounds), total(i) - done[i]!);
      if (n <= 0) continue;
      const f = await floors();
      const parts = typeof f === 'number' ? {} : { commitFloorMs: [f.commit], appendFloorMs: [f.append] };
      const sum = typeof f === 'number' ? f : f.commit + f.append;
      runs[i]!.push({ ...(await measure(subjects[i]!, n)), floorsNowMs: [sum], ...parts });
      done[i]! += n;
    }
    onRound?.(`  round ${r + 1}/${rounds}: ${subjects.map((s, i) => `${label(s)} ${done[i]}`).join(', ')}`);
  }
  return runs.map(merge);
}
