/**
 * cold-start: how long a deploy takes to come back, as a script of its own. The measuring is in
 * bench/lib/cold-start.ts (the report's cold-start part runs the same code): per length and workload, a chain loaded
 * straight into a database of its own, then runs of `pawledger serve` on an empty data folder with only DATABASE_URL,
 * timed to ready (/healthz and a property read served) and to verified, with the server's peak RSS and pg_dump of the
 * same database as the floor.
 *
 * Run: npm run build && node --import tsx bench/cold-start.ts [--blocks=100000,1000000] [--workload=mixed10k,unique]
 * [--runs=3]. Databases are named pawledger_cold_<blocks>_<workload> on BENCH_PG_URL and dropped afterwards.
 */
import {
  COLD_WORKLOADS,
  type ColdStartResult,
  coldStartTable,
  isColdWorkload,
  measureColdStart,
} from './lib/cold-start.js';
import { DEFAULT_ADMIN_URL } from './lib/pg.js';

const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const lengths = arg('blocks', '100000').split(',').map(Number);
const workloads = arg('workload', 'mixed10k').split(',');
const runs = Number(arg('runs', '3'));
const server = process.env.BENCH_PG_URL ?? DEFAULT_ADMIN_URL;

for (const w of workloads)
  if (!isColdWorkload(w)) throw new Error(`unknown workload ${w}: ${Object.keys(COLD_WORKLOADS).join(', ')}`);
const results: ColdStartResult[] = [];
for (const n of lengths) {
  for (const w of workloads) {
    if (!isColdWorkload(w)) continue;
    results.push(
      await measureColdStart({
        server,
        name: `pawledger_cold_${n}_${w}`,
        blocks: n,
        workload: w,
        runs,
        progress: (line) => process.stderr.write(`${line}\n`),
      }),
    );
  }
}
process.stdout.write(`${coldStartTable(results)}\n`);
