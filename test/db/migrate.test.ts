import { expect, it } from 'vitest';
import { migrate, pendingMigrations } from '../../src/db/migrate.js';
import { connectPostgres } from '../../src/db/postgres.js';
import { databasePerTest } from '../support/pg.js';

const tdb = databasePerTest('db-migrate');

it('applies every migration once, and again after the tables were dropped by hand', async () => {
  const db = connectPostgres(tdb.db.url);
  try {
    const all = await migrate(db);
    expect(all.length).toBeGreaterThan(0);
    expect(await migrate(db)).toEqual([]);
    expect(await pendingMigrations(db)).toEqual([]);
    // Someone drops the data tables but leaves pawledger_migrations: `pawledger migrate` must still bring them back.
    await db.query('DROP TABLE blockchain_backups, ipfs_backups, ledger_blocks, ledger_branches, ledgers CASCADE');
    expect(await migrate(db)).toEqual(all);
    const tables = await tdb.db.sql<{ t: string }>("SELECT to_regclass('blockchain_backups')::text AS t");
    expect(tables[0]!.t).toBe('blockchain_backups');
  } finally {
    await db.close();
  }
});
