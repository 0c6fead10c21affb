/**
 * wal-fpi: what a save writes to PostgreSQL's WAL at a slow, steady save rate, across checkpoints, at two chain
 * lengths side by side. save-cost times saves back to back for a few seconds, so a checkpoint rarely falls inside its
 * window; a server that saves now and then pays a full-page image (FPI) for each page a save is the first to change
 * after a checkpoint. This shows how many, per relation.
 *
 *   node --import tsx bench/wal-fpi.ts [--minutes=6] [--gap-ms=500] [--lengths=1000,100000]
 *
 * Each length gets its own database (pl_fpi_<pid>_<length>, dropped at the end) and pawledger Ledger, grown as
 * save-cost grows them; then one save per ledger every gap-ms, each followed by a pg_walinspect read of the WAL
 * records of that save's database and transaction.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PawledgerBench } from './lib/pawledger.js';
import { createDatabase, databaseUrl, DEFAULT_ADMIN_URL, dropDatabase, formatLsn, WalMeter } from './lib/pg.js';
import { bytes, table } from './lib/stats.js';

const option = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const minutes = Number(option('minutes', '6'));
const gapMs = Number(option('gap-ms', '500'));
const lengths = option('lengths', '1000,100000').split(',').map(Number);
const RELATIONS = [
  'ledger_blocks',
  'ledger_blocks_pkey',
  'ledger_blocks_hash',
  'blockchain_backups',
  'blockchain_backups_pkey',
  'blockchain_backups_ledger',
  'blockchain_backups_id_seq',
];

const server = process.env.BENCH_PG_URL ?? DEFAULT_ADMIN_URL;
const names = lengths.map((l) => `pl_fpi_${process.pid}_${l}`);
const dir = await mkdtemp(join(tmpdir(), 'pawledger-fpi-'));
const key = randomBytes(32).toString('base64');
const benches: PawledgerBench[] = [];
let meter: WalMeter | null = null;
try {
  for (const n of names) await createDatabase(server, n);
  meter = await WalMeter.connect(databaseUrl(server, names[0]!));
  for (const [i, l] of lengths.entries()) {
    const b = await PawledgerBench.open({
      databaseUrl: databaseUrl(server, names[i]!),
      dataDir: join(dir, String(l)),
      key,
      run: `fpi-${l}`,
    });
    benches.push(b);
    await b.growTo(l, 'batched');
  }
  const relnames = await Promise.all(
    benches.map(
      async (b) =>
        new Map(
          (
            await b.sql.query<{ f: string; n: string }>(
              'SELECT relfilenode::text AS f, relname AS n FROM pg_class WHERE relname = ANY($1)',
              [RELATIONS],
            )
          ).rows.map((r) => [r.f, r.n]),
        ),
    ),
  );
  const checkpoints = async () =>
    Number(
      (
        await meter!.client.query<{ c: string }>(
          'SELECT checkpoints_timed + checkpoints_req AS c FROM pg_stat_bgwriter',
        )
      ).rows[0]!.c,
    );
  const cp0 = await checkpoints();
  const stats = benches.map(() => ({ saves: 0, wal: 0, fpi: 0, fpiBy: new Map<string, number>() }));
  process.stderr.write(`saving to ${lengths.join(' and ')}-block ledgers every ${gapMs} ms for ${minutes} min\n`);
  const end = Date.now() + minutes * 60_000;
  while (Date.now() < end) {
    for (const [i, b] of benches.entries()) {
      const w0 = await meter.lsn();
      await b.save();
      const w1 = await meter.lsn();
      const rows = (
        await meter.client.query<{ len: number; fpi: number; ref: string | null; xid: string }>(
          'SELECT record_length AS len, fpi_length AS fpi, block_ref AS ref, xid::text AS xid FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn)',
          [formatLsn(w0), formatLsn(w1)],
        )
      ).rows;
      const mine = new RegExp(`rel \\d+/${b.dbOid}/(\\d+)`);
      const xids = new Set(rows.filter((x) => x.ref && mine.test(x.ref)).map((x) => x.xid));
      const s = stats[i]!;
      s.saves++;
      for (const x of rows) {
        if (!((x.ref && mine.test(x.ref)) || xids.has(x.xid))) continue;
        s.wal += Number(x.len);
        s.fpi += Number(x.fpi);
        if (Number(x.fpi) > 0) {
          const rel = relnames[i]!.get(mine.exec(x.ref!)?.[1] ?? '') ?? 'other';
          s.fpiBy.set(rel, (s.fpiBy.get(rel) ?? 0) + 1);
        }
      }
    }
    await new Promise((r) => setTimeout(r, gapMs));
  }
  const cps = (await checkpoints()) - cp0;
  process.stdout.write(
    `${minutes} min, one save per ledger every ${gapMs} ms; checkpoints completed meanwhile (any cause): ${cps}\n\n`,
  );
  const cols = [...RELATIONS, 'other'];
  process.stdout.write(
    `${table(
      ['chain length', 'saves', 'own WAL/save', 'of which FPI', ...cols.map((c) => `FPIs ${c}`)],
      lengths.map((l, i) => {
        const s = stats[i]!;
        return [
          l.toLocaleString('en-US'),
          String(s.saves),
          bytes(s.wal / s.saves),
          bytes(s.fpi / s.saves),
          ...cols.map((c) => String(s.fpiBy.get(c) ?? 0)),
        ];
      }),
    )}\n`,
  );
} finally {
  for (const b of benches) await b.close().catch(() => {});
  await meter?.close().catch(() => {});
  for (const n of names) await dropDatabase(server, n).catch(() => {});
  await rm(dir, { recursive: true, force: true });
}
