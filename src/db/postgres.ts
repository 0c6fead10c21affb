import pg from 'pg';
import { CopyOut } from './copy-out.js';
import { rowsOf, translateDbError, type Queryable, type Row, type SqlClient } from './client.js';
import { parseDatabaseUrl } from './url.js';

/** PostgresOptions tune the connection to a real server. */
export interface PostgresOptions {
  /** timeoutMs bounds connecting (PG_TIMEOUT_MS). @default 5000 */
  timeoutMs?: number;
  /**
   * statementTimeoutMs bounds each statement, on the client (a server that stops answering) and on the server
   * (statement_timeout; idle_in_transaction_session_timeout twice as long), so a hang is noticed in this long
   * (LEDGER_TIER_TIMEOUT_MS). @default the smaller of timeoutMs and 2000
   */
  statementTimeoutMs?: number;
  /**
   * keepAliveMs is how long a connection may sit silent before TCP keepalive probes start (LEDGER_DB_KEEPALIVE_MS).
   * @default 1000
   */
  keepAliveMs?: number;
  /** max is the pool size. @default 4 */
  max?: number;
}

/** connectPostgres makes a pooled client for DATABASE_URL. It connects lazily, on the first query. */
export function connectPostgres(databaseUrl: string, options: PostgresOptions = {}): SqlClient {
  const target = parseDatabaseUrl(databaseUrl);
  const timeoutMs = options.timeoutMs ?? 5000;
  const statementMs = options.statementTimeoutMs ?? Math.min(timeoutMs, 2000);
  const session = {
    connectionString: target.connectionString,
    ssl: target.ssl,
    query_timeout: statementMs,
    statement_timeout: statementMs,
    idle_in_transaction_session_timeout: 2 * statementMs,
    // Keepalives find a peer that vanished (a host gone, a cut cable) on an idle connection; a deadline finds one
    // that stopped answering on a busy one.
    keepAlive: true,
    keepAliveInitialDelayMillis: options.keepAliveMs ?? 1000,
    application_name: 'pawledger',
  };
  const pool = new pg.Pool({
    ...session,
    max: options.max ?? 4,
    connectionTimeoutMillis: timeoutMs,
    idleTimeoutMillis: 30_000,
  });
  // An idle client whose server went away emits 'error' on the pool; without a listener that would crash the process.
  pool.on('error', () => {});
  // A client that dies before a transaction attaches its own listener (a FATAL read with its first ReadyForQuery:
  // pg_terminate_backend, a server shutting down) emits 'error' on itself: every client gets a listener at birth.
  pool.on('connect', (client) => client.on('error', () => {}));
  const label = target.label;
  const run = <T extends Row>(q: pg.Pool | pg.PoolClient, sql: string, params?: unknown[]) =>
    rowsOf<T>(q, label, sql, params);
  // A client checked out of the pool for several statements. It has no pool listener: a connection that dies between
  // statements (a terminated backend, a reset) emits 'error' on it, which would otherwise be an uncaught exception
  // that ends the process. A client that broke, or that fn marks broken, is destroyed rather than given back.
  const checkedOut = async <T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw translateDbError(err, label);
    }
    let broken = false;
    const onError = () => {
      broken = true;
    };
    client.on('error', onError);
    try {
      return await fn(client);
    } catch (err) {
      if (err instanceof BrokenConnection) {
        broken = true;
        throw err.error;
      }
      throw err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  };
  return {
    label,
    query: (sql, params) => run(pool, sql, params),
    async transaction(fn) {
      return checkedOut(async (client) => {
        await run(client, 'BEGIN');
        try {
          const tx: Queryable = { query: (sql, params) => run(client, sql, params) };
          const result = await fn(tx);
          await run(client, 'COMMIT');
          return result;
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {
            throw new BrokenConnection(err);
          });
          throw err;
        }
      });
    },
    async copyOut(sql) {
      return checkedOut(async (client) => {
        const copy = new CopyOut(sql);
        client.query(copy as unknown as pg.QueryConfig);
        try {
          return await copy.done;
        } catch (err) {
          // A COPY cut midway leaves the connection in an unknown state: it is not given back to the pool.
          throw new BrokenConnection(translateDbError(err, label));
        }
      });
    },
    // A probe asks on a connection of its own, never one of the pool's, which may be stuck on a hung statement.
    async probe() {
      const client = new pg.Client({ ...session, connectionTimeoutMillis: statementMs });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.query('SELECT 1');
      } catch (err) {
        throw translateDbError(err, label);
      } finally {
        void client.end().catch(() => {});
      }
    },
    close: () => pool.end(),
  };
}

// BrokenConnection carries an error out of a checked-out client's work and says the connection must not be reused.
class BrokenConnection extends Error {
  constructor(readonly error: unknown) {
    super('broken connection');
  }
}
