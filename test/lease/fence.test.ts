/**
 * The writer lease and its fence on a real PostgreSQL: one holder at a time, a token per take, and appends that the
 * database itself refuses once another instance has taken the lease, whatever the refused writer believes.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseKey } from '../../src/crypto/key.js';
import { Sealer } from '../../src/crypto/seal.js';
import { holdsFence, WriterLease } from '../../src/db/lease.js';
import { connectPostgres } from '../../src/db/postgres.js';
import { NotWriterError } from '../../src/errors.js';
import { makeBlock } from '../../src/ledger/block.js';
import type { Block } from '../../src/ledger/types.js';
import { sealRecord } from '../../src/crypto/records.js';
import { sealBlock } from '../../src/crypto/sealed-blocks.js';
import type { StoredBlock } from '../../src/crypto/stored-block.js';
import { PostgresTier } from '../../src/tiers/postgres.js';
import { createTempDatabase, TEST_KEY, type TempDatabase } from '../support/pg.js';

const sealer = new Sealer(parseKey(TEST_KEY));

function tierFor(url: string): PostgresTier {
  return new PostgresTier({
    label: 'test db',
    connect: async () => connectPostgres(url, { timeoutMs: 3000 }),
    lease: 'writer',
  });
}

function chainOf(n: number): { blocks: Block[]; stored: StoredBlock[] } {
  const blocks: Block[] = [];
  const stored: StoredBlock[] = [];
  let prev: Block | null = null;
  for (let i = 0; i < n; i++) {
    const e = makeBlock(prev, [], new Date(1_700_000_000_000 + i).toISOString());
    blocks.push(e.block);
    stored.push(sealBlock(sealer, (blocks[0] ?? e.block).hash, e));
    prev = e.block;
  }
  return { blocks, stored };
}

function recordAt(ledgerId: string, b: Block) {
  return sealRecord(sealer, {
    ledgerId,
    name: `at ${b.index}`,
    kind: 'auto',
    createdAt: new Date(),
    createdBy: null,
    height: b.index,
    headHash: b.hash,
    sizeBytes: 1,
  });
}

describe('the writer lease and its fence', () => {
  let db: TempDatabase;
  let a: PostgresTier;
  let b: PostgresTier;
  const ttlMs = 1000;

  beforeAll(async () => {
    db = await createTempDatabase();
    a = tierFor(db.url);
    b = tierFor(db.url);
    await a.init();
    await b.init();
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.drop();
  });

  it('lets one instance hold the lease until it expires, then the next takes it with a new token', async () => {
    const leaseA = new WriterLease(() => a.db, 'writer', ttlMs);
    const leaseB = new WriterLease(() => b.db, 'writer', ttlMs);
    const first = await leaseA.acquire('host-a:1');
    expect(first?.token).toBe('1');
    expect(await leaseB.acquire('host-b:2')).toBeNull();
    const seen = await leaseB.current();
    expect(seen).toMatchObject({ holder: 'host-a:1', token: '1', held: true });

    // A releases: B takes it at once, with the next token; A can neither renew nor release B's lease.
    await leaseA.release('1');
    const second = await leaseB.acquire('host-b:2');
    expect(second?.token).toBe('2');
    expect(await leaseA.renew('1')).toBeNull();
    await leaseA.release('1');
    expect(await leaseB.current()).toMatchObject({ holder: 'host-b:2', token: '2', held: true });

    // Unrenewed, B's lease expires by the database's clock; until someone takes it, B may renew it still.
    await new Promise((r) => setTimeout(r, ttlMs + 200));
    expect((await leaseA.current())!.held).toBe(false);
    expect(await leaseB.renew('2')).toBeInstanceOf(Date);
    expect(await leaseA.acquire('host-a:1')).toBeNull();
    await leaseB.release('2');
  });

  it('refuses the appends of a writer whose lease was taken, on the one-statement path and the transaction path', async () => {
    const lease = new WriterLease(() => a.db, 'writer', ttlMs);
    const { blocks, stored } = chainOf(6);
    const ledgerId = blocks[0]!.hash;
    const tokenA = (await lease.acquire('host-a'))!.token;
    a.setLeaseToken(tokenA);
    // Slow path first (no tip cached), then the one-statement fast path with a record.
    await a.append(ledgerId, null, stored.slice(0, 2), recordAt(ledgerId, blocks[1]!));
    await a.append(ledgerId, blocks[1]!.hash, stored.slice(2, 3), recordAt(ledgerId, blocks[2]!));

    // B holds no token: its tier refuses before it sends anything.
    await expect(b.append(ledgerId, blocks[2]!.hash, stored.slice(3, 4))).rejects.toMatchObject({ lost: false });

    // A is "paused" past its lease; B takes it over. A wakes and appends with its old token.
    await new Promise((r) => setTimeout(r, ttlMs + 200));
    const tokenB = (await new WriterLease(() => b.db, 'writer', ttlMs).acquire('host-b'))!.token;
    expect(tokenB).not.toBe(tokenA);
    const late = a.append(ledgerId, blocks[2]!.hash, stored.slice(3, 4), recordAt(ledgerId, blocks[3]!));
    await expect(late).rejects.toBeInstanceOf(NotWriterError);
    await expect(late).rejects.toMatchObject({ lost: true });
    // Its retry has no token at all; a fresh tier with the old token (the transaction path) is refused by the database.
    await expect(a.append(ledgerId, blocks[2]!.hash, stored.slice(3, 4))).rejects.toMatchObject({ lost: false });
    const stale = tierFor(db.url);
    await stale.init();
    stale.setLeaseToken(tokenA);
    await expect(stale.append(ledgerId, blocks[2]!.hash, stored.slice(3, 5))).rejects.toMatchObject({ lost: true });
    stale.setLeaseToken(tokenA);
    await expect(stale.putBackup(recordAt(ledgerId, blocks[2]!))).rejects.toMatchObject({ lost: true });
    await stale.close();

    // Every other write of the stale holder is refused by the database too: retention, protection, repair.
    const [, first] = (await db.sql<{ id: string }>('SELECT id FROM blockchain_backups ORDER BY id')).map((r) => r.id);
    for (const write of [
      (t: PostgresTier) => t.setProtected(first!, true),
      (t: PostgresTier) => t.deleteBackups([first!]),
      (t: PostgresTier) => t.collectGarbage(ledgerId),
      (t: PostgresTier) => t.writer.query('UPDATE ledger_blocks SET sealed = sealed'),
    ]) {
      const again = tierFor(db.url);
      await again.init();
      again.setLeaseToken(tokenA);
      await expect(write(again)).rejects.toMatchObject({ lost: true });
      await again.close();
    }
    expect((await db.sql('SELECT 1 FROM blockchain_backups WHERE protected')).length).toBe(0);

    // Nothing of A's late writes is in the database; B continues the chain from the last block A committed.
    const rows = await db.sql<{ height: string }>('SELECT height FROM ledger_blocks ORDER BY height');
    expect(rows.map((r) => Number(r.height))).toEqual([0, 1, 2]);
    expect((await db.sql('SELECT id FROM blockchain_backups')).length).toBe(2);
    b.setLeaseToken(tokenB);
    await b.append(ledgerId, blocks[2]!.hash, stored.slice(3, 4), recordAt(ledgerId, blocks[3]!));
    // B is paused and C takes over: B's next catch-up batch (the one-statement path, no record) inserts nothing.
    await new Promise((r) => setTimeout(r, ttlMs + 200));
    const c = tierFor(db.url);
    await c.init();
    c.setLeaseToken((await new WriterLease(() => c.db, 'writer', ttlMs).acquire('host-c'))!.token);
    await expect(b.append(ledgerId, blocks[3]!.hash, stored.slice(4, 5))).rejects.toMatchObject({ lost: true });
    await c.append(ledgerId, blocks[3]!.hash, stored.slice(4, 6), recordAt(ledgerId, blocks[5]!));
    await c.close();
    expect((await db.sql('SELECT DISTINCT branch FROM ledger_blocks')).length).toBe(1);
    expect((await db.sql<{ n: string }>('SELECT count(*) AS n FROM ledger_blocks'))[0]!.n).toBe('6');
  });

  it('makes a taker wait for an append in flight, so the taker then sees that append', async () => {
    const lease = new WriterLease(() => a.db, 'writer', ttlMs);
    await new Promise((r) => setTimeout(r, ttlMs + 200));
    const token = (await lease.acquire('host-a'))!.token;
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query('BEGIN');
      expect(
        await holdsFence({ query: async (sql, params) => (await client.query(sql, params)).rows }, 'writer', token),
      ).toBe(true);
      await new Promise((r) => setTimeout(r, ttlMs + 200));
      // The lease has expired, but an append holding the fence is still running: the taker must wait for it.
      let taken: string | null | undefined;
      const taking = new WriterLease(() => b.db, 'writer', ttlMs)
        .acquire('host-b')
        .then((h) => (taken = h?.token ?? null));
      // The taker is blocked on the row lock the fence holds, not merely slow.
      const waiting = async () =>
        (
          await db.sql(
            "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.query LIKE '%pawledger_lease%'",
          )
        ).length > 0;
      const t0 = performance.now();
      while (!(await waiting()) && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
      expect(await waiting()).toBe(true);
      expect(taken).toBeUndefined();
      await client.query('COMMIT');
      await taking;
      expect(taken).toBe(String(Number(token) + 1));
    } finally {
      await client.end();
    }
  });
});
