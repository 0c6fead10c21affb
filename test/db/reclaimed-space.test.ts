/**
 * The database tier deletes in bulk in two places: the loose blocks a pack replaces, and the checkpoints past the
 * newest two of a chain (each the whole world state, megabytes for a large ledger). Neither may stay as dead rows: on
 * a server whose autovacuum is off or slow (as the shared one here: autovacuum=off), ledger_checkpoints grew by every
 * checkpoint ever taken (438 MB for a 70 MB chain at 100k saves in `npm run bench`) and ledger_blocks by every block
 * ever packed. The tier makes the room reusable itself.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPostgres } from '../../src/db/postgres.js';
import { PostgresTier } from '../../src/tiers/postgres.js';
import { makeChain, recordFor, testSealer } from '../support/chain.js';
import { packOf } from '../conformance/pack-suite.js';
import { createTempDatabase, type TempDatabase } from '../support/pg.js';

let db: TempDatabase;
beforeAll(async () => {
  db = await createTempDatabase();
});
afterAll(async () => {
  await db?.drop();
});

describe('the room of what the database tier deletes', () => {
  it('is reused by the loose blocks after a pack, not added to', async () => {
    const sealer = testSealer();
    const tier = new PostgresTier({ label: 'test server', connect: async () => connectPostgres(db.url) });
    await tier.init();
    try {
      const heap = async () =>
        Number((await db.sql<{ b: string }>("SELECT pg_relation_size('ledger_blocks') AS b"))[0]!.b);
      const N = 2000;
      const chain = makeChain(sealer, 2 * N);
      await tier.append(chain.ledgerId, null, chain.stored.slice(0, N), recordFor(sealer, chain, N - 1));
      const loose = await heap();
      for (let from = 0; from < N; from += 500)
        await tier.putPack(
          chain.ledgerId,
          from === 0 ? null : chain.stored[from - 1]!.hash,
          packOf(sealer, chain, from, from + 499),
        );
      // As many loose blocks again: they fit in the room of the ones the packs replaced.
      for (let from = N; from < 2 * N; from += 250)
        await tier.append(
          chain.ledgerId,
          chain.stored[from - 1]!.hash,
          chain.stored.slice(from, from + 250),
          recordFor(sealer, chain, from + 249),
        );
      expect(await heap()).toBeLessThan(1.3 * loose);
    } finally {
      await tier.close();
    }
  }, 30_000);

  it('of checkpoints is no more than the two kept take, however many were taken', async () => {
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
