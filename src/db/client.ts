import { ConfigError, PawledgerError, TimeoutError, UnavailableError } from '../errors.js';

/** Row is one result row; integer columns may come back as numbers or strings, bytea as Buffer or Uint8Array. */
export type Row = Record<string, unknown>;

/** Queryable runs one parameterized statement ($1, $2, ...). */
export interface Queryable {
  query<T extends Row = Row>(sql: string, params?: unknown[]): Promise<T[]>;
}

/**
 * SqlClient is the one database interface pawledger uses, implemented over node-postgres (a real server) and PGlite
 * (embedded). Errors come out translated: UnavailableError when the server cannot be reached, ConfigError when the
 * configuration or schema is wrong.
 */
export interface SqlClient extends Queryable {
  /** label names the database for logs, password redacted. */
  readonly label: string;
  /**
   * probe proves the database answers now, on a connection of its own (not one that may be stuck on a hung
   * statement), within the statement deadline; it throws UnavailableError when not.
   */
  probe(): Promise<void>;
  /** transaction runs fn in one transaction: committed if fn resolves, rolled back if it throws. */
  transaction<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /**
   * copyOut, where the driver offers it (node-postgres), runs `COPY (query) TO STDOUT (FORMAT binary)` and returns
   * each row's fields as raw bytes (binary COPY's encoding: int8 big-endian, bytea as stored). It takes no
   * parameters: the caller inlines only values it validated. Bulk bytea reads use it to skip hex text.
   */
  copyOut?(sql: string): Promise<(Buffer | null)[][]>;
  close(): Promise<void>;
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
  'EAI_AGAIN',
]);

/** translateDbError turns a driver error into a pawledger error that says what to do; others pass through. */
export function translateDbError(err: unknown, label: string): unknown {
  if (err instanceof PawledgerError) return err;
  const e = err as { code?: string; message?: string };
  const code = e.code ?? '';
  const msg = e.message ?? String(err);
  // A statement the server cancelled at statement_timeout (57014), or that the client stopped waiting for.
  if (
    code === '57014' ||
    /query read timeout|timeout exceeded when trying to connect|due to connection timeout/i.test(msg)
  ) {
    return new TimeoutError(`PostgreSQL at ${label} did not answer in time: ${msg}`, {
      hint: 'LEDGER_TIER_TIMEOUT_MS bounds a statement, PG_TIMEOUT_MS connecting; saves go on locally meanwhile (with LEDGER_LEASE=on they are refused until it answers)',
      cause: err,
    });
  }
  if (
    UNREACHABLE_CODES.has(code) ||
    code.startsWith('08') ||
    code === '57P01' ||
    code === '57P02' ||
    code === '57P03' ||
    /timeout|terminated|Connection terminated|not queryable|closed/i.test(msg)
  ) {
    return new UnavailableError(`PostgreSQL at ${label} is unreachable: ${msg}`, {
      hint: 'Check that DATABASE_URL is right and the server is running; saves continue locally and catch up when it is back',
      cause: err,
    });
  }
  if (code === '42P01') {
    return new ConfigError(`PostgreSQL at ${label} lacks pawledger's tables: ${msg}`, {
      hint: 'Run `pawledger migrate`',
      cause: err,
    });
  }
  if (code === '28P01' || code === '28000') {
    return new ConfigError(`PostgreSQL at ${label} refused the credentials in DATABASE_URL`, {
      hint: 'Check the user and password in DATABASE_URL',
      cause: err,
    });
  }
  if (code === '3D000') {
    return new ConfigError(`PostgreSQL at ${label}: the database in DATABASE_URL does not exist`, {
      hint: 'Create it, or fix the database name in DATABASE_URL',
      cause: err,
    });
  }
  return err;
}

/** rowsOf runs one statement on any driver handle with a pg-style `query`, translating its errors for `label`. */
export async function rowsOf<T extends Row>(
  q: { query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }> },
  label: string,
  sql: string,
  params?: unknown[],
): Promise<T[]> {
  try {
    return (await q.query(sql, params)).rows as T[];
  } catch (err) {
    throw translateDbError(err, label);
  }
}
