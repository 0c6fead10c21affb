import pg from 'pg';

/** DEFAULT_ADMIN_URL is the server the benchmark creates its own database on (override with BENCH_PG_URL). */
export const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** databaseUrl is `serverUrl` pointing at database `name`. */
export function databaseUrl(serverUrl: string, name: string): string {
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

function ident(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`unsafe database name ${JSON.stringify(name)}`);
  return `"${name}"`;
}

async function withAdmin<T>(serverUrl: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: serverUrl, application_name: 'pawledger-bench-admin' });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** createDatabase makes a fresh, empty database `name` (dropping a leftover of the same name first). */
export async function createDatabase(serverUrl: string, name: string): Promise<void> {
  await withAdmin(serverUrl, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${ident(name)}`);
  });
}

/** dropDatabase removes database `name`, ending any session still connected to it (only the benchmark's own). */
export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  await withAdmin(serverUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`));
}

/** parseLsn turns a pg_lsn text ("16/B374D848") into a byte position. */
export function parseLsn(text: string): number {
  const [hi, lo] = text.split('/');
  return Number((BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`));
}

/** formatLsn is parseLsn's inverse. */
export function formatLsn(at: number): string {
  return `${Math.floor(at / 2 ** 32)
    .toString(16)
    .toUpperCase()}/${(at % 2 ** 32).toString(16).toUpperCase()}`;
}

/** WalRecord is one WAL record as pg_walinspect reports it; length includes any full-page image. */
export interface WalRecord {
  lsn: number;
  length: number;
  fpiLength: number;
}

/**
 * WalMeter reads the server's WAL insert position on its own connection. WAL is cluster-wide: the difference around
 * a save is what that save wrote plus anything other sessions wrote meanwhile. ownRecords separates the two with
 * pg_walinspect (PostgreSQL 15 contrib, created in the benchmark's own database): the records that touch one
 * database's relations, plus the records of the same transactions (their commit records).
 */
export class WalMeter {
  private constructor(readonly client: pg.Client) {}

  static async connect(url: string): Promise<WalMeter> {
    const client = new pg.Client({ connectionString: url, application_name: 'pawledger-bench-meter' });
    await client.connect();
    await client.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
    return new WalMeter(client);
  }

  /** ownRecords lists the WAL records between two positions that belong to database `dbOid`'s transactions. */
  async ownRecords(from: number, to: number, dbOid: number): Promise<WalRecord[]> {
    // An empty range (nothing flushed between the two reads) holds no records; pg_walinspect refuses it.
    if (from >= to) return [];
    type Row = { lsn: string; xid: string; len: number; fpi: number; ref: string | null };
    // pg_walinspect reads only WAL flushed already: a range that reaches past it (background writes of the ledger
    // still in flight) is asked again a moment later.
    let r: pg.QueryResult<Row> | null = null;
    for (let attempt = 0; r === null; attempt++) {
      try {
        r = await this.client.query<Row>(
          `SELECT start_lsn::text AS lsn, xid::text AS xid, record_length AS len, fpi_length AS fpi, block_ref AS ref
           FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn)`,
          [formatLsn(from), formatLsn(to)],
        );
      } catch (err) {
        if (attempt >= 100 || !/future (start|end) LSN/.test(String((err as Error).message))) throw err;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    const mine = new RegExp(`rel \\d+/${dbOid}/`);
    const xids = new Set(r.rows.filter((x) => x.ref && mine.test(x.ref) && x.xid !== '0').map((x) => x.xid));
    return r.rows
      .filter((x) => (x.ref !== null && mine.test(x.ref)) || xids.has(x.xid))
      .map((x) => ({ lsn: parseLsn(x.lsn), length: Number(x.len), fpiLength: Number(x.fpi) }));
  }

  /** databaseOid is the oid of the database `client` is connected to. */
  static async databaseOid(client: pg.Client): Promise<number> {
    const r = await client.query<{ oid: number }>('SELECT oid FROM pg_database WHERE datname = current_database()');
    return Number(r.rows[0]!.oid);
  }

  // The flush position: pg_walinspect reads only flushed WAL, and a position written but not yet flushed (a background
  // catch-up's statement in flight) made it refuse the range ("cannot accept future start LSN"). A save's commit is
  // flushed before the save resolves, so its records are in.
  async lsn(): Promise<number> {
    const r = await this.client.query<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn');
    return parseLsn(r.rows[0]!.lsn);
  }

  /** busyOtherSessions counts non-idle sessions on other databases of the server (they add to the WAL measured). */
  async busyOtherSessions(): Promise<number> {
    const r = await this.client.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity
       WHERE backend_type = 'client backend' AND datname IS DISTINCT FROM current_database() AND state <> 'idle'`,
    );
    return Number(r.rows[0]!.n);
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}
