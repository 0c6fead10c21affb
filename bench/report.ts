/**
 * report: the combined benchmark report (issues #7 and #14). `npm run bench` runs the full mode (the length of a
 * full run with the cold starts is not yet measured; chains of 1k, 10k and 100k saves, restores of 10k, 100k and 1M
 * blocks, cold starts at 100k and 1M); `npm run bench -- --quick` the quick mode (about a minute; 1k and 10k, fewer
 * samples, no 1M). It prints one Markdown report on stdout, progress on stderr.
 *
 * What it does, in order (docs/BENCHMARKS.md says what each column means):
 *  - floors: PostgreSQL commit and round trip, append+fdatasync and +fsync, AES-256-GCM throughput and per call;
 *  - one pawledger Ledger per chain length, each with its own database (DATABASE_URL), local store, embedded IPFS
 *    folder and backup folder (LEDGER_BACKUP_DIR), grown one save at a time (full mode: one backup record per save, as real saves write) or with 256 saves
 *    in flight (quick mode), then saves timed in interleaved rounds with the bytes each tier received;
 *  - the database's storage after those saves; restic backing up each ledger's data folder after a save;
 *  - restores from each tier (db, local, ipfs, dir), one child process per restore (peak RSS), against the COPY +
 *    decrypt floor; in full mode also a 1M-block chain loaded into the four tiers directly;
 *  - cold starts (bench/lib/cold-start.ts): `pawledger serve` on an empty disk against a database holding a loaded
 *    chain, to ready and to verified, with its peak RSS and pg_dump as the floor (full: 100k and 1M, both workloads;
 *    quick: 10k, mixed10k);
 *  - key rotation (bench/lib/rotation.ts, issue #17): a chain loaded under an old key into the four places, rotateKey()
 *    timed alone (blocks/s, per place, peak RSS), then saves timed before, during and after a second rotation (full:
 *    100k blocks; quick: 10k);
 *  - the naive design, last (its saves write up to about 100 MB each);
 *  - the targets tables: issue #7's (full mode) and issue #14's (every mode; what a mode does not measure says so).
 * Databases are created on BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres) as
 * pl_report_<pid>_<name> and dropped at the end, also after Ctrl-C; files live in a temporary folder, removed too.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { latestBackup } from '../src/engine/restore.js';
import { parseKey } from '../src/crypto/key.js';
import { makeBlock } from '../src/ledger/block.js';
import { Sealer } from '../src/crypto/seal.js';
import { POINTER_FILE } from '../src/tiers/registry.js';
import { localStoreTier } from './lib/local-store-tier.js';
import type { BackupTier } from '../src/tiers/tier.js';
import { copyFloorMs, decryptFloorMs } from './lib/copy-floor.js';
import { type ColdStartResult, type ColdWorkload, measureColdStart } from './lib/cold-start.js';
import { cryptoFloors } from './lib/crypto-floor.js';
import { dirBytes } from './lib/du.js';
import { appendFloor, commitFloor, roundTripFloor } from './lib/floors.js';
import { floorPartsNowMs, floorsNowMs, interleave } from './lib/interleave.js';
import { installIpfsMeter, ipfsCounts, since } from './lib/ipfs-meter.js';
import { describeMachine, LoadSampler, loadNow } from './lib/machine.js';
import { NaiveLedger } from './lib/naive.js';
import { PawledgerBench } from './lib/pawledger.js';
import { createDatabase, databaseUrl, DEFAULT_ADMIN_URL, dropDatabase, WalMeter } from './lib/pg.js';
import { renderReport } from './lib/report-tables.js';
import type {
  GrowMode,
  Growth,
  Report,
  ResticResult,
  RestoreFloor,
  RestoreOrigin,
  RestoreResult,
  SaveResult,
  StorageResult,
} from './lib/report-types.js';
import { INSTALL_HINT, ResticRepo, resticVersion } from './lib/restic.js';
import { summarize } from './lib/stats.js';
import { restoreInChild } from './lib/restore-runner.js';
import { abortRotation, failedRotation, measureRotation, type RotationResult } from './lib/rotation.js';
import { dbTier, dirTier, ipfsTier, type RestoreSource } from './lib/restore-source.js';
import { measureStorage } from './lib/storage.js';
import { loadPacked, registerBenchProperty } from './lib/synthetic.js';

interface Plan {
  lengths: number[];
  grow: GrowMode;
  rounds: number;
  saves: number;
  warmup: number;
  floorOps: number;
  floorsNowOps: number;
  cryptoRuns: number;
  naiveLengths: number[];
  naiveSaves: (length: number) => number;
  naiveWarmup: (length: number) => number;
  naiveRounds: number;
  resticLengths: number[];
  resticIncrementals: number;
  resticRestores: number;
  /** restoreLengths are the grown ledgers restored (by their target length). */
  restoreLengths: number[];
  /** loadedLengths are chains loaded straight into the tiers and restored (1M in full mode). */
  loadedLengths: number[];
  restoreRuns: number;
  /** coldStarts are the chains loaded into a database of their own and started from by `pawledger serve`. */
  coldStarts: { blocks: number; workload: ColdWorkload; runs: number }[];
  /** rotations are the chains loaded under an old key and rotated (bench/lib/rotation.ts), with the saves timed beside. */
  rotations: { blocks: number; saves: number }[];
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonOut = args.find((a) => a.startsWith('--json='))?.slice('--json='.length);
const fromJson = args.find((a) => a.startsWith('--from-json='))?.slice('--from-json='.length);
for (const a of args) {
  if (a !== '--quick' && !a.startsWith('--json=') && !a.startsWith('--from-json=')) {
    process.stderr.write(
      `unknown argument ${a}\nusage: npm run bench [-- --quick] [--json=results.json] | npm run bench -- --from-json=results.json\n`,
    );
    process.exit(2);
  }
}
if (fromJson) {
  // Render a report from the results another run saved with --json, measuring nothing.
  process.stdout.write(`${renderReport(JSON.parse(await readFile(fromJson, 'utf8')) as Report)}\n`);
  process.exit(0);
}

const plan: Plan = quick
  ? {
      lengths: [1000, 10_000],
      grow: 'batched',
      rounds: 5,
      saves: 100,
      warmup: 10,
      floorOps: 200,
      floorsNowOps: 30,
      cryptoRuns: 3,
      naiveLengths: [1000, 10_000],
      naiveSaves: (l) => (l <= 1000 ? 20 : 6),
      naiveWarmup: () => 1,
      naiveRounds: 3,
      resticLengths: [10_000],
      resticIncrementals: 3,
      resticRestores: 3,
      restoreLengths: [10_000],
      loadedLengths: [],
      restoreRuns: 3,
      coldStarts: [{ blocks: 10_000, workload: 'mixed10k', runs: 3 }],
      rotations: [{ blocks: 10_000, saves: 30 }],
    }
  : {
      lengths: [1000, 10_000, 100_000],
      grow: 'sequential',
      rounds: 10,
      saves: 200,
      warmup: 20,
      floorOps: 1000,
      floorsNowOps: 50,
      cryptoRuns: 5,
      naiveLengths: [1000, 10_000, 100_000],
      naiveSaves: (l) => (l <= 1000 ? 100 : l <= 10_000 ? 40 : 10),
      naiveWarmup: (l) => (l <= 10_000 ? 3 : 1),
      naiveRounds: 10,
      resticLengths: [1000, 10_000, 100_000],
      resticIncrementals: 5,
      resticRestores: 3,
      restoreLengths: [10_000, 100_000],
      loadedLengths: [1_000_000],
      restoreRuns: 3,
      coldStarts: [
        { blocks: 100_000, workload: 'mixed10k', runs: 3 },
        { blocks: 100_000, workload: 'unique', runs: 3 },
        { blocks: 1_000_000, workload: 'mixed10k', runs: 2 },
        { blocks: 1_000_000, workload: 'unique', runs: 1 },
      ],
      rotations: [{ blocks: 100_000, saves: 100 }],
    };

const started = performance.now();
function progress(msg: string): void {
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
}

const server = process.env.BENCH_PG_URL ?? DEFAULT_ADMIN_URL;
const dbName = (name: string | number) => `pl_report_${process.pid}_${name}`;
const coldName = (c: Plan['coldStarts'][number]) => dbName(`cold_${c.blocks}_${c.workload}`);
const rotationName = (c: Plan['rotations'][number]) => dbName(`rotation_${c.blocks}`);
const dbNames = [
  ...plan.lengths.map(dbName),
  ...plan.loadedLengths.map((l) => dbName(`loaded_${l}`)),
  ...plan.coldStarts.map(coldName),
  ...plan.rotations.map(rotationName),
];
const key = randomBytes(32).toString('base64');
const sealer = new Sealer(parseKey(key));
const run = randomBytes(4).toString('hex');
const TIERS = ['db', 'local', 'ipfs', 'dir'] as const;

const root = await mkdtemp(join(tmpdir(), 'pawledger-report-'));
const paws: PawledgerBench[] = [];
const naives: NaiveLedger[] = [];
let meter: WalMeter | null = null;
let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  for (const p of paws) await p.close().catch(() => {});
  for (const x of naives) await x.close().catch(() => {});
  await abortRotation();
  await meter?.close().catch(() => {});
  for (const name of dbNames)
    await dropDatabase(server, name).catch((err: unknown) =>
      process.stderr.write(`could not drop database ${name}: ${String(err)}\n`),
    );
  await rm(root, { recursive: true, force: true });
}
process.once('SIGINT', () => {
  progress('interrupted: dropping the benchmark databases and removing the temporary folder');
  void cleanup().finally(() => process.exit(130));
});

/** benchBlockBody is the canonical body of a block as the benchmark's saves make them: the 50,000th property registered. */
function benchBlockBody(): Buffer {
  const ts = new Date().toISOString();
  return makeBlock(makeBlock(null, [], ts).block, registerBenchProperty(50_000, ts), ts).body;
}

/** growAll grows every ledger to its length at once (each one save at a time, or in bursts). */
async function growAll(): Promise<Growth[]> {
  return Promise.all(
    paws.map(async (p, i) => {
      const target = plan.lengths[i]!;
      const before = ipfsCounts(p.ipfsDir!);
      const h0 = p.length;
      const t = performance.now();
      await p.growTo(target, plan.grow, (b) => progress(`  ledger ${target}: ${b.toLocaleString('en-US')} blocks`));
      const seconds = (performance.now() - t) / 1000;
      if (!(await p.ipfsLevel())) progress(`  ledger ${target}: IPFS did not catch up within the wait`);
      return {
        target,
        blocks: p.length,
        seconds,
        mode: plan.grow,
        saves: p.length - h0,
        ipfs: since(before, ipfsCounts(p.ipfsDir!)),
      };
    }),
  );
}

/** measureSaves times plan.saves saves per ledger in interleaved rounds, with what IPFS received for them. */
async function measureSaves(url: string, wal: WalMeter): Promise<SaveResult[]> {
  for (const p of paws) await p.ipfsLevel();
  const before = paws.map((p) => ipfsCounts(p.ipfsDir!));
  const floorDir = join(root, 'floors');
  const results = await interleave({
    subjects: paws,
    total: () => plan.saves,
    rounds: plan.rounds,
    measure: (p, k) => p.measure(k, wal),
    floors: () => floorPartsNowMs(url, floorDir, wal, plan.floorsNowOps),
    label: (p) => `${p.length}`,
    onRound: progress,
  });
  const level = await Promise.all(paws.map((p) => p.ipfsLevel()));
  return results.map((m, i) => ({
    length: plan.lengths[i]!,
    m,
    ipfs: since(before[i]!, ipfsCounts(paws[i]!.ipfsDir!)),
    ipfsLevel: level[i]!,
    burst: Math.ceil(plan.saves / plan.rounds),
  }));
}

/** resticSideBySide backs each chosen ledger's data folder up with restic after saves, then restores it. */
async function resticSideBySide(): Promise<ResticResult[] | string> {
  const version = await resticVersion();
  if (!version) {
    progress(INSTALL_HINT);
    return INSTALL_HINT;
  }
  const out: ResticResult[] = [];
  for (const length of plan.resticLengths) {
    const p = paws[plan.lengths.indexOf(length)]!;
    const dir = join(root, `restic-${length}`);
    const repo = await ResticRepo.init(join(dir, 'repo'), join(dir, 'cache'));
    const first = await repo.backup(p.dataDir);
    const incrementals = [];
    for (let i = 0; i < plan.resticIncrementals; i++) {
      await p.save();
      await p.ipfsLevel(); // IPFS's upload would otherwise run beside restic
      incrementals.push(await repo.backup(p.dataDir));
    }
    const restores = [];
    for (let i = 0; i < plan.resticRestores; i++) restores.push(await repo.restoreLatest(join(dir, `target-${i}`)));
    out.push({
      length,
      blocks: p.length,
      folderBytes: await dirBytes(p.dataDir),
      first,
      incrementals,
      restores,
      repoBytes: await dirBytes(join(dir, 'repo')),
    });
    progress(
      `  restic (${version}) at ${p.length} blocks: first backup ${(first.wallMs / 1000).toFixed(2)} s, incrementals ${incrementals.map((b) => b.wallMs.toFixed(0)).join(', ')} ms`,
    );
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

/** restoreAll restores one chain from each tier `plan.restoreRuns` times, rotating the tiers' order each run. */
async function restoreAll(
  sources: Record<(typeof TIERS)[number], RestoreSource>,
  origin: RestoreOrigin,
): Promise<RestoreResult[]> {
  const results = TIERS.map((tier) => ({ blocks: 0, origin, tier, runs: [] as RestoreResult['runs'] }));
  for (let r = 0; r < plan.restoreRuns; r++) {
    for (let k = 0; k < TIERS.length; k++) {
      const i = (k + r) % TIERS.length;
      const res = results[i]!;
      const outcome = await restoreInChild({
        source: sources[res.tier],
        key,
        target: join(root, `restore-${res.tier}-${r}`),
      });
      res.runs.push(outcome);
      res.blocks = outcome.blocks;
      progress(
        `  restore ${outcome.blocks.toLocaleString('en-US')} blocks from ${res.tier}: ${outcome.ms.toFixed(0)} ms, peak RSS ${(outcome.peakRssKb / 1024).toFixed(0)} MiB`,
      );
    }
  }
  return results;
}

/** dbFloors measures the COPY and decrypt floors of the chain in database `url`. */
async function dbFloors(url: string, origin: RestoreOrigin, buildMs?: number): Promise<RestoreFloor> {
  const copyMs = copyFloorMs(url, plan.restoreRuns);
  const tier = await dbTier(url);
  await tier.init();
  try {
    const record = (await latestBackup(tier, null))!;
    const decryptMs = await decryptFloorMs(tier, record, sealer, plan.restoreRuns);
    return { blocks: record.height + 1, origin, copyMs, decryptMs, ...(buildMs === undefined ? {} : { buildMs }) };
  } finally {
    await tier.close();
  }
}

/**
 * loadedChain builds an n-block chain straight into a database, a local store, an IPFS folder and a backup folder
 * (the dir tier), then restores it.
 */
async function loadedChain(n: number): Promise<{ restores: RestoreResult[]; floor: RestoreFloor }> {
  const url = databaseUrl(server, dbName(`loaded_${n}`));
  const dir = join(root, `loaded-${n}`);
  const ipfs = { tier: 'ipfs' as const, dir: join(dir, 'ipfs'), pointerFile: join(dir, 'ipfs', POINTER_FILE) };
  await mkdir(join(dir, 'backup'), { recursive: true });
  const tiers: BackupTier[] = [
    await dbTier(url),
    localStoreTier(join(dir, 'local'), sealer),
    await ipfsTier(ipfs.dir, ipfs.pointerFile, sealer),
    await dirTier(join(dir, 'backup'), sealer),
  ];
  for (const t of tiers) await t.init();
  const t = performance.now();
  let next = 100_000;
  // Laid out as a compacting ledger leaves it: packs, the newest blocks loose, a checkpoint near the head.
  await loadPacked(tiers, sealer, n, {
    progress: (b) => {
      if (b >= next) {
        progress(`  loaded ${b.toLocaleString('en-US')} blocks into the four tiers`);
        next += 100_000;
      }
    },
  });
  const buildMs = performance.now() - t;
  for (const tier of tiers) await tier.close();
  const restores = await restoreAll(
    {
      db: { tier: 'db', url },
      local: { tier: 'local', dir: join(dir, 'local') },
      ipfs,
      dir: { tier: 'dir', dir: join(dir, 'backup') },
    },
    'synthetic',
  );
  const floor = await dbFloors(url, 'synthetic', buildMs);
  await dropDatabase(server, dbName(`loaded_${n}`));
  await rm(dir, { recursive: true, force: true });
  return { restores, floor };
}

try {
  installIpfsMeter();
  const loads = new LoadSampler();
  const startedAt = new Date().toISOString();
  for (const name of dbNames) await createDatabase(server, name);
  const urls = plan.lengths.map((l) => databaseUrl(server, dbName(l)));
  const url = urls[0]!;
  meter = await WalMeter.connect(url);
  const wal = meter;
  const about = await describeMachine(wal.client);
  const loadStart = await loadNow();
  progress(`${quick ? 'quick' : 'full'} mode; databases ${dbNames.join(', ')}; files in ${root}`);

  progress('floors');
  const floorDir = join(root, 'floors');
  await mkdir(floorDir);
  const floors = [
    await roundTripFloor(url, plan.floorOps),
    await commitFloor(url, plan.floorOps, wal),
    await appendFloor(floorDir, plan.floorOps, 'fdatasync'),
    await appendFloor(floorDir, plan.floorOps, 'fsync'),
  ];
  const crypto = cryptoFloors(sealer, benchBlockBody(), plan.cryptoRuns, quick ? 500 : 2000, quick ? 20_000 : 100_000);

  for (const [i, length] of plan.lengths.entries()) {
    // The backup folder must exist before the dir tier opens (it never creates its root, as a mount would be there).
    await mkdir(join(root, `ledger-${length}`, 'backup'), { recursive: true });
    paws.push(
      await PawledgerBench.open({
        databaseUrl: urls[i]!,
        dataDir: join(root, `ledger-${length}`, 'data'),
        ipfsDir: join(root, `ledger-${length}`, 'ipfs'),
        backupDir: join(root, `ledger-${length}`, 'backup'),
        key,
        run: `${run}-${length}`,
      }),
    );
  }
  progress(`growing ${plan.lengths.join(', ')} (${plan.grow}, all at once)`);
  const growth = await growAll();
  for (const p of paws) for (let w = 0; w < plan.warmup; w++) await p.save();
  progress(`measuring ${plan.saves} saves per length in ${plan.rounds} rounds`);
  const saves = await measureSaves(url, wal);

  progress('database storage');
  const storage: StorageResult[] = [];
  for (const [i, p] of paws.entries())
    storage.push({ length: plan.lengths[i]!, mode: plan.grow, storage: await measureStorage(p.sql) });

  progress('restic');
  const restic = await resticSideBySide();
  for (const p of paws) await p.ipfsLevel();
  while (paws.length > 0) await paws.shift()!.close();

  const restores: RestoreResult[] = [];
  const restoreFloors: RestoreFloor[] = [];
  for (const length of plan.restoreLengths) {
    const i = plan.lengths.indexOf(length);
    const dir = join(root, `ledger-${length}`);
    progress(`restoring the ${length} ledger from each tier`);
    // A Ledger with IPFS_PROVIDER=embedded names its newest manifest in a pointer file inside the embedded folder too.
    const ipfs = { tier: 'ipfs' as const, dir: join(dir, 'ipfs'), pointerFile: join(dir, 'ipfs', POINTER_FILE) };
    restores.push(
      ...(await restoreAll(
        {
          db: { tier: 'db', url: urls[i]! },
          local: { tier: 'local', dir: join(dir, 'data') },
          ipfs,
          dir: { tier: 'dir', dir: join(dir, 'backup') },
        },
        'saves',
      )),
    );
    restoreFloors.push(await dbFloors(urls[i]!, 'saves'));
  }
  for (const n of plan.loadedLengths) {
    progress(`loading ${n.toLocaleString('en-US')} blocks into the four tiers`);
    const { restores: r, floor } = await loadedChain(n);
    restores.push(...r);
    restoreFloors.push(floor);
  }

  progress('cold starts');
  const coldStarts: ColdStartResult[] = [];
  for (const c of plan.coldStarts) {
    try {
      coldStarts.push(await measureColdStart({ server, name: coldName(c), ...c, progress }));
    } catch (err) {
      // One failed deploy (a timeout, a crash) is recorded as such; the rest of the run still reports.
      const error = err instanceof Error ? err.message : String(err);
      progress(`  cold start ${c.blocks} (${c.workload}) failed: ${error}`);
      coldStarts.push({ blocks: c.blocks, workload: c.workload, loadMs: Number.NaN, runs: [], error });
    }
  }

  progress('key rotation');
  const rotations: RotationResult[] = [];
  for (const c of plan.rotations) {
    try {
      rotations.push(
        await measureRotation({
          server,
          name: rotationName(c),
          dir: join(root, `rotation-${c.blocks}`),
          ...c,
          progress,
        }),
      );
    } catch (err) {
      // A failed rotation is recorded as such; the rest of the run still reports.
      const error = err instanceof Error ? err.message : String(err);
      progress(`  key rotation of ${c.blocks} failed: ${error}`);
      rotations.push(failedRotation(c.blocks, error));
    }
  }

  progress('naive design');
  for (const length of plan.naiveLengths) {
    const x = await NaiveLedger.open({
      databaseUrl: urls[plan.lengths.indexOf(length)]!,
      dir: join(root, `naive-${length}`),
      sealer,
      run: `${run}-${length}-naive`,
    });
    naives.push(x);
    x.growTo(length - plan.naiveWarmup(length));
    for (let w = 0; w < plan.naiveWarmup(length); w++) await x.save();
  }
  const naive = await interleave({
    subjects: naives,
    total: (i) => plan.naiveSaves(plan.naiveLengths[i]!),
    rounds: plan.naiveRounds,
    measure: (x, k) => x.measure(k, wal),
    floors: () => floorsNowMs(url, floorDir, wal, plan.floorsNowOps),
    label: (x) => `${x.length}`,
    onRound: progress,
  });
  while (naives.length > 0) await naives.shift()!.close();

  loads.stop();
  const report: Report = {
    mode: quick ? 'quick' : 'full',
    startedAt,
    about,
    loadStart,
    loadEnd: await loadNow(),
    loadSamples: loads.summary(),
    floors,
    crypto,
    growth,
    saves,
    naive,
    storage,
    restic,
    restores,
    restoreFloors,
    coldStarts,
    rotations,
    totalSeconds: (performance.now() - started) / 1000,
  };
  // The raw results first: a report that fails to render is not a lost run.
  if (jsonOut) await writeFile(jsonOut, `${JSON.stringify(report, null, 1)}\n`);
  process.stdout.write(`${renderReport(report)}\n`);
  const flat = saves.at(-1)!;
  progress(
    `done in ${report.totalSeconds.toFixed(0)} s; per-save median at ${flat.m.chainLength}: ${summarize(flat.m.samples.map((s) => s.ms)).median.toFixed(2)} ms`,
  );
} finally {
  await cleanup();
}
