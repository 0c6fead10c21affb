/**
 * Binary COPY reads (src/db/copy-out.ts) on the real PostgreSQL: bytes come back exactly as stored, and a COPY that
 * fails, or whose connection is killed, rejects with the typed error and leaves the client usable.
 */
import { expect, it } from 'vitest';
import { connectPostgres } from '../../src/db/postgres.js';
import { UnavailableError } from '../../src/errors.js';
import { databasePerTest, waitFor } from '../support/pg.js';

const tdb = databasePerTest('db-copy-out');

it('returns every field as stored: bytea byte for byte, int8 big-endian, NULL as null', async () => {
  const db = connectPostgres(tdb.db.url);
  try {
    const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await db.query('CREATE TABLE t (id bigint, b bytea)');
    await db.query('INSERT INTO t VALUES (1, $1), (2, NULL), (3, $2)', [every, Buffer.alloc(700_000, 7)]);
    const rows = await db.copyOut!('COPY (SELECT id, b FROM t ORDER BY id) TO STDOUT (FORMAT binary)');
    expect(rows.map((r) => Number(r[0]!.readBigInt64BE(0)))).toEqual([1, 2, 3]);
    expect(rows[0]![1]!.equals(every)).toBe(true);
    expect(rows[1]![1]).toBeNull();
    expect(rows[2]![1]!.equals(Buffer.alloc(700_000, 7))).toBe(true);
    expect(await db.copyOut!('COPY (SELECT id FROM t WHERE false) TO STDOUT (FORMAT binary)')).toEqual([]);
  } finally {
    await db.close();
  }
});

it('rejects a COPY that fails, and a COPY whose connection is killed, and goes on working', async () => {
  const db = connectPostgres(tdb.db.url, { statementTimeoutMs: 60_000 });
  try {
    await expect(db.copyOut!('COPY (SELECT 1 / 0) TO STDOUT (FORMAT binary)')).rejects.toThrow(/division by zero/);
    const slow = db.copyOut!('COPY (SELECT pg_sleep(30)) TO STDOUT (FORMAT binary)');
    slow.catch(() => {});
    let pid = 0;
    await waitFor(
      'the COPY to run',
      async () => {
        const rows = await tdb.db.sql<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'COPY (SELECT pg_sleep%'",
          [tdb.db.name],
        );
        pid = rows[0]?.pid ?? 0;
        return pid !== 0;
      },
      20_000,
    );
    await tdb.db.sql('SELECT pg_terminate_backend($1)', [pid]);
    await expect(slow).rejects.toBeInstanceOf(UnavailableError);
    expect(await db.copyOut!('COPY (SELECT 42::bigint) TO STDOUT (FORMAT binary)')).toHaveLength(1);
  } finally {
    await db.close();
  }
});
