/**
 * db-pack-read: how fast the database tier hands over a packed chain. It stores n blocks the way saves and compaction
 * leave them (appended loose, then compacted into packs of about 512 KiB of bodies, the newest 256 left loose, and the
 * loose rows' space vacuumed for reuse as autovacuum would), then
 * times reading the backup's chain as pages through PostgresTier.readChainPages, with and without opening every pack
 * (one AES-GCM call each), against the floors: psql's binary COPY of the same stored bytes to /dev/null, and
 * decrypting the packs in memory. It also reports the database's storage against the sealed chain.
 * Run: node --expose-gc --import tsx bench/db-pack-read.ts [--lengths=100000,1000000] [--runs=3]
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { parseKey } from '../src/crypto/key.js';
import { openPack, sealPack, type PackEntry } from '../src/crypto/packs.js';
import { sealRecord, type BackupRecord } from '../src/crypto/records.js';
import { Sealer } from '../src/crypto/seal.js';
import { sealBlock } from '../src/crypto/sealed-blocks.js';
import type { StoredBlock } from '../src/crypto/stored-block.js';
import { connectPostgres } from '../src/db/postgres.js';
import { verifyBackup } from '../src/engine/restore.js';
import { makeBlock } from '../src/ledger/block.js';
import type { Block } from '../src/ledger/types.js';
import { PostgresTier } from '../src/tiers/postgres.js';
import { createDatabase, databaseUrl, DEFAULT_ADMIN_URL, dropDatabase } from './lib/pg.js';
import { bytes, ms, summarize, table } from './lib/stats.js';
import { registerBenchProperty } from './lib/synthetic.js';

const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const lengths = arg('lengths', '100000').split(',').map(Number);
const runs = Number(arg('runs', '3'));
const server = process.env.BENCH_PG_URL ?? DEFAULT_ADMIN_URL;
const sealer = new Sealer(parseKey('c3'.repeat(32)));
const PACK_BODY_BYTES = 512 * 1024;
const KEEP_LOOSE = 256;

// The chain as saves and the compactor leave it: every block appended loose (in batches), and each settled run of
// about PACK_BODY_BYTES of bodies then sent as a pack, which replaces those loose rows.
async function load(tier: PostgresTier, n: number): Promise<{ record: BackupRecord; sealedBytes: number }> {
  let previous: Block | null = null;
  let ledgerId = '';
  let sealedBytes = 0;
  let loose: StoredBlock[] = [];
  let bodies: PackEntry[] = [];
  let bodyBytes = 0;
  let parent: string | null = null;
  let packParent: string | null = null;
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const flush = async () => {
    if (loose.length === 0) return;
    await tier.append(ledgerId, parent, loose);
    parent = loose.at(-1)!.hash;
    loose = [];
  };
  for (let i = 0; i < n; i++) {
    const ts = new Date(t0 + i * 1000).toISOString();
    const enc = makeBlock(previous, previous ? registerBenchProperty(i, ts) : [], ts);
    if (!previous) ledgerId = enc.block.hash;
    const stored = sealBlock(sealer, ledgerId, enc);
    sealedBytes += stored.sealed.length;
    loose.push(stored);
    bodies.push({ height: i, hash: enc.block.hash, body: enc.body });
    bodyBytes += enc.body.length;
    previous = enc.block;
    if (loose.length >= 2000) await flush();
    // A pack is made once its blocks are settled: KEEP_LOOSE newer blocks exist.
    if (bodyBytes >= PACK_BODY_BYTES + KEEP_LOOSE * 600 && i - bodies[0]!.height >= KEEP_LOOSE) {
      await flush();
      let take = 0;
      for (let b = 0; b < bodies.length && b < bodies.length - KEEP_LOOSE; b++) {
        take += bodies[b]!.body.length;
        if (take >= PACK_BODY_BYTES) {
          take = b + 1;
          break;
        }
      }
      const entries = bodies.slice(0, take);
      await tier.putPack(ledgerId, packParent, sealPack(sealer, ledgerId, entries));
      packParent = entries.at(-1)!.hash;
      // What autovacuum does on a live database: the space of the loose rows a pack replaced is reused by later saves.
      await tier.db.query('VACUUM ledger_blocks');
      bodies = bodies.slice(take);
      bodyBytes = bodies.reduce((s, e) => s + e.body.length, 0);
    }
  }
  await flush();
  const record = await tier.putBackup(
    sealRecord(sealer, {
      ledgerId,
      name: 'bench',
      kind: 'manual',
      createdAt: new Date(),
      createdBy: null,
      height: previous!.index,
      headHash: previous!.hash,
      sizeBytes: sealedBytes,
    }),
  );
  return { record, sealedBytes };
}

// psql's binary COPY of what a restore reads (packs and loose rows, in chain order) to /dev/null.
const COPY_SQL = `COPY (SELECT from_height, hashes, sealed FROM ledger_packs UNION ALL
  SELECT height, hash, sealed FROM ledger_blocks ORDER BY 1) TO STDOUT (FORMAT binary)`;
function copyMs(url: string): number {
  const devNull = openSync('/dev/null', 'w');
  try {
    const t = performance.now();
    const p = spawnSync('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', COPY_SQL], {
      stdio: ['ignore', devNull, 'pipe'],
    });
    if (p.status !== 0) throw new Error(`psql COPY failed: ${p.stderr?.toString() ?? p.error}`);
    return performance.now() - t;
  } finally {
    closeSync(devNull);
  }
}

// JavaScript heap plus Buffers in use: what a read holds (the process's RSS also counts what loading left behind).
const inUse = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

// What a read holds at once, over what was held before it: sampled after a full collection every few pages (so garbage
// not yet collected does not count), in a pass of its own that is not timed. Needs --expose-gc, else null.
async function readPeak(tier: PostgresTier, record: BackupRecord): Promise<number | null> {
  const gc = global.gc;
  if (!gc) return null;
  gc();
  const base = inUse();
  let peak = base;
  let n = 0;
  for await (const page of tier.readChainPages(record)) {
    if ('pack' in page && page.pack.hashes.length === 0) throw new Error('empty pack');
    if (++n % 4 === 0) {
      gc();
      peak = Math.max(peak, inUse());
    }
  }
  return peak - base;
}

async function readMs(tier: PostgresTier, record: BackupRecord, open: boolean): Promise<{ ms: number; bytes: number }> {
  let total = 0;
  const t = performance.now();
  for await (const page of tier.readChainPages(record)) {
    if ('pack' in page) {
      total += page.pack.sealed.length + 32 * page.pack.hashes.length;
      if (open) openPack(sealer, record.ledgerId, page.pack, 'bench');
    } else {
      for (const b of page.blocks) {
        total += b.sealed.length + 32;
        if (open) sealer.open({ ledgerId: record.ledgerId, kind: 'block', height: b.height, hash: b.hash }, b.sealed);
      }
    }
  }
  return { ms: performance.now() - t, bytes: total };
}

async function decryptMs(tier: PostgresTier, record: BackupRecord): Promise<number> {
  let total = 0;
  for await (const page of tier.readChainPages(record)) {
    const t = performance.now();
    if ('pack' in page) openPack(sealer, record.ledgerId, page.pack, 'bench');
    else
      for (const b of page.blocks)
        sealer.open({ ledgerId: record.ledgerId, kind: 'block', height: b.height, hash: b.hash }, b.sealed);
    total += performance.now() - t;
  }
  return total;
}

// A restore's verification of the backup: every pack authenticated, every block hashed, linked and replayed from
// block 0 (verifyBackup, what restoreInto does before writing). Writing the local store is left out: on this branch
// the local store does not take packs yet.
async function verifyMs(tier: PostgresTier, record: BackupRecord): Promise<number> {
  const t = performance.now();
  const replayed = await verifyBackup(tier, record, sealer);
  if (replayed.head.hash !== record.headHash) throw new Error('verified the wrong head');
  return performance.now() - t;
}

const rows: string[][] = [];
const storage: string[][] = [];
for (const n of lengths) {
  const name = `pawledger_bench_packs_${process.pid}`;
  await createDatabase(server, name);
  const url = databaseUrl(server, name);
  const tier = new PostgresTier({
    label: 'bench',
    connect: async () => connectPostgres(url, { statementTimeoutMs: 60_000 }),
  });
  try {
    await tier.init();
    const t = performance.now();
    const { record, sealedBytes } = await load(tier, n);
    console.error(`${n} blocks stored in ${ms(performance.now() - t)} ms`);
    await tier.db.query('VACUUM ANALYZE');
    const mb = (b: number, t: number) => (b / 1e6 / (t / 1000)).toFixed(0);
    const copy = summarize(Array.from({ length: runs }, () => copyMs(url)));
    const pages: number[] = [];
    const opened: number[] = [];
    const decrypt: number[] = [];
    const restores: number[] = [];
    let read = 0;
    const peak = await readPeak(tier, record);
    for (let r = 0; r < runs; r++) {
      const p = await readMs(tier, record, false);
      read = p.bytes;
      pages.push(p.ms);
      opened.push((await readMs(tier, record, true)).ms);
      decrypt.push(await decryptMs(tier, record));
      restores.push(await verifyMs(tier, record));
    }
    const rs = summarize(restores);
    const [pg, op, de] = [summarize(pages), summarize(opened), summarize(decrypt)];
    rows.push(
      [String(n), 'psql COPY (binary) to /dev/null', ms(copy.median), mb(read, copy.median), '-'],
      [
        String(n),
        'readChainPages (pages only)',
        ms(pg.median),
        mb(read, pg.median),
        (pg.median / copy.median).toFixed(2),
      ],
      [
        String(n),
        `  held at once (JS heap + Buffers): ${peak === null ? 'run with --expose-gc' : bytes(peak)}`,
        '',
        '',
        '',
      ],
      [String(n), 'decrypting the packs in memory', ms(de.median), mb(read, de.median), '-'],
      [
        String(n),
        'readChainPages + openPack',
        ms(op.median),
        mb(read, op.median),
        (op.median / (copy.median + de.median)).toFixed(2),
      ],
      [
        String(n),
        'verifyBackup (a restore without its local write)',
        ms(rs.median),
        mb(read, rs.median),
        (rs.median / (copy.median + de.median)).toFixed(2),
      ],
    );
    const [sz] = await tier.db.query<{ packs: string; reads: string; blocks: string; cps: string }>(
      `SELECT pg_total_relation_size('ledger_packs') AS packs, pg_total_relation_size('ledger_pack_reads') AS reads,
              pg_total_relation_size('ledger_blocks') AS blocks, pg_total_relation_size('ledger_checkpoints') AS cps`,
    );
    const db = Number(sz!.packs) + Number(sz!.reads) + Number(sz!.blocks) + Number(sz!.cps);
    storage.push([
      String(n),
      bytes(sealedBytes),
      bytes(Number(sz!.packs)),
      bytes(Number(sz!.blocks)),
      bytes(db),
      (db / sealedBytes).toFixed(2),
    ]);
  } finally {
    await tier.close();
    await dropDatabase(server, name);
  }
}
console.log(table(['blocks', 'read', 'median ms', 'MB/s', 'x floor'], rows, ['r', 'l', 'r', 'r', 'r']));
console.log(
  '\n"x floor": pages against COPY; pages opened, and the verification, against COPY + decryption. MB/s of the stored bytes.\n',
);
console.log(
  table(['blocks', 'sealed chain', 'ledger_packs', 'ledger_blocks', 'database total', 'x chain'], storage, [
    'r',
    'r',
    'r',
    'r',
    'r',
    'r',
  ]),
);
