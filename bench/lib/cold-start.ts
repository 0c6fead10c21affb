/**
 * cold-start: how long a deploy takes to come back, the measuring core of bench/cold-start.ts and of the report's
 * cold-start part. Each run starts `pawledger serve` (the built CLI, as `npm start` does: `npm run build` first) on an
 * empty data folder with only DATABASE_URL pointing at a database that holds the ledger, as a Render deploy does, and
 * times: the process start to /healthz answering and a property read served ("ready"), and to the background full
 * replay finishing (`verification` verified, or full when the restore replayed everything itself). Peak RSS is the
 * server process's VmHWM after that, so it covers restoring, serving and the full replay. The floor is `pg_dump` of
 * the same database to /dev/null, taken just before each run.
 *
 * The chain is loaded straight into the database as a compacting ledger leaves it (packs, the newest blocks loose, a
 * checkpoint every 1,000 blocks: loadPacked), once per length and workload, into a database of its own that is dropped
 * afterwards.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseKey } from '../../src/crypto/key.js';
import { Sealer } from '../../src/crypto/seal.js';
import { createDatabase, databaseUrl, dropDatabase } from './pg.js';
import { dbTier } from './restore-source.js';
import { ms, summarize, table } from './stats.js';
import { loadPacked, mixedOver, registerBenchProperty, type TxMaker } from './synthetic.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const KEY = 'c3'.repeat(32);

/** ColdWorkload names what the loaded chain's blocks do. */
export type ColdWorkload = 'mixed10k' | 'unique';

/** COLD_WORKLOADS: what each workload is, how its blocks are made, and a property a ready server must serve. */
export const COLD_WORKLOADS: Record<ColdWorkload, { about: string; make: () => TxMaker; probe: string }> = {
  mixed10k: { about: '10k properties, mixed', make: () => mixedOver(10_000), probe: 'bench-mix-1' },
  unique: { about: 'a new property per block', make: () => registerBenchProperty, probe: 'bench-synthetic-1' },
};

/** isColdWorkload says whether `w` names a workload. */
export function isColdWorkload(w: string): w is ColdWorkload {
  return Object.hasOwn(COLD_WORKLOADS, w);
}

/** ColdStartRun is one deploy: times from the process start (ms), the server's peak RSS (kB), pg_dump before it (ms). */
export interface ColdStartRun {
  readyMs: number;
  verifiedMs: number;
  peakRssKb: number;
  /** pgDumpMs is pg_dump of the same database just before this run; null when pg_dump is missing. */
  pgDumpMs: number | null;
}

/** ColdStartResult is the cold starts of one loaded chain. */
export interface ColdStartResult {
  blocks: number;
  workload: ColdWorkload;
  loadMs: number;
  runs: ColdStartRun[];
  /** error says why there are no runs: the report records a cold start that failed and goes on with the rest. */
  error?: string;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function poll(
  url: string,
  ok: (status: number, body: string) => boolean,
  limitMs: number,
  callMs = 2000,
): Promise<void> {
  const until = performance.now() + limitMs;
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(callMs) });
      const body = await res.text();
      if (ok(res.status, body)) return;
    } catch {
      // not up yet
    }
    if (performance.now() > until) throw new Error(`${url} not ready after ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function vmHwmKb(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
}

/** coldStart runs one deploy: empty folder, serve, ready, verified; it returns the times (ms) and the peak RSS (kB). */
export async function coldStart(
  url: string,
  probe: string,
): Promise<{ readyMs: number; verifiedMs: number; peakRssKb: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'pawledger-cold-'));
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'pawledger.js'), 'serve'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: url,
      LEDGER_ENCRYPTION_KEY: KEY,
      LEDGER_DATA_DIR: join(dir, 'blocks'),
      PORT: String(port),
      HOST: '127.0.0.1',
      ADMIN_TOKEN: 'bench-admin-token-0123456789',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    const base = `http://127.0.0.1:${port}`;
    await poll(`${base}/healthz`, (s) => s === 200, 600_000);
    // A property's read gathers its whole history from the packs, seconds at 1M blocks beside the background replay:
    // it is waited for, not cut off at 2 s and asked again (which counted the 1M mixed start as ready only once the
    // replay had ended).
    await poll(`${base}/properties/${probe}`, (s) => s === 200, 600_000, 120_000);
    const readyMs = performance.now() - t0;
    await poll(`${base}/status`, (s, b) => s === 200 && /"verification":"(verified|full)"/.test(b), 3_600_000);
    const verifiedMs = performance.now() - t0;
    return { readyMs, verifiedMs, peakRssKb: vmHwmKb(child.pid!) };
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}

/** pgDumpMs times `pg_dump` of the database to /dev/null; null when pg_dump is not installed. */
export function pgDumpMs(url: string): number | null {
  const t = performance.now();
  try {
    execFileSync('pg_dump', ['--no-owner', '-f', '/dev/null', url]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return performance.now() - t;
}

/**
 * measureColdStart loads an n-block chain of the workload into database `name` on `server` (created here, dropped at
 * the end), then runs `runs` deploys against it, each after a pg_dump of the same database.
 */
export async function measureColdStart(options: {
  server: string;
  name: string;
  blocks: number;
  workload: ColdWorkload;
  runs: number;
  progress?: (line: string) => void;
}): Promise<ColdStartResult> {
  const { server, name, blocks: n, workload: w, runs } = options;
  const workload = COLD_WORKLOADS[w];
  const sealer = new Sealer(parseKey(KEY));
  await createDatabase(server, name);
  const url = databaseUrl(server, name);
  try {
    const tier = await dbTier(url);
    await tier.init();
    const t = performance.now();
    await loadPacked([tier], sealer, n, { makeTxs: workload.make() });
    await tier.close();
    const loadMs = performance.now() - t;
    options.progress?.(`  loaded ${n.toLocaleString('en-US')} blocks (${workload.about}) in ${ms(loadMs)} ms`);
    const out: ColdStartRun[] = [];
    for (let i = 0; i < runs; i++) {
      const dump = pgDumpMs(url);
      const r = await coldStart(url, workload.probe);
      out.push({ ...r, pgDumpMs: dump });
      options.progress?.(
        `  cold start ${n.toLocaleString('en-US')} (${w}): ready ${ms(r.readyMs)} ms, verified ${ms(r.verifiedMs)} ms, ` +
          `peak RSS ${(r.peakRssKb / 1024).toFixed(0)} MiB, pg_dump ${dump === null ? '-' : ms(dump)} ms`,
      );
    }
    return { blocks: n, workload: w, loadMs, runs: out };
  } finally {
    await dropDatabase(server, name);
  }
}

/** coldStartSummary is one result's medians (ready, verified, pg_dump) and its largest peak RSS. */
export function coldStartSummary(c: ColdStartResult): {
  readyMs: number;
  verifiedMs: number;
  peakRssKb: number;
  pgDumpMs: number | null;
} {
  const med = (xs: number[]) => summarize(xs).median;
  const dumps = c.runs.map((r) => r.pgDumpMs).filter((d): d is number => d !== null);
  return {
    readyMs: med(c.runs.map((r) => r.readyMs)),
    verifiedMs: med(c.runs.map((r) => r.verifiedMs)),
    peakRssKb: Math.max(...c.runs.map((r) => r.peakRssKb)),
    pgDumpMs: dumps.length ? med(dumps) : null,
  };
}

/** coldStartTable is the Markdown table of cold starts: medians, the largest peak RSS, and ready over pg_dump. */
export function coldStartTable(results: ColdStartResult[]): string {
  const rows = results.map((c) => {
    if (c.runs.length === 0)
      return [
        c.blocks.toLocaleString('en-US'),
        COLD_WORKLOADS[c.workload].about,
        '0',
        `failed: ${c.error ?? 'no runs'}`.replaceAll('|', '/').replaceAll('\n', ' ').slice(0, 200),
        '-',
        '-',
        '-',
        '-',
      ];
    const s = coldStartSummary(c);
    return [
      c.blocks.toLocaleString('en-US'),
      COLD_WORKLOADS[c.workload].about,
      String(c.runs.length),
      ms(s.readyMs),
      ms(s.verifiedMs),
      `${(s.peakRssKb / 1024).toFixed(0)} MiB`,
      s.pgDumpMs === null ? '-' : ms(s.pgDumpMs),
      s.pgDumpMs === null ? '-' : `${(s.readyMs / s.pgDumpMs).toFixed(2)}x`,
    ];
  });
  return table(
    ['blocks', 'workload', 'runs', 'ready ms', 'verified ms', 'peak RSS', 'pg_dump ms', 'ready / pg_dump'],
    rows,
    ['r', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}
