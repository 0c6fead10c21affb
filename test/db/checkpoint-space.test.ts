/**
 * A checkpoint is the whole world state (megabytes for a large ledger), and the database keeps the newest two of a
 * chain. The ones dropped must not stay as dead rows: on a server whose autovacuum is off or slow (as the shared one
 * here: autovacuum=off) ledger_checkpoints grew by every checkpoint ever taken, 438 MB for a 70 MB chain at 100k
 * saves in `npm run bench`. putCheckpoint makes the space reusable itself.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPostgres } from '../../src/db/postgres.js';
import { PostgresTier } from '../../src/tiers/postgres.js';
import { makeChain, recordFor, testSealer } from '../support/chain.js';
import { createTempDatabase, type TempDatabase } from '../support/pg.js';

let db: TempDatabase;
beforeAll(async () => {
  db = await createTempDatabase();
});
afterAll(async () => {
  await db?.drop();
});

describe('checkpoints in PostgreSQL', () => {
  it('take no more room than the two kept, however many were taken', async () => {
    const sealer = testSealer();
    const tier = new PostgresTier({ label: 'test server', connect: async () => connectPostgres(db.url) });
    await tier.init();
    try {
      const chain = makeChain(sealer, 12);
      await tier.append(chain.ledgerId, null, chain.stored, recordFor(sealer, chain, 11));
      const PART = 1024 * 1024;
      // Random bytes: the sealed state does not compress, and neither do these.
      for (let h = 1; h <= 10; h++)
        await tier.putCheckpoint(chain.ledgerId, {
          height: h,
          hash: chain.stored[h]!.hash,
          parts: [randomBytes(PART)],
        });
      const [kept] = await db.sql<{ n: string }>('SELECT count(DISTINCT height) AS n FROM ledger_checkpoints');
      expect(Number(kept!.n)).toBe(2);
      const [size] = await db.sql<{ bytes: string }>("SELECT pg_total_relation_size('ledger_checkpoints') AS bytes");
      // Two kept, and room for about two more reused: not ten.
      expect(Number(size!.bytes)).toBeLessThan(5 * PART);
    } finally {
      await tier.close();
    }
  }, 30_000);
});
