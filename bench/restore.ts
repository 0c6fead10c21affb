/**
 * restore: how long it takes to restore a chain of n blocks from each tier into an empty local store, against the
 * floors (reading the stored blocks, decrypting them). Run: node --import tsx bench/restore.ts [--lengths=10000,100000]
 * [--tiers=db,local,ipfs] [--runs=3]. 1,000,000 blocks: --lengths=1000000 (minutes to build; bounded memory).
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { restoreInto } from '../src/engine/restore.js';
import { parseKey } from '../src/crypto/key.js';
import { Sealer } from '../src/crypto/seal.js';
import { connectPostgres } from '../src/db/postgres.js';
import { openBlock } from '../src/crypto/sealed-blocks.js';
import { LocalStore } from '../src/store/local-store.js';
import type { StoredBlock } from '../src/crypto/stored-block.js';
import { localStoreTier } from './lib/local-store-tier.js';
import { ipfsTier } from './lib/restore-source.js';
import { PostgresTier } from '../src/tiers/postgres.js';
import type { BackupTier } from '../src/tiers/tier.js';
import type { BackupRecord } from '../src/crypto/records.js';
import { createDatabase, databaseUrl, DEFAULT_ADMIN_URL, dropDatabase } from './lib/pg.js';
import { ms, summarize, table } from './lib/stats.js';
import { loadTiers, type TxMaker } from './lib/synthetic.js';

const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const lengths = arg('lengths', '10000,100000').split(',').map(Number);
const tiers = arg('tiers', 'db,local,ipfs').split(',');
const runs = Number(arg('runs', '3'));
const server = process.env.BENCH_PG_URL ?? DEFAULT_ADMIN_URL;
const sealer = new Sealer(parseKey('b2'.repeat(32)));

// The blocks this script has always restored (smaller than the blocks saves make), so its runs stay
// comparable with the ones recorded in docs/BENCHMARKS.md. bench/report.ts restores the save-sized blocks instead.
const smallProperty: TxMaker = (i, timestamp) => [
  {
    type: 'register',
    timestamp,
    property: {
      id: `prop-${i}`,
      name: `Property ${i}`,
      address: `${i} Bench Street, Springfield`,
      owner: `owner-${i % 97}`,
      attributes: { rooms: i % 7, pool: i % 2 === 0 },
    },
  },
];

async function load(tier: BackupTier, n: number): Promise<BackupRecord> {
  return (await loadTiers([tier], sealer, n, { makeTxs: smallProperty }))[0]!;
}

function peakRss(): { stop(): number } {
  let peak = process.memoryUsage().rss;
  const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  return { stop: () => (clearInterval(t), Math.max(peak, process.memoryUsage().rss)) };
}

const rows: string[][] = [];
const root = await mkdtemp(join(tmpdir(), 'pl-bench-restore-'));
try {
  for (const n of lengths) {
    for (const name of tiers) {
      const dbName = `pl_bench_restore_${process.pid}_${n}`;
      let tier: BackupTier;
      if (name === 'db') {
        await createDatabase(server, dbName);
        tier = new PostgresTier({
          label: 'bench',
          connect: async () => connectPostgres(databaseUrl(server, dbName), { timeoutMs: 600_000 }),
        });
      } else if (name === 'local') {
        tier = localStoreTier(join(root, `local-${n}`), sealer);
      } else {
        const dir = join(root, `ipfs-${n}`);
        tier = await ipfsTier(dir, join(dir, 'latest.json'), sealer);
      }
      await tier.init();
      const built = performance.now();
      const record = await load(tier, n);
      const buildMs = performance.now() - built;
      const times: number[] = [];
      let peak = 0;
      for (let r = 0; r < runs; r++) {
        const target = join(root, `restore-${name}-${n}-${r}`);
        const { store } = await LocalStore.open(target);
        global.gc?.();
        const mem = peakRss();
        const t = performance.now();
        const restored = await restoreInto(store, tier, record, sealer);
        times.push(performance.now() - t);
        peak = Math.max(peak, mem.stop());
        if (restored.head.hash !== record.headHash) throw new Error('restored the wrong head');
        await store.close();
        await rm(target, { recursive: true, force: true });
      }
      // Floors: reading the stored blocks alone (no decryption), and decrypting them without verifying.
      const readT: number[] = [];
      const decryptT: number[] = [];
      for (let r = 0; r < runs; r++) {
        let t = performance.now();
        const all: StoredBlock[] = [];
        for await (const p of tier.readChainPages(record)) if ('blocks' in p) all.push(...p.blocks);
        readT.push(performance.now() - t);
        t = performance.now();
        for (const b of all) openBlock(sealer, record.ledgerId, b);
        decryptT.push(performance.now() - t);
      }
      let copyMs = '-';
      if (name === 'db') {
        const t = performance.now();
        execFileSync('psql', [
          databaseUrl(server, dbName),
          '-qc',
          '\\copy (SELECT sealed FROM ledger_blocks ORDER BY height) TO /dev/null',
        ]);
        copyMs = ms(performance.now() - t);
      }
      const s = summarize(times);
      rows.push([
        n.toLocaleString('en'),
        name,
        ms(s.median),
        ms(Math.min(...times)),
        `${Math.round(peak / 1024 / 1024)} MiB`,
        ms(summarize(readT).median),
        copyMs,
        ms(summarize(decryptT).median),
        `${(buildMs / 1000).toFixed(1)} s`,
      ]);
      console.log(rows.at(-1)!.join('  '));
      await tier.close();
      if (name === 'db') await dropDatabase(server, dbName);
    }
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
console.log(
  `\nrestore into an empty local store (fetch, decrypt, verify every block, write, switch), median of ${runs} runs`,
);
console.log(
  table(
    [
      'blocks',
      'tier',
      'restore median',
      'restore min',
      'peak RSS',
      'read-only floor',
      'psql \\copy floor',
      'decrypt floor',
      'build',
    ],
    rows,
    ['r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  ),
);
