/**
 * save-cost: what one save costs as the chain grows, for pawledger and for the naive design it replaced.
 *
 *   node --import tsx bench/save-cost.ts [--quick] [--build=batched|sequential] [--profile[=file.cpuprofile]] [--lengths=1000,10000]
 *
 * It creates its own databases on the PostgreSQL server at BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/
 * postgres), one per chain length, named pl_bench_<pid>_<length>, and drops them at the end; local stores live in a
 * temporary folder, removed too. For each chain length it opens one pawledger Ledger (DATABASE_URL = that database)
 * and grows it to that length through Ledger.register (with the group commit by default, --build=sequential for
 * one save at a time). It then times saves one at a time, in rounds that visit every length in turn, so a change in
 * the machine's load during the run hits every length alike. The naive design (whole chain as JSON, sealed, written
 * and inserted on every save) is measured the same way afterwards, its chains grown in memory without saving.
 * Results are printed as Markdown tables; docs/BENCHMARKS.md says what each column means.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseKey } from '../src/crypto/key.js';
import { Sealer } from '../src/crypto/seal.js';
import { appendFloor, commitFloor, roundTripFloor, type FloorResult } from './lib/floors.js';
import { floorsNowMs, interleave } from './lib/interleave.js';
import { describeMachine, loadNow } from './lib/machine.js';
import { NaiveLedger } from './lib/naive.js';
import { PawledgerBench, type Measurement } from './lib/pawledger.js';
import { createDatabase, DEFAULT_ADMIN_URL, databaseUrl, dropDatabase, WalMeter } from './lib/pg.js';
import { profiled, saveProfile, summarizeProfile } from './lib/profile.js';
import { bytes, ms, summarize, table } from './lib/stats.js';

interface Plan {
  lengths: number[];
  /** rounds: each length's saves are measured in this many interleaved runs. */
  rounds: number;
  pawledgerSaves: number;
  pawledgerWarmup: number;
  naiveSaves: (length: number) => number;
  naiveWarmup: (length: number) => number;
  floorOps: number;
  floorsNowOps: number;
  profileSaves: number;
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const profileArg = args.find((a) => a === '--profile' || a.startsWith('--profile='));
const lengthsArg = args.find((a) => a.startsWith('--lengths='));
const buildArg = args.find((a) => a.startsWith('--build='));
const build = buildArg ? buildArg.slice('--build='.length) : 'batched';
function usage(problem: string): never {
  process.stderr.write(
    `${problem}\nusage: node --import tsx bench/save-cost.ts [--quick] [--build=batched|sequential] [--profile[=file]] [--lengths=1000,10000]\n`,
  );
  process.exit(2);
}
for (const a of args)
  if (a !== '--quick' && a !== profileArg && a !== lengthsArg && a !== buildArg) usage(`unknown argument ${a}`);
if (build !== 'batched' && build !== 'sequential') usage(`--build must be batched or sequential, not ${build}`);

const plan: Plan = quick
  ? {
      lengths: [1000, 10_000],
      rounds: 5,
      pawledgerSaves: 100,
      pawledgerWarmup: 10,
      naiveSaves: (l) => (l <= 1000 ? 30 : 10),
      naiveWarmup: () => 1,
      floorOps: 200,
      floorsNowOps: 30,
      profileSaves: 500,
    }
  : {
      lengths: [1000, 10_000, 100_000],
      rounds: 10,
      pawledgerSaves: 200,
      pawledgerWarmup: 20,
      naiveSaves: (l) => (l <= 10_000 ? 200 : 25),
      naiveWarmup: (l) => (l <= 10_000 ? 5 : 1),
      floorOps: 1000,
      floorsNowOps: 50,
      profileSaves: 2000,
    };
if (lengthsArg) {
  plan.lengths = lengthsArg
    .slice('--lengths='.length)
    .split(',')
    .map(Number)
    .sort((a, b) => a - b);
  if (plan.lengths.some((l) => !Number.isInteger(l) || l < 10))
    usage('--lengths takes integers of 10 or more, separated by commas');
}

const started = performance.now();
function progress(msg: string): void {
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
}

function floorRows(floors: FloorResult[]): string[][] {
  return floors.map((f) => {
    const s = summarize(f.times);
    const w = f.wal ? summarize(f.wal) : undefined;
    const o = f.ownWal ? summarize(f.ownWal) : undefined;
    return [
      f.name,
      String(s.n),
      ms(s.median),
      ms(s.p95),
      w ? bytes(w.median) : '-',
      w ? bytes(w.mean) : '-',
      o ? bytes(o.median) : '-',
      o ? bytes(o.mean) : '-',
    ];
  });
}

function resultRow(m: Measurement): string[] {
  const t = summarize(m.samples.map((s) => s.ms));
  const w = summarize(m.samples.map((s) => s.wal));
  const f = summarize(m.floorsNowMs);
  const own = m.samples.every((s) => s.ownWal !== undefined) ? summarize(m.samples.map((s) => s.ownWal!)) : undefined;
  const fpi = own ? summarize(m.samples.map((s) => s.ownFpi!)) : undefined;
  const opt = (v: number | undefined) => (v === undefined ? '-' : bytes(v));
  return [
    m.chainLength.toLocaleString('en-US'),
    m.design,
    String(t.n),
    ms(t.median),
    ms(t.p95),
    ms(t.mean),
    ms(m.cpuMsPerSave),
    ms(f.median),
    bytes(w.median),
    bytes(w.mean),
    opt(own?.median),
    opt(own?.mean),
    opt(fpi?.mean),
    bytes(m.rowBytes),
  ];
}

function stageRows(m: Measurement): string[][] {
  const names = Object.keys(m.samples[0]?.stages ?? {});
  return names.map((name) => {
    const s = summarize(m.samples.map((x) => x.stages[name]!));
    return [m.chainLength.toLocaleString('en-US'), m.design, name, ms(s.median), ms(s.mean)];
  });
}

function ratioLine(design: string, results: Measurement[]): string {
  const mine = results.filter((m) => m.design === design);
  const first = mine[0];
  const last = mine.at(-1);
  if (!first || !last || first === last) return `${design}: (one length only)`;
  const a = summarize(first.samples.map((s) => s.ms));
  const b = summarize(last.samples.map((s) => s.ms));
  const walOf = (m: Measurement) => m.samples.map((s) => s.ownWal ?? s.wal);
  const wa = summarize(walOf(first));
  const wb = summarize(walOf(last));
  const at = (m: Measurement) => `${Math.round(m.chainLength / 1000)}k`;
  return (
    `${design}: per-save time at ${at(last)} / at ${at(first)}: median ${(b.median / a.median).toFixed(2)}x, p95 ${(b.p95 / a.p95).toFixed(2)}x, ` +
    `mean ${(b.mean / a.mean).toFixed(2)}x; ${first.samples[0]?.ownWal === undefined ? '' : 'own '}WAL per save median ${(wb.median / wa.median).toFixed(2)}x, mean ${(wb.mean / wa.mean).toFixed(2)}x`
  );
}

async function main(): Promise<void> {
  const serverUrl = process.env.BENCH_PG_URL ?? DEFAULT_ADMIN_URL;
  const dbName = (length: number) => `pl_bench_${process.pid}_${length}`;
  const dir = await mkdtemp(join(tmpdir(), 'pawledger-bench-'));
  const key = randomBytes(32).toString('base64');
  const run = randomBytes(4).toString('hex');
  let wal: WalMeter | null = null;
  const paws: PawledgerBench[] = [];
  const naives: NaiveLedger[] = [];
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    for (const p of paws) await p.close().catch(() => {});
    for (const n of naives) await n.close().catch(() => {});
    await wal?.close().catch(() => {});
    for (const length of plan.lengths) {
      await dropDatabase(serverUrl, dbName(length)).catch((err: unknown) =>
        process.stderr.write(`could not drop database ${dbName(length)}: ${String(err)}\n`),
      );
    }
    await rm(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    progress('interrupted: dropping the benchmark databases');
    void cleanup().finally(() => process.exit(130));
  });

  try {
    for (const length of plan.lengths) await createDatabase(serverUrl, dbName(length));
    const urls = plan.lengths.map((l) => databaseUrl(serverUrl, dbName(l)));
    const url = urls[0]!;
    wal = await WalMeter.connect(url);
    const meter = wal;
    const about = await describeMachine(meter.client);
    const loadBefore = await loadNow();
    progress(`databases ${plan.lengths.map(dbName).join(', ')}; local stores in ${dir}`);

    progress('floors');
    const floors = [
      await roundTripFloor(url, plan.floorOps),
      await commitFloor(url, plan.floorOps, meter),
      await appendFloor(dir, plan.floorOps, 'fdatasync'),
      await appendFloor(dir, plan.floorOps, 'fsync'),
    ];
    const floorsNow = () => floorsNowMs(url, dir, meter, plan.floorsNowOps);

    for (const [i, length] of plan.lengths.entries()) {
      const t = performance.now();
      const p = await PawledgerBench.open({
        databaseUrl: urls[i]!,
        dataDir: join(dir, `pawledger-${length}`),
        key,
        run: `${run}-${length}`,
      });
      paws.push(p);
      await p.growTo(length, build as 'batched' | 'sequential', (n) =>
        progress(`pawledger: ${n.toLocaleString('en-US')} blocks`),
      );
      for (let w = 0; w < plan.pawledgerWarmup; w++) await p.save();
      progress(
        `pawledger: ledger ${i + 1} grown (${build}) to ${p.length} blocks in ${((performance.now() - t) / 1000).toFixed(1)} s`,
      );
    }
    progress(`pawledger: measuring ${plan.pawledgerSaves} saves per length in ${plan.rounds} rounds`);
    const results = await interleave({
      subjects: paws,
      total: () => plan.pawledgerSaves,
      rounds: plan.rounds,
      measure: (p, n) => p.measure(n, meter),
      floors: floorsNow,
      label: (p) => `${p.length}`,
      onRound: progress,
    });

    let profileText = '';
    if (profileArg) {
      const path = profileArg.includes('=')
        ? resolve(profileArg.slice('--profile='.length))
        : resolve(`save-cost-${process.pid}.cpuprofile`);
      const p = paws.at(-1)!;
      progress(`pawledger: profiling ${plan.profileSaves} more saves at ${p.length} blocks`);
      const intervalUs = 100;
      const profile = await profiled(async () => {
        for (let i = 0; i < plan.profileSaves; i++) await p.save();
      }, intervalUs);
      await saveProfile(profile, path);
      profileText = `${summarizeProfile(profile, process.cwd(), plan.profileSaves, intervalUs)}\n\n(profile written to ${path})`;
    }
    while (paws.length > 0) await paws.pop()!.close();

    const sealer = new Sealer(parseKey(key));
    for (const [i, length] of plan.lengths.entries()) {
      const n = await NaiveLedger.open({
        databaseUrl: urls[i]!,
        dir: join(dir, `naive-${length}`),
        sealer,
        run: `${run}-${length}-naive`,
      });
      naives.push(n);
      n.growTo(length - plan.naiveWarmup(length));
      for (let w = 0; w < plan.naiveWarmup(length); w++) await n.save();
    }
    progress(
      `naive: chains grown in memory; measuring ${plan.lengths.map((l) => `${plan.naiveSaves(l)} at ${l}`).join(', ')} in ${plan.rounds} rounds`,
    );
    results.push(
      ...(await interleave({
        subjects: naives,
        total: (i) => plan.naiveSaves(plan.lengths[i]!),
        rounds: plan.rounds,
        measure: (n, k) => n.measure(k, meter),
        floors: floorsNow,
        label: (n) => `${n.length}`,
        onRound: progress,
      })),
    );
    while (naives.length > 0) await naives.pop()!.close();

    const out = [
      `# save-cost (${quick ? 'quick' : 'full'} mode), ${new Date().toISOString()}`,
      '',
      ...about.map((l) => `- ${l}`),
      `- pawledger chains built with --build=${build}; ${plan.rounds} interleaved rounds per design`,
      `- machine at start: ${loadBefore}; at end: ${await loadNow()}`,
      '',
      '## Floors',
      '',
      table(
        [
          'operation',
          'ops',
          'median ms',
          'p95 ms',
          'WAL/op median',
          'WAL/op mean',
          'own WAL/op median',
          'own WAL/op mean',
        ],
        floorRows(floors),
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
      '',
      '## Per-save cost by chain length',
      '',
      'Times are wall-clock per save (ms); CPU = user+system time of this Node process (all threads) per save. Database bytes:',
      'WAL = advance of pg_current_wal_lsn() from just before to just after each save (cluster-wide: includes other sessions);',
      "own WAL = the WAL records in that range that touch this design's database or belong to its transactions (pg_walinspect),",
      'FPI = the full-page images among them; rows = pg_column_size(row.*) summed over the rows the saves inserted, per save.',
      'floors now = median PostgreSQL commit floor + median 500-byte append+fdatasync floor, re-measured just before each',
      'run of saves (median over the runs): a yardstick for how loaded the machine was while that row was measured.',
      '',
      table(
        [
          'chain length',
          'design',
          'saves',
          'median ms',
          'p95 ms',
          'mean ms',
          'CPU ms/save',
          'floors now ms',
          'WAL/save median',
          'WAL/save mean',
          'own WAL/save median',
          'own WAL/save mean',
          'of which FPI mean',
          'rows/save',
        ],
        results.map(resultRow),
        ['r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
      '',
      ratioLine('pawledger', results),
      ratioLine('naive', results),
      '',
      "## Where a save's time goes",
      '',
      table(['chain length', 'design', 'stage', 'median ms', 'mean ms'], results.flatMap(stageRows), [
        'r',
        'l',
        'l',
        'r',
        'r',
      ]),
      '',
      `Most busy sessions seen on other databases after a run of saves: ${results.map((m) => `${m.design}@${m.chainLength}=${m.busyOtherSessions}`).join(', ')}`,
      `Total run time: ${((performance.now() - started) / 1000).toFixed(1)} s`,
    ];
    if (profileText) out.push('', '## CPU profile of pawledger saves', '', profileText);
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    await cleanup();
  }
}

await main();
