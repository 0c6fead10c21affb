import pg from 'pg';

const ADMIN_URL = process.env.PAWLEDGER_TEST_PG ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

/** TempDatabase is a database of its own on the real PostgreSQL server, dropped by drop(). */
export interface TempDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** createTempDatabase makes a fresh, uniquely named database on the local server (never touching others). */
export async function createTempDatabase(prefix = 'pl_test'): Promise<TempDatabase> {
  const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
      await c.query(`DROP DATABASE IF EXISTS ${name}`);
      await c.end();
    },
  };
}
