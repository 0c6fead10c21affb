import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { WalMeter } from './pg.js';

/** FloorResult is one floor: per-operation times (ms) and, for the database, the WAL each operation wrote (bytes). */
export interface FloorResult {
  name: string;
  times: number[];
  wal?: number[];
  /** ownWal is the WAL of the benchmark database's own records per operation (pg_walinspect), when measured. */
  ownWal?: number[];
}

/**
 * commitFloor times one autocommitted INSERT of a small row (one round trip, one commit, one WAL flush) on a fresh
 * connection to the benchmark database; the first `warmup` are not counted.
 */
export async function commitFloor(
  url: string,
  n: number,
  meter: WalMeter,
  warmup = 20,
  own = true,
): Promise<FloorResult> {
  const c = new pg.Client({ connectionString: url, application_name: 'pawledger-bench-floor' });
  await c.connect();
  try {
    await c.query('CREATE TABLE IF NOT EXISTS floor_commit (id bigserial PRIMARY KEY, v text NOT NULL)');
    const row = 'x'.repeat(32);
    for (let i = 0; i < warmup; i++) await c.query('INSERT INTO floor_commit (v) VALUES ($1)', [row]);
    const times: number[] = [];
    const wal: number[] = [];
    const ranges: [number, number][] = [];
    for (let i = 0; i < n; i++) {
      const w0 = await meter.lsn();
      const t = performance.now();
      await c.query('INSERT INTO floor_commit (v) VALUES ($1)', [row]);
      times.push(performance.now() - t);
      const w1 = await meter.lsn();
      wal.push(w1 - w0);
      ranges.push([w0, w1]);
    }
    const result: FloorResult = { name: 'PostgreSQL: INSERT of one 32-byte row, autocommit', times, wal };
    if (own) {
      const records = await meter.ownRecords(ranges[0]![0], ranges.at(-1)![1], await WalMeter.databaseOid(c));
      result.ownWal = ranges.map(([from, to]) =>
        records.filter((r) => r.lsn >= from && r.lsn < to).reduce((a, r) => a + r.length, 0),
      );
    }
    return result;
  } finally {
    await c.end();
  }
}

/** roundTripFloor times `SELECT 1`: the client/server round trip with no write and no commit flush. */
export async function roundTripFloor(url: string, n: number, warmup = 20): Promise<FloorResult> {
  const c = new pg.Client({ connectionString: url, application_name: 'pawledger-bench-floor' });
  await c.connect();
  try {
    for (let i = 0; i < warmup; i++) await c.query('SELECT 1');
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await c.query('SELECT 1');
      times.push(performance.now() - t);
    }
    return { name: 'PostgreSQL: SELECT 1 round trip (no commit)', times };
  } finally {
    await c.end();
  }
}

/**
 * appendFloor times one 500-byte append to a file followed by fdatasync (what the local store does per save) or
 * fsync, with node:fs/promises as the store uses it.
 */
export async function appendFloor(
  dir: string,
  n: number,
  sync: 'fdatasync' | 'fsync',
  warmup = 20,
): Promise<FloorResult> {
  const fh = await open(join(dir, `floor-${sync}.bin`), 'a');
  try {
    const buf = randomBytes(500);
    const once = async () => {
      await fh.write(buf, 0, buf.length, null);
      if (sync === 'fdatasync') await fh.datasync();
      else await fh.sync();
    };
    for (let i = 0; i < warmup; i++) await once();
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await once();
      times.push(performance.now() - t);
    }
    return { name: `Local file: 500-byte append + ${sync}`, times };
  } finally {
    await fh.close();
  }
}
