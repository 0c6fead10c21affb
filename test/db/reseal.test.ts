/**
 * Key rotation in the database tier (BackupTier.keyCounts and reseal, src/tiers/postgres-reseal.ts) on the real
 * PostgreSQL: loose blocks, packs, checkpoint parts and backup records sealed under an old key are counted by key id
 * from their headers, rewritten under the new key in bounded steps until none is left, and then open with the new
 * key alone; an object under a key the keyring lacks stops the step before it writes anything; a connection killed
 * in the middle of a step, or a writer that lost the lease, leaves every object as it was and readable.
 */
import { describe, expect, it } from 'vitest';
import { openCheckpoint, sealCheckpoint } from '../../src/crypto/checkpoints.js';
import { generateKey, parseKey } from '../../src/crypto/key.js';
import { checkRecord, type BackupRecord } from '../../src/crypto/records.js';
import { Sealer } from '../../src/crypto/seal.js';
import { WriterLease } from '../../src/db/lease.js';
import { connectPostgres } from '../../src/db/postgres.js';
import { IntegrityError, NotWriterError, UnavailableError } from '../../src/errors.js';
import { openPage } from '../../src/engine/page-opener.js';
import { verifyBackup } from '../../src/engine/restore.js';
import { PostgresTier } from '../../src/tiers/postgres.js';
import { LARGE_PER_STEP } from '../../src/tiers/postgres-reseal.js';
import { expected, packOf, stateAt } from '../conformance/pack-suite.js';
import { collect, makeChain, recordFor, type TestChain } from '../support/chain.js';
import { databasePerTest, waitFor } from '../support/pg.js';

const OLD = parseKey(generateKey());
const NEW = parseKey(generateKey());
const THIRD = parseKey(generateKey());
/** old seals the data to rotate; ring is the rotation's keyring (new active, old previous); fresh holds only the new key. */
const old = new Sealer(OLD);
const ring = new Sealer(NEW, [OLD]);
const fresh = new Sealer(NEW);

const tdb = databasePerTest('db-reseal');

function tierFor(url: string, lease?: string): PostgresTier {
  return new PostgresTier({
    label: 'test db',
    connect: async () => connectPostgres(url, { timeoutMs: 5000, statementTimeoutMs: 30_000 }),
    ...(lease ? { lease } : {}),
  });
}

/**
 * fill stores, sealed under `sealer`, a 40-block chain: blocks 0-14 and 15-29 in two packs, 30-39 loose, a
 * checkpoint after block 25, and backup records at 19 and 39. It returns the chain and how many objects that is.
 */
async function fill(tier: PostgresTier, sealer: Sealer): Promise<{ chain: TestChain; total: number }> {
  const chain = makeChain(sealer, 40);
  await tier.append(chain.ledgerId, null, chain.stored.slice(0, 20), recordFor(sealer, chain, 19));
  await tier.append(chain.ledgerId, chain.blocks[19]!.hash, chain.stored.slice(20), recordFor(sealer, chain, 39));
  await tier.putPack(chain.ledgerId, null, packOf(sealer, chain, 0, 14));
  await tier.putPack(chain.ledgerId, chain.blocks[14]!.hash, packOf(sealer, chain, 15, 29));
  const cp = sealCheckpoint(sealer, chain.ledgerId, chain.blocks[25]!.hash, stateAt(chain, 25));
  await tier.putCheckpoint(chain.ledgerId, cp);
  return { chain, total: 10 + 2 + cp.parts.length + 2 };
}

/** Reads says which kinds of the chain's objects open with a sealer: its records, its blocks, its checkpoint. */
interface Reads {
  records: boolean;
  blocks: boolean;
  checkpoint: boolean;
}

/** readsWith opens every record of the chain, the blocks it names and its checkpoint with `sealer`. */
async function readsWith(tier: PostgresTier, sealer: Sealer, chain: TestChain): Promise<Reads> {
  const records = await tier.listBackups(chain.ledgerId);
  expect(records).toHaveLength(2);
  const reads: Reads = { records: true, blocks: true, checkpoint: true };
  for (const record of records) {
    try {
      checkRecord(sealer, record);
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      reads.records = false;
    }
    const blocks: [number, string, string][] = [];
    for (const page of await collect(tier.readChainPages(record))) {
      const o = openPage(sealer, record.ledgerId, tier.name, page, 'full');
      if (o.fail) reads.blocks = false;
      for (const [i, body] of o.bodies.entries()) blocks.push([o.from + i, o.hashes[i]!, body.toString('utf8')]);
    }
    if (reads.blocks) expect(blocks).toEqual(expected(chain, 0, record.height));
    if (!(await checkpointOpens(tier, sealer, record))) reads.checkpoint = false;
  }
  return reads;
}

async function checkpointOpens(tier: PostgresTier, sealer: Sealer, record: BackupRecord): Promise<boolean> {
  const cp = await tier.checkpointFor(record);
  if (record.height < 25) return cp === null;
  expect(cp?.height).toBe(25);
  try {
    const { summary } = await openCheckpoint(sealer, record.ledgerId, cp!, cp!.parts(), 'test db');
    return summary.properties === 25;
  } catch (err) {
    if (err instanceof IntegrityError) return false;
    throw err;
  }
}

const ALL: Reads = { records: true, blocks: true, checkpoint: true };
const NONE: Reads = { records: false, blocks: false, checkpoint: false };

/** again is a stored block sealed anew by `sealer` (which must open it): the same block, other bytes. */
function again(sealer: Sealer, chain: TestChain, height: number): Buffer {
  const block = chain.stored[height]!;
  const ctx = { ledgerId: chain.ledgerId, kind: 'block' as const, height, hash: block.hash };
  return sealer.seal(ctx, sealer.open(ctx, block.sealed));
}

/** sealedBytes is every sealed column of the database, to compare before and after a step that must write nothing. */
async function sealedBytes(): Promise<string[]> {
  const rows = await tdb.db.sql<{ v: string }>(
    `SELECT encode(sealed, 'hex') AS v FROM ledger_blocks UNION ALL SELECT encode(sealed, 'hex') FROM ledger_packs
     UNION ALL SELECT encode(body, 'hex') FROM ledger_checkpoints UNION ALL SELECT backup_data FROM blockchain_backups`,
  );
  return rows.map((r) => r.v).sort();
}

/** rotate calls reseal with `limit` until nothing remains, checking each step, and returns the steps. */
async function rotate(tier: PostgresTier, ledgerId: string, limit: number, total: number) {
  const steps = [];
  for (let i = 0; i < 100; i++) {
    const step = await tier.reseal(ledgerId, ring, limit);
    steps.push(step);
    expect(step.resealed).toBeLessThanOrEqual(limit);
    if (step.remaining === 0) break;
  }
  expect(steps.reduce((n, s) => n + s.resealed, 0)).toBe(total);
  return steps;
}

describe('database key rotation', () => {
  it('counts every object under the old key, re-seals them in small steps, and then reads with the new key alone', async () => {
    const tier = tierFor(tdb.db.url);
    await tier.init();
    try {
      const { chain, total } = await fill(tier, old);
      expect(await tier.keyCounts(chain.ledgerId)).toEqual({ [OLD.id]: total });

      const first = await tier.reseal(chain.ledgerId, ring, 3);
      expect(first).toEqual({ resealed: 3, remaining: total - 3 });
      expect(await tier.keyCounts(chain.ledgerId)).toEqual({ [OLD.id]: total - 3, [NEW.id]: 3 });
      // Half rotated, every object still opens with the keyring.
      expect(await readsWith(tier, ring, chain)).toEqual(ALL);

      const steps = await rotate(tier, chain.ledgerId, 3, total - 3);
      expect(steps.at(-1)!.remaining).toBe(0);
      expect(await tier.keyCounts(chain.ledgerId)).toEqual({ [NEW.id]: total });
      // Done: a further step finds nothing.
      expect(await tier.reseal(chain.ledgerId, ring, 3)).toEqual({ resealed: 0, remaining: 0 });

      expect(await readsWith(tier, fresh, chain)).toEqual(ALL);
      expect(await readsWith(tier, old, chain)).toEqual(NONE);
      for (const record of await tier.listBackups(chain.ledgerId)) await verifyBackup(tier, record, fresh);
      // Nothing moved: the same rows, the same places, the packs still read.
      expect(Number((await tdb.db.sql<{ n: string }>('SELECT count(*) AS n FROM ledger_blocks'))[0]!.n)).toBe(10);
      expect(Number((await tdb.db.sql<{ n: string }>('SELECT count(*) AS n FROM ledger_packs'))[0]!.n)).toBe(2);
      // A ledger the database does not hold has nothing to count or rotate.
      expect(await tier.keyCounts('f'.repeat(64))).toEqual({});
      expect(await tier.reseal('f'.repeat(64), ring, 3)).toEqual({ resealed: 0, remaining: 0 });
    } finally {
      await tier.close();
    }
  });

  it('counts the objects each table holds, including the checkpoint parts behind their part header', async () => {
    const tier = tierFor(tdb.db.url);
    await tier.init();
    try {
      const { chain, total } = await fill(tier, old);
      // A step of no objects rewrites nothing and says what is left.
      expect(await tier.reseal(chain.ledgerId, ring, 0)).toEqual({ resealed: 0, remaining: total });
      // Rotating a large step at once rewrites everything in one transaction.
      expect(await tier.reseal(chain.ledgerId, ring, 1000)).toEqual({ resealed: total, remaining: 0 });
      const parts = await tdb.db.sql<{ k: string }>(
        "SELECT encode(substring(body from 15 for 4), 'hex') AS k FROM ledger_checkpoints",
      );
      expect(parts.length).toBeGreaterThan(0);
      expect(new Set(parts.map((p) => p.k))).toEqual(new Set([NEW.id]));
      const records = await tdb.db.sql<{ k: string }>(
        "SELECT encode(substring(decode(backup_data, 'base64') from 7 for 4), 'hex') AS k FROM blockchain_backups",
      );
      expect(records.map((r) => r.k)).toEqual([NEW.id, NEW.id]);
      expect(await readsWith(tier, fresh, chain)).toEqual(ALL);
    } finally {
      await tier.close();
    }
  });

  it('holds at most LARGE_PER_STEP packs in a step, whatever its limit', async () => {
    const tier = tierFor(tdb.db.url);
    await tier.init();
    try {
      const chain = makeChain(old, 40);
      await tier.append(chain.ledgerId, null, chain.stored, recordFor(old, chain, 39));
      for (let from = 0; from < 40; from += 2)
        await tier.putPack(
          chain.ledgerId,
          from === 0 ? null : chain.blocks[from - 1]!.hash,
          packOf(old, chain, from, from + 1),
        );
      expect(await tier.keyCounts(chain.ledgerId)).toEqual({ [OLD.id]: 21 });
      expect(await tier.reseal(chain.ledgerId, ring, 1000)).toEqual({
        resealed: LARGE_PER_STEP + 1,
        remaining: 20 - LARGE_PER_STEP,
      });
      expect(await tier.reseal(chain.ledgerId, ring, 1000)).toEqual({ resealed: 20 - LARGE_PER_STEP, remaining: 0 });
      const [record] = await tier.listBackups(chain.ledgerId);
      checkRecord(fresh, record!);
      await verifyBackup(tier, record!, fresh);
    } finally {
      await tier.close();
    }
  });

  it('refuses, naming its key, an object sealed under a key the keyring lacks, and writes nothing', async () => {
    const tier = tierFor(tdb.db.url);
    await tier.init();
    try {
      const { chain, total } = await fill(tier, old);
      // Block 35, loose, sealed again under a third key (same block, same place).
      await tdb.db.sql('UPDATE ledger_blocks SET sealed = $1 WHERE height = 35', [
        again(new Sealer(THIRD, [OLD]), chain, 35),
      ]);
      expect(await tier.keyCounts(chain.ledgerId)).toEqual({ [OLD.id]: total - 1, [THIRD.id]: 1 });
      const before = await sealedBytes();

      const step = tier.reseal(chain.ledgerId, ring, 1000);
      await expect(step).rejects.toBeInstanceOf(IntegrityError);
      await expect(step).rejects.toThrow(THIRD.id);
      expect(await sealedBytes()).toEqual(before);
      expect(await tier.keyCounts(chain.ledgerId)).toEqual({ [OLD.id]: total - 1, [THIRD.id]: 1 });
    } finally {
      await tier.close();
    }
  });

  it('leaves every object readable when its connection is killed in the middle of a step, and the next call finishes', async () => {
    const tier = tierFor(tdb.db.url);
    await tier.init();
    const { chain, total } = await fill(tier, old);
    const before = await sealedBytes();
    // Hold the step's transaction at its last UPDATE: SHARE lets it rewrite blocks, packs and checkpoints, not records.
    const blocker = connectPostgres(tdb.db.url);
    try {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const holding = blocker.transaction(async (tx) => {
        await tx.query('LOCK TABLE blockchain_backups IN SHARE MODE');
        locked();
        await held;
      });
      await isLocked;
      const step = tier.reseal(chain.ledgerId, ring, 1000);
      step.catch(() => {});
      let pid = 0;
      await waitFor(
        'the reseal to wait for the lock',
        async () => {
          const rows = await tdb.db.sql<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock' AND query LIKE 'UPDATE blockchain_backups%'`,
            [tdb.db.name],
          );
          pid = rows[0]?.pid ?? 0;
          return pid !== 0;
        },
        20_000,
      );
      // By now it has rewritten the blocks, packs and checkpoint parts, uncommitted.
      await tdb.db.sql('SELECT pg_terminate_backend($1)', [pid]);
      release();
      await holding;
      await expect(step).rejects.toBeInstanceOf(UnavailableError);
    } finally {
      await blocker.close();
    }
    try {
      expect(await sealedBytes()).toEqual(before);
      expect(await tier.keyCounts(chain.ledgerId)).toEqual({ [OLD.id]: total });
      expect(await readsWith(tier, ring, chain)).toEqual(ALL);
      await rotate(tier, chain.ledgerId, 7, total);
      expect(await tier.keyCounts(chain.ledgerId)).toEqual({ [NEW.id]: total });
      expect(await readsWith(tier, fresh, chain)).toEqual(ALL);
    } finally {
      await tier.close();
    }
  });

  it('does not overwrite a row changed between its read and its write (compare-and-swap)', async () => {
    const tier = tierFor(tdb.db.url);
    await tier.init();
    try {
      const { chain, total } = await fill(tier, old);
      // A block repaired (rewritten with another copy) while the step re-seals it: the step waits at its UPDATE of
      // ledger_blocks until the repair commits, then finds other bytes there and leaves them.
      const blocker = connectPostgres(tdb.db.url);
      try {
        let release!: () => void;
        const held = new Promise<void>((r) => (release = r));
        let locked!: () => void;
        const isLocked = new Promise<void>((r) => (locked = r));
        const holding = blocker.transaction(async (tx) => {
          await tx.query('LOCK TABLE ledger_blocks IN SHARE ROW EXCLUSIVE MODE');
          locked();
          await held;
          // The copy a repair (or a compaction) writes meanwhile: block 31 sealed again under the old key.
          await tx.query('UPDATE ledger_blocks SET sealed = $1 WHERE height = 31', [again(old, chain, 31)]);
        });
        await isLocked;
        const step = tier.reseal(chain.ledgerId, ring, 1000);
        step.catch(() => {});
        await waitFor('the reseal to wait for the lock', async () => {
          const rows = await tdb.db.sql(
            `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock' AND query LIKE 'UPDATE ledger_blocks%'`,
            [tdb.db.name],
          );
          return rows.length > 0;
        });
        release();
        await holding;
        const done = await step;
        // Block 31 kept the concurrent copy (still under the old key): one object left for the next step.
        expect(done).toEqual({ resealed: total - 1, remaining: 1 });
      } finally {
        await blocker.close();
      }
      expect(await tier.keyCounts(chain.ledgerId)).toEqual({ [OLD.id]: 1, [NEW.id]: total - 1 });
      expect(await tier.reseal(chain.ledgerId, ring, 1000)).toEqual({ resealed: 1, remaining: 0 });
      expect(await readsWith(tier, fresh, chain)).toEqual(ALL);
    } finally {
      await tier.close();
    }
  });

  it('refuses a step from a writer that lost the lease, and writes nothing', async () => {
    const tier = tierFor(tdb.db.url, 'writer');
    await tier.init();
    try {
      const lease = new WriterLease(() => tier.db, 'writer', 60_000);
      const tokenA = (await lease.acquire('host-a'))!.token;
      tier.setLeaseToken(tokenA);
      const { chain, total } = await fill(tier, old);
      const before = await sealedBytes();
      await tdb.db.sql("UPDATE pawledger_lease SET expires_at = now() WHERE name = 'writer'");
      expect((await lease.acquire('host-b'))!.token).not.toBe(tokenA);

      const late = tier.reseal(chain.ledgerId, ring, 1000);
      await expect(late).rejects.toBeInstanceOf(NotWriterError);
      await expect(late).rejects.toMatchObject({ lost: true });
      expect(await sealedBytes()).toEqual(before);
      expect(await tier.keyCounts(chain.ledgerId)).toEqual({ [OLD.id]: total });
      // Without a token at all it refuses up front.
      tier.setLeaseToken(null);
      await expect(tier.reseal(chain.ledgerId, ring, 1000)).rejects.toBeInstanceOf(NotWriterError);
      expect(await sealedBytes()).toEqual(before);
    } finally {
      await tier.close();
    }
  });
});
