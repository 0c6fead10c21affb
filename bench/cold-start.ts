/**
 * cold-start: how long a deploy takes to come back. Each run starts `pawledger serve` (the built CLI, as `npm start`
 * does) on an empty data folder with only DATABASE_URL pointing at a database that holds the ledger, as a Render
 * deploy does, and times: the process start to /healthz answering and a property read served ("ready"), and to the
 * background full replay finishing (`verification` verified, or full when the restore replayed everything itself). Peak RSS is the server process's VmHWM
 * after that, so it covers restoring, serving and the full replay. The floor is `pg_dump` of the same database.
 *
 * Run: npm run build && node --import tsx bench/cold-start.ts [--blocks=100000,1000000] [--workload=mixed10k,unique]
 * [--runs=3]. The chain is loaded straight into the database as a compacting ledger leaves it (packs, the newest
 * blocks loose, a checkpoint every LEDGER_CHECKPOINT_BLOCKS), once per length and workload.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseKey } from '../src/crypto/key.js';
import { Sealer } from '../src/crypto/seal.js';
import { createDatabase, databaseUrl, DEFAULT_ADMIN_URL, dropDatabase } from './lib/pg.js';
import { dbTier } from './lib/restore-source.js';
import { ms, summarize, table } from './lib/stats.js';
import { loadPacked, mixedOver, registerBenchProperty, type TxMaker } from './lib/synthetic.js';

const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const lengths = arg('blocks', '100000').split(',').map(Number);
const workloads = arg('workload', 'mixed10k').split(',');
const runs = Number(arg('runs', '3'));
const server = process.env.BENCH_PG_URL ?? DEFAULT_ADMIN_URL;
const KEY = 'c3'.repeat(32);
const sealer = new Sealer(parseKey(KEY));

const WORKLOADS: Record<string, { about: string; make: () => TxMaker; probe: string }> = {
  mixed10k: { about: '10k properties, mixed', make: () => mixedOver(10_000), probe: 'bench-mix-1' },
  unique: { about: 'a new property per block', make: () => registerBenchProperty, probe: 'bench-synthetic-1' },
};

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

async function poll(url: string, ok: (status: number, body: string) => boolean, limitMs: number): Promise<void> {
  const until = performance.now() + limitMs;
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
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

/** coldStart runs one deploy: empty folder, serve, ready, verified; it returns the times (ms) and the peak RSS (MiB). */
async function coldStart(url: string, probe: string): Promise<{ ready: number; verified: number; rssMiB: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'pawledger-cold-'));
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, ['bin/pawledger.js', 'serve'], {
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
    await poll(`${base}/properties/${probe}`, (s) => s === 200, 600_000);
    const ready = performance.now() - t0;
    await poll(`${base}/status`, (s, b) => s === 200 && /"verification":"(verified|full)"/.test(b), 3_600_000);
    const verified = performance.now() - t0;
    const rssMiB = vmHwmKb(child.pid!) / 1024;
    return { ready, verified, rssMiB };
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}

function pgDumpMs(url: string): number {
  const t = performance.now();
  execFileSync('pg_dump', ['--no-owner', '-f', '/dev/null', url]);
  return performance.now() - t;
}

const rows: string[][] = [];
for (const n of lengths) {
  for (const w of workloads) {
    const workload = WORKLOADS[w];
    if (!workload) throw new Error(`unknown workload ${w}: ${Object.keys(WORKLOADS).join(', ')}`);
    const name = `pawledger_cold_${n}_${w}`;
    await dropDatabase(server, name).catch(() => {});
    await createDatabase(server, name);
    const url = databaseUrl(server, name);
    try {
      const tier = await dbTier(url);
      await tier.init();
      const t = performance.now();
      await loadPacked([tier], sealer, n, { makeTxs: workload.make() });
      await tier.close();
      process.stderr.write(`loaded ${n} blocks (${workload.about}) in ${ms(performance.now() - t)}\n`);
      const ready: number[] = [];
      const verified: number[] = [];
      const rss: number[] = [];
      const dump: number[] = [];
      for (let i = 0; i < runs; i++) {
        dump.push(pgDumpMs(url));
        const r = await coldStart(url, workload.probe);
        ready.push(r.ready);
        verified.push(r.verified);
        rss.push(r.rssMiB);
      }
      const med = (xs: number[]) => summarize(xs).median;
      rows.push([
        n.toLocaleString('en-US'),
        workload.about,
        ms(med(ready)),
        ms(med(verified)),
        `${Math.max(...rss).toFixed(0)} MiB`,
        ms(med(dump)),
        `${(med(ready) / med(dump)).toFixed(2)}x`,
      ]);
    } finally {
      await dropDatabase(server, name);
    }
  }
}
process.stdout.write(
  `${table(['blocks', 'workload', 'ready ms', 'verified ms', 'peak RSS', 'pg_dump ms', 'ready / pg_dump'], rows)}\n`,
);
