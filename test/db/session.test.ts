/**
 * The bounds that let a database that hangs be noticed in a short, known time (issue #21), as the product opens the
 * database tier: the server-side statement_timeout and idle_in_transaction_session_timeout on every session follow
 * LEDGER_TIER_TIMEOUT_MS, and TCP keepalives start after LEDGER_DB_KEEPALIVE_MS, a variable refused when it is not a
 * sensible number of milliseconds.
 */
import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { databaseClient, openDatabaseTier, type OpenedTiers } from '../../src/tiers/registry.js';
import { databasePerTest, ledgerConfig } from '../support/pg.js';

const t = databasePerTest('db-session');
const opened: OpenedTiers[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  for (const o of opened.splice(0)) await o.close();
});

/** sessionOf opens the database tier as serve does, with `env` on top of the test defaults, and returns its SQL client. */
async function sessionOf(env: NodeJS.ProcessEnv) {
  const o = openDatabaseTier(ledgerConfig(t.dataDir(), t.db.url, env), silentLogger())!;
  opened.push(o);
  return databaseClient(o)!();
}

describe('the database session', () => {
  it('has statement_timeout at LEDGER_TIER_TIMEOUT_MS and idle_in_transaction_session_timeout at twice that', async () => {
    for (const ms of [1234, 4321]) {
      const db = await sessionOf({ LEDGER_TIER_TIMEOUT_MS: String(ms) });
      // On a connection of the pool and inside a transaction (a checked-out connection): every session is bounded.
      const pooled = await db.query<{ statement_timeout: string }>('SHOW statement_timeout');
      expect(pooled[0]!.statement_timeout).toBe(`${ms}ms`);
      const inTx = await db.transaction(async (tx) => ({
        statement: (await tx.query<{ statement_timeout: string }>('SHOW statement_timeout'))[0]!.statement_timeout,
        idle: (
          await tx.query<{ idle_in_transaction_session_timeout: string }>('SHOW idle_in_transaction_session_timeout')
        )[0]!.idle_in_transaction_session_timeout,
      }));
      expect(inTx).toEqual({ statement: `${ms}ms`, idle: `${2 * ms}ms` });
    }
  });

  it('follows the default deadline when LEDGER_TIER_TIMEOUT_MS is unset: the smaller of PG_TIMEOUT_MS and 2 s', async () => {
    const db = await sessionOf({ PG_TIMEOUT_MS: '5000' });
    const rows = await db.query<{ statement_timeout: string }>('SHOW statement_timeout');
    expect(rows[0]!.statement_timeout).toBe('2s');
  });

  it('starts TCP keepalives on its connections after LEDGER_DB_KEEPALIVE_MS (1 s unless set)', async () => {
    const keepAlive = vi.spyOn(net.Socket.prototype, 'setKeepAlive');
    const delays = async (env: NodeJS.ProcessEnv) => {
      keepAlive.mockClear();
      await (await sessionOf(env)).query('SELECT 1');
      expect(keepAlive).toHaveBeenCalled();
      return [...new Set(keepAlive.mock.calls.map(([on, delay]) => `${on} after ${delay} ms`))];
    };
    expect(await delays({})).toEqual(['true after 1000 ms']);
    expect(await delays({ LEDGER_DB_KEEPALIVE_MS: '7000' })).toEqual(['true after 7000 ms']);
  });
});

describe('LEDGER_DB_KEEPALIVE_MS', () => {
  const URL = 'postgresql://postgres@127.0.0.1:5432/x';

  it('reads milliseconds, 1000 by default', () => {
    expect(loadConfig({ DATABASE_URL: URL }).dbKeepAliveMs).toBe(1000);
    expect(loadConfig({ DATABASE_URL: URL, LEDGER_DB_KEEPALIVE_MS: '30000' }).dbKeepAliveMs).toBe(30_000);
  });

  it('refuses garbage, fractions and values out of range, naming the variable and the range', () => {
    for (const bad of ['soon', '1.5s', '2500.5', '-1000', '0', '999', '3600001']) {
      const load = () => loadConfig({ DATABASE_URL: URL, LEDGER_DB_KEEPALIVE_MS: bad });
      expect(load, bad).toThrow(ConfigError);
      expect(load, bad).toThrow(
        `LEDGER_DB_KEEPALIVE_MS must be an integer between 1000 and 3600000, got ${JSON.stringify(bad)}`,
      );
    }
  });
});
