import type { Config } from '../config.js';
import { openPglite } from '../db/pglite.js';
import { connectPostgres } from '../db/postgres.js';
import { parseDatabaseUrl } from '../db/url.js';
import { resolve } from 'node:path';
import { PostgresTier } from './postgres.js';

/** WRITER_LEASE is the name of the one writer lease a database holds (pawledger_lease.name). */
export const WRITER_LEASE = 'writer';

/** createDbTier makes the database tier the configuration names (a server or PGlite), or null when it is off. */
export function createDbTier(config: Config): PostgresTier | null {
  const db = config.database;
  switch (db.kind) {
    case 'off':
      return null;
    case 'postgres': {
      const { label } = parseDatabaseUrl(db.url);
      return new PostgresTier({
        label, connect: async () => connectPostgres(db.url, { timeoutMs: config.dbTimeoutMs }), ...(config.lease ? { lease: WRITER_LEASE } : {}),
      });
    }
    case 'pglite':
      return new PostgresTier({ label: `PGlite at ${resolve(db.dir)}`, connect: () => openPglite(db.dir) });
  }
}
