/**
 * The bounds that let a database that hangs be noticed in a short, known time (issue #21), as the product opens the
 * database tier: the server-side statement_timeout and idle_in_transaction_session_timeout on every session follow
 * LEDGER_TIER_TIMEOUT_MS.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { databaseClient, openDatabaseTier, type OpenedTiers } from '../../src/tiers/registry.js';
import { databasePerTest, ledgerConfig } from '../support/pg.js';

const t = databasePerTest('db-session');
const opened: OpenedTiers[] = [];

afterEach(async () => {
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
});
