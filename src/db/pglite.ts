import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { makePrivate } from '../store/fsutil.js';
import { lockFile } from '../store/lock.js';
import { rowsOf, type Queryable, type Row, type SqlClient } from './client.js';

/**
 * openPglite opens (creating if needed) the embedded PostgreSQL database in `dir`. PGlite is one connection in this
 * process, so statements and transactions are serialized here.
 */
export async function openPglite(dir: string): Promise<SqlClient> {
  const { PGlite } = await import('@electric-sql/pglite');
  const path = resolve(dir);
  await mkdir(path, { recursive: true, mode: 0o700 });
  // PGlite is a single-process database: a second process opening its folder would corrupt it. The lock sits beside
  // the folder (initdb wants the folder to itself) and is held until close.
  const lock = await lockFile(`${path}.LOCK`, `the embedded database in ${path}`);
  const db = await PGlite.create(path).catch(async (err: unknown) => {
    await lock.release();
    throw err;
  });
  // The database holds backup records and sealed blocks: private like the local store. Files PGlite makes later
  // follow the process's umask (the command line sets 077).
  await makePrivate(path);
  const label = `PGlite at ${path}`;
  const run = <T extends Row>(q: Pick<typeof db, 'query'>, sql: string, params?: unknown[]) =>
    rowsOf<T>(q, label, sql, params);
  return {
    label,
    query: (sql, params) => run(db, sql, params),
    transaction: (fn) =>
      db.transaction(async (t) => {
        const tx: Queryable = { query: (sql, params) => run(t, sql, params) };
        return fn(tx);
      }),
    probe: async () => void (await run(db, 'SELECT 1')),
    close: async () => {
      try {
        await db.close();
      } finally {
        await lock.release();
      }
    },
  };
}
