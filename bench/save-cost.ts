/**
 * save-cost: what one save costs as the chain grows, for pawledger and for the naive design it replaced.
 *
 *   node --import tsx bench/save-cost.ts [--quick] [--build=batched|sequential] [--profile[=file.cpuprofile]] [--lengths=1000,10000]
 *
 * It creates its own database on the PostgreSQL server at BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/
 * postgres), named pl_bench_<pid>, and drops it at the end; the local stores live in a temporary folder, removed too.
 * For each chain length it grows pawledger's Ledger to that length through Ledger.register (with the group commit
 * by default, --build=sequential for one save at a time), then times `n` more saves one at a time; then it does the
 * same for the naive design (whole chain as JSON, sealed, written and inserted on every save), whose chain is grown
 * in memory between lengths. Results are printed as Markdown tables.
 * See docs/BENCHMARKS.md for what each column means.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseKey } from '../src/crypto/key.js';
import { Sealer } from '../src/crypto/seal.js';
import { appendFloor, commitFloor, roundTripFloor, type FloorResult } from './lib/floors.js';
import { NaiveLedger } from './lib/naive.js';
import { PawledgerBench, type Measurement } from './lib/pawledger.js';
import { createDatabase, DEFAULT_ADMIN_URL, databaseUrl, dropDatabase, WalMeter } from './lib/pg.js';
import { profiled, saveProfile, summarizeProfile } from './lib/profile.js';
import { bytes, ms, summarize, table } from './lib/stats.js';

interface Plan {
  lengths: number[];
  pawledgerSaves: number;
  naiveSaves: (length: number) => number;
  naiveWarmup: (length: number) => number;
  floorOps: number;
  profileSaves: number;
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const profileArg = args.find((a) => a === '--profile' || a.startsWith('--profile='));
const lengthsArg = args.find((a) => a.startsWith('--lengths='));
const buildArg = args.find((a) => a.startsWith('--build='));
const build = buildArg ? buildArg.slice('--build='.length) : 'batched';
for (const a of args) {
  if ((a !== '--quick' && a !== profileArg && a !== lengthsArg && a !== buildArg) || (build !== 'batched' && build !== 'sequential')) {
    process.stderr.write(`bad argument ${a}\nusage: node --import tsx bench/save-cost.ts [--quick] [--build=batched|sequential] [--profile[=file]] [--lengths=1000,10000]\n`);
    process.exit(2);
  }
}

const plan: Plan = quick
  ? { lengths: [1000, 10_000], pawledgerSaves: 100, naiveSaves: (l) => (l <= 1000 ? 50 : 15), naiveWarmup: () => 2, floorOps: 200, profileSaves: 500 }
  : {
      lengths: [1000, 10_000, 100_000],
      pawledgerSaves: 200,
      naiveSaves: (l) => (l <= 10_000 ? 200 : 25),
      naiveWarmup: (l) => (l <= 10_000 ? 5 : 2),
      floorOps: 1000,
      profileSaves: 2000,
    };
if (lengthsArg) plan.lengths = lengthsArg.slice('--lengths='.length).split(',').map(Number).sort((a, b) => a - b);

const started = performance.now();
function progress(msg: string): void {
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
}

async function load(): Promise<string> {
  const avg = (await readFile('/proc/loadavg', 'utf8').catch(() => '?')).split(' ').slice(0, 3).join(' ');
  const io = (await readFile('/proc/pressure/io', 'utf8').catch(() => '')).split('\n')[0]?.replace(/^some /, '') ?? '';
  return `load average ${avg}${io ? `; I/O pressure (some) ${io}` : ''}`;
}

async function machine(wal: WalMeter): Promise<string[]> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  const version = (await wal.client.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v;
  const settings = await wal.client.query<{ name: string; setting: string }>(
    `SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit', 'fsync', 'wal_sync_method', 'full_page_writes', 'wal_compression', 'shared_buffers', 'max_wal_size') ORDER BY name`,
  );
  return [
    `CPUs: ${cpus().length} x ${model}`,
    `Node ${process.version}`,
    `${version.split(' on ')[0]}; ${settings.rows.map((r) => `${r.name}=${r.setting}`).join(', ')}`,
  ];
}

function floorRows(floors: FloorResult[]): string[][] {
  return floors.map((f) => {
    const s = summarize(f.times);
    return [f.name, String(s.n), ms(s.median), ms(s.p95), f.walPerOp === undefined ? '-' : bytes(f.walPerOp)];
  });
}

function resultRow(m: Measurement): string[] {
  const t = summarize(m.samples.map((s) => s.ms));
  const w = summarize(m.samples.map((s) => s.wal));
  return [m.chainLength.toLocaleString('en-US'), m.design, String(t.n), ms(t.median), ms(t.p95), ms(t.mean), ms(m.cpuMsPerSave), bytes(w.mean), bytes(w.median), bytes(m.rowBytes)];
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
  const wa = summarize(first.samples.map((s) => s.wal)).mean;
  const wb = summarize(last.samples.map((s) => s.wal)).mean;
  const at = (m: Measurement) => `${Math.round(m.chainLength / 1000)}k`;
  return `${design}: per-save time at ${at(last)} / at ${at(first)}: median ${(b.median / a.median).toFixed(2)}x, p95 ${(b.p95 / a.p95).toFixed(2)}x; WAL per save ${(wb / wa).toFixed(2)}x`;
}

async function main(): Promise<void> {
  const serverUrl = process.env.BENCH_PG_URL ?? DEFAULT_ADMIN_URL;
  const dbName = `pl_bench_${process.pid}`;
  const dir = await mkdtemp(join(tmpdir(), 'pawledger-bench-'));
  const key = randomBytes(32).toString('base64');
  const run = randomBytes(4).toString('hex');
  let wal: WalMeter | null = null;
  let paw: PawledgerBench | null = null;
  let naive: NaiveLedger | null = null;
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    await paw?.close().catch(() => {});
    await naive?.close().catch(() => {});
    await wal?.close().catch(() => {});
    await dropDatabase(serverUrl, dbName).catch((err: unknown) => process.stderr.write(`could not drop database ${dbName}: ${String(err)}\n`));
    await rm(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    progress('interrupted: dropping the benchmark database');
    void cleanup().finally(() => process.exit(130));
  });

  try {
    await createDatabase(serverUrl, dbName);
    const url = databaseUrl(serverUrl, dbName);
    wal = await WalMeter.connect(url);
    const about = await machine(wal);
    const loadBefore = await load();
    progress(`database ${dbName}, local stores in ${dir}; plan: lengths ${plan.lengths.join(', ')}`);

    progress('floors');
    const floors = [
      await roundTripFloor(url, plan.floorOps),
      await commitFloor(url, plan.floorOps, () => wal!.lsn()),
      await appendFloor(dir, plan.floorOps, 'fdatasync'),
      await appendFloor(dir, plan.floorOps, 'fsync'),
    ];

    const results: Measurement[] = [];
    paw = await PawledgerBench.open({ databaseUrl: url, dataDir: join(dir, 'pawledger'), key, run });
    let profileText = '';
    for (const length of plan.lengths) {
      const t = performance.now();
      await paw.growTo(length, build as 'batched' | 'sequential', (n) => progress(`pawledger: ${n.toLocaleString('en-US')} blocks`));
      progress(`pawledger: grown (${build}) to ${paw.length} blocks in ${((performance.now() - t) / 1000).toFixed(1)} s; measuring ${plan.pawledgerSaves} saves`);
      results.push(await paw.measure(plan.pawledgerSaves, wal));
    }
    if (profileArg) {
      const path = profileArg.includes('=') ? resolve(profileArg.slice('--profile='.length)) : resolve(`save-cost-${process.pid}.cpuprofile`);
      progress(`pawledger: profiling ${plan.profileSaves} more saves at ${paw.length} blocks`);
      const p = paw;
      const intervalUs = 100;
      const profile = await profiled(async () => {
        for (let i = 0; i < plan.profileSaves; i++) await p.save();
      }, intervalUs);
      await saveProfile(profile, path);
      profileText = `${summarizeProfile(profile, process.cwd(), plan.profileSaves, intervalUs)}\n\n(profile written to ${path})`;
    }
    await paw.close();
    paw = null;

    naive = await NaiveLedger.open({ databaseUrl: url, dir, sealer: new Sealer(parseKey(key)), run: `${run}n` });
    for (const length of plan.lengths) {
      naive.growTo(length - plan.naiveWarmup(length));
      const n = plan.naiveSaves(length);
      progress(`naive: chain at ${length} blocks (grown in memory); measuring ${n} saves`);
      results.push(await naive.measure(n, wal, plan.naiveWarmup(length)));
    }
    await naive.close();
    naive = null;

    const out = [
      `# save-cost (${quick ? 'quick' : 'full'} mode), ${new Date().toISOString()}`,
      '',
      ...about.map((l) => `- ${l}`),
      `- pawledger chain built with --build=${build}; machine ${loadBefore} at start, ${await load()} at end`,
      '',
      '## Floors',
      '',
      table(['operation', 'ops', 'median ms', 'p95 ms', 'WAL/op'], floorRows(floors), ['l', 'r', 'r', 'r', 'r']),
      '',
      '## Per-save cost by chain length',
      '',
      'Times are wall-clock per save (ms); CPU = user+system time of this Node process (all threads) per save. Database bytes:',
      'WAL = pg_wal_lsn_diff of pg_current_wal_lsn() read just before and after each save (mean and median over the measured',
      'saves; WAL is cluster-wide); rows = pg_column_size(row.*) summed over the rows those saves inserted, per save.',
      '',
      table(['chain length', 'design', 'saves', 'median ms', 'p95 ms', 'mean ms', 'CPU ms/save', 'WAL B/save (mean)', 'WAL B/save (median)', 'row B/save'],
        results.map(resultRow), ['r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']),
      '',
      ratioLine('pawledger', results),
      ratioLine('naive', results),
      '',
      '## Where a save\'s time goes',
      '',
      table(['chain length', 'design', 'stage', 'median ms', 'mean ms'], results.flatMap(stageRows), ['r', 'l', 'l', 'r', 'r']),
      '',
      `Busy sessions on other databases when each measurement ended: ${results.map((m) => `${m.design}@${m.chainLength}=${m.busyOtherSessions}`).join(', ')}`,
      `Total run time: ${((performance.now() - started) / 1000).toFixed(1)} s`,
    ];
    if (profileText) out.push('', '## CPU profile of pawledger saves', '', profileText);
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    await cleanup();
  }
}

await main();
