/**
 * Helpers for test/db: throwaway databases on the local PostgreSQL (127.0.0.1:5432, trust auth), one per test so that
 * each starts a fresh ledger; a ledger configuration pointed at one with short timeouts; direct SQL for looking at
 * (and tampering with) rows; and a log-capturing logger.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { pino } from 'pino';
import { loadConfig, type Config } from '../../src/config.js';
import type { Logger } from '../../src/log.js';

/** PG_PORT is the real server's port. */
export const PG_PORT = 5432;

/** TEST_KEY is the fixed LEDGER_ENCRYPTION_KEY of every test ledger (64 hex digits). */
export const TEST_KEY = 'a1'.repeat(32);

/** pgUrl is a connection URL for `database` on `port` (the real server unless a proxy's port is given). */
export function pgUrl(database: string, port = PG_PORT, password?: string): string {
  const auth = password === undefined ? 'postgres' : `postgres:${encodeURIComponent(password)}`;
  return `postgresql://${auth}@127.0.0.1:${port}/${database}`;
}

/** TempDatabase is a database made for one test file; drop() terminates its connections and drops it. */
export interface TempDatabase {
  name: string;
  /** url connects to it directly on the real port. */
  url: string;
  /** sql runs one statement over a direct connection (not the ledger's) and returns its rows. */
  sql<T extends pg.QueryResultRow = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: pgUrl('postgres'), application_name: 'pawledger-test-admin' });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** createTempDatabase creates an empty database `pl_<random>` (pawledger migrates it on first open). */
export async function createTempDatabase(): Promise<TempDatabase> {
  const name = `pl_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = pgUrl(name);
  const client = new pg.Client({ connectionString: url, application_name: 'pawledger-test' });
  await client.connect();
  client.on('error', () => {});
  return {
    name,
    url,
    sql: async <T extends pg.QueryResultRow>(text: string, params?: unknown[]) =>
      (await client.query<T>(text, params)).rows,
    drop: async () => {
      await client.end().catch(() => {});
      await admin(async (c) => {
        await c.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [name],
        );
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      });
    },
  };
}

/** ledgerConfig is the configuration of a test ledger on `dataDir` replicating to `url`; `extra` overrides the environment. */
export function ledgerConfig(dataDir: string, url: string, extra: NodeJS.ProcessEnv = {}): Config {
  return loadConfig({
    DATABASE_URL: url,
    LEDGER_DATA_DIR: dataDir,
    LEDGER_ENCRYPTION_KEY: TEST_KEY,
    PG_TIMEOUT_MS: '1500',
    LEDGER_RETRY_MS: '100',
    LOG_FORMAT: 'json',
    ...extra,
  });
}

/** tempDir makes a fresh temporary folder; the returned cleanup removes it. */
export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `pawledger-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** captureLogger returns a pino logger writing to a stream whose raw lines are kept in `lines`. */
export function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) });
  return { logger, lines };
}

/** snapshotFiles maps every file under `dir` (relative path) to its contents in hex, to compare a folder before and after. */
export async function snapshotFiles(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out[relative(dir, p)] = (await readFile(p)).toString('hex');
    }
  };
  await walk(dir);
  return out;
}

/** BackupRow is a blockchain_backups row as psql shows it. */
export interface BackupRow {
  id: string;
  name: string;
  filename: string;
  backup_data: string;
  created_at: Date;
  created_by: number | null;
  ledger_id: number;
  height: string;
  head_hash: string;
  block_count: string;
  size_bytes: string;
}

/** newestBackupRow is the newest blockchain_backups row, or undefined. */
export async function newestBackupRow(db: TempDatabase): Promise<BackupRow | undefined> {
  return (await db.sql<BackupRow>('SELECT * FROM blockchain_backups ORDER BY id DESC LIMIT 1'))[0];
}

/** waitFor polls `check` every 50 ms until it returns true, or fails after `ms` with `what`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 8000): Promise<number> {
  const start = performance.now();
  while (!(await check())) {
    if (performance.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return performance.now() - start;
}

/** property builds a register input with a recognisable id. */
export function propertyInput(id: string, n = 0) {
  return { id, name: `Property ${id}`, address: `${n} Replica Road`, owner: `owner-${n % 5}`, attributes: { n } };
}

/** PerTest gives each test of a file a fresh database, and the file a folder of data folders. */
export interface PerTest {
  /** db is the current test's database. */
  readonly db: TempDatabase;
  /** dataDir names a new, unused data folder in the file's folder. */
  dataDir(): string;
}

/**
 * databasePerTest registers the hooks that make a fresh database before each test (a ledger opened on an empty data
 * folder restores the database's newest backup, so tests must not share one) and drop it after; call it at the top
 * of a test file.
 */
export function databasePerTest(prefix: string): PerTest {
  let db: TempDatabase | undefined;
  let dir = '';
  let cleanup: (() => Promise<void>) | undefined;
  let seq = 0;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir(prefix));
  });
  afterAll(async () => {
    await cleanup?.();
  });
  beforeEach(async () => {
    db = await createTempDatabase();
  });
  afterEach(async () => {
    await db?.drop();
  });
  return {
    get db() {
      return db!;
    },
    dataDir: () => join(dir, `data-${seq++}`),
  };
}
