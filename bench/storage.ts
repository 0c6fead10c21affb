/**
 * storage: what the database holds after n saves, each one at a time through a real Ledger (DATABASE_URL on a
 * database of its own, IPFS off, compaction and checkpoints at their defaults), against the sealed chain: the report's
 * part 3 for one length, without the rest of the report (a full `npm run bench` grows three ledgers and takes 27 min).
 *
 *   node --import tsx bench/storage.ts [--saves=100000]
 *
 * The database pl_storage_<pid> on BENCH_PG_URL is dropped at the end.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadConfig } from '../src/config.js';
import { Ledger } from '../src/service/ledger.js';
import { createDatabase, databaseUrl, DEFAULT_ADMIN_URL, dropDatabase } from './lib/pg.js';
import { measureStorage, sealedChainBytes } from './lib/storage.js';
import { propertyInput } from './lib/workload.js';

const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const saves = Number(arg('saves', '100000'));
const server = process.env.BENCH_PG_URL ?? DEFAULT_ADMIN_URL;
const name = `pl_storage_${process.pid}`;
const dir = await mkdtemp(join(tmpdir(), 'pawledger-storage-'));
await createDatabase(server, name);
const url = databaseUrl(server, name);
try {
  const ledger = await Ledger.open({
    config: loadConfig({
      DATABASE_URL: url,
      IPFS_PROVIDER: 'off',
      LEDGER_DATA_DIR: join(dir, 'blocks'),
      LEDGER_ENCRYPTION_KEY: 'a5'.repeat(32),
    }),
  });
  const t = performance.now();
  for (let i = 1; i <= saves; i++) {
    await ledger.register(propertyInput('storage', i));
    if (i % 10_000 === 0)
      process.stderr.write(`  ${i.toLocaleString('en-US')} saves, ${((performance.now() - t) / 1000).toFixed(0)} s\n`);
  }
  await ledger.maintain();
  await ledger.close();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const s = await measureStorage(client);
  await client.end();
  const chain = sealedChainBytes(s);
  const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
  const rows = Object.entries(s.tables).map(([table, bytes]) => `| ${table} | ${mb(bytes)} |`);
  process.stdout.write(
    [
      `${saves.toLocaleString('en-US')} saves one at a time: ${s.blocks.toLocaleString('en-US')} blocks, ${s.records.toLocaleString('en-US')} backup records`,
      '',
      '| table | pg_total_relation_size |',
      '|:--|--:|',
      ...rows,
      `| **total** | **${mb(s.total)}** |`,
      '',
      `sealed chain ${mb(chain)}; total / chain ${(s.total / chain).toFixed(2)}x`,
      '',
    ].join('\n'),
  );
} finally {
  await dropDatabase(server, name);
  await rm(dir, { recursive: true, force: true });
}
