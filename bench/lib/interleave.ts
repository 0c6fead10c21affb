import { appendFloor, commitFloor } from './floors.js';
import { merge, type Measurement } from './pawledger.js';
import type { WalMeter } from './pg.js';
import { summarize } from './stats.js';

/**
 * floorsNowMs re-measures the two floors briefly (median commit + median append+fdatasync, `n` operations each): a
 * yardstick for the machine's load at this moment.
 */
export async function floorsNowMs(url: string, dir: string, wal: WalMeter, n: number): Promise<number> {
  const commit = await commitFloor(url, n, wal, 3, false);
  const append = await appendFloor(dir, n, 'fdatasync', 3);
  return summarize(commit.times).median + summarize(append.times).median;
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
  floors: () => Promise<number>;
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
      runs[i]!.push({ ...(await measure(subjects[i]!, n)), floorsNowMs: [f] });
      done[i]! += n;
    }
    onRound?.(`  round ${r + 1}/${rounds}: ${subjects.map((s, i) => `${label(s)} ${done[i]}`).join(', ')}`);
  }
  return runs.map(merge);
}
