/**
 * Packs and checkpoints in the database tier, on the real PostgreSQL: fenced by the writer lease, upgrading a
 * schema-4 database in place, surviving a connection killed mid-compaction, and garbage collection that frees only
 * what no remaining backup reaches. (The contract itself is test/conformance/pack-suite.ts.)
 */
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sealCheckpoint } from '../../src/crypto/checkpoints.js';
import { parseKey } from '../../src/crypto/key.js';
import type { BackupRecord } from '../../src/crypto/records.js';
import { Sealer } from '../../src/crypto/seal.js';
import { WriterLease } from '../../src/db/lease.js';
import { migrate, MIGRATIONS_DIR } from '../../src/db/migrate.js';
import { connectPostgres } from '../../src/db/postgres.js';
import { NotWriterError, UnavailableError } from '../../src/errors.js';
import { pageRange, type ChainPage } from '../../src/crypto/packs.js';
import { openPage } from '../../src/engine/page-opener.js';
import { verifyBackup } from '../../src/engine/restore.js';
import { PostgresTier } from '../../src/tiers/postgres.js';
import { blockInsert, recordParams, recordPlaceholders } from '../../src/tiers/postgres-rows.js';
import { expected, opened, packOf, stateAt } from '../conformance/pack-suite.js';
import { makeChain, recordFor } from '../support/chain.js';
import { databasePerTest, TEST_KEY, waitFor } from '../support/pg.js';

const sealer = new Sealer(parseKey(TEST_KEY));
const tdb = databasePerTest('db-packs');

// Statements may wait long on a loaded machine (and one test holds putPack on a lock while it looks for it).
function tierFor(url: string, lease?: string): PostgresTier {
  return new PostgresTier({
    label: 'test db',
    connect: async () => connectPostgres(url, { timeoutMs: 5000, statementTimeoutMs: 30_000 }),
    ...(lease ? { lease } : {}),
  });
}

async function count(table: string): Promise<number> {
  return Number((await tdb.db.sql<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))[0]!.n);
}

describe('database packs and checkpoints', () => {
  it('refuses a pack or a checkpoint sent with a stale fencing token, and writes nothing', async () => {
    const tier = tierFor(tdb.db.url, 'writer');
    await tier.init();
    try {
      const lease = new WriterLease(() => tier.db, 'writer', 60_000);
      const tokenA = (await lease.acquire('host-a'))!.token;
      tier.setLeaseToken(tokenA);
      const chain = makeChain(sealer, 10);
      const { record } = await tier.append(chain.ledgerId, null, chain.stored, recordFor(sealer, chain, 9));
      // Another instance takes the lease (A's expired while it was paused).
      await tdb.db.sql("UPDATE pawledger_lease SET expires_at = now() WHERE name = 'writer'");
      expect((await lease.acquire('host-b'))!.token).not.toBe(tokenA);

      const late = tier.putPack(chain.ledgerId, null, packOf(sealer, chain, 0, 7));
      await expect(late).rejects.toBeInstanceOf(NotWriterError);
      await expect(late).rejects.toMatchObject({ lost: true });
      tier.setLeaseToken(tokenA);
      const cp = sealCheckpoint(sealer, chain.ledgerId, chain.blocks[8]!.hash, stateAt(chain, 8));
      await expect(tier.putCheckpoint(chain.ledgerId, cp)).rejects.toMatchObject({ lost: true });

      expect(await count('ledger_packs')).toBe(0);
      expect(await count('ledger_checkpoints')).toBe(0);
      expect(await count('ledger_blocks')).toBe(10);
      expect((await opened(tier, sealer, record!)).blocks).toEqual(expected(chain));
    } finally {
      await tier.close();
    }
  });

  it('upgrades a schema-4 database holding rows written before packs, reads the same chain, then compacts it', async () => {
    // Schema 4: the migrations before packs, and rows as the one-row-per-block append writes them.
    const dir = await mkdtemp(join(tmpdir(), 'pl-schema4-'));
    const chain = makeChain(sealer, 30);
    const old = connectPostgres(tdb.db.url);
    try {
      for (const f of ['0001_init.sql', '0002_ipfs_backups.sql', '0003_ipfs_retention.sql', '0004_writer_lease.sql'])
        await copyFile(join(MIGRATIONS_DIR, f), join(dir, f));
      expect(await migrate(old, dir)).toHaveLength(4);
      await old.transaction(async (tx) => {
        const [l] = await tx.query<{ id: number }>('INSERT INTO ledgers (genesis_hash) VALUES ($1) RETURNING id', [
          chain.ledgerId,
        ]);
        const lid = Number(l!.id);
        await tx.query(
          'INSERT INTO ledger_branches (ledger_id, branch, parent_branch, first_height) VALUES ($1, 1, NULL, 0)',
          [lid],
        );
        const ins = blockInsert(lid, 1, chain.stored, 1);
        await tx.query(ins.sql, ins.params);
        for (const h of [14, 29]) {
          await tx.query(
            `INSERT INTO blockchain_backups (name, filename, backup_data, created_at, created_by, ledger_id, height, head_hash, block_count, size_bytes, kind)
             VALUES (${recordPlaceholders(1).split(', ').slice(0, 11).join(', ')})`,
            // Schema 4 has no chain_root column (migration 0007): the record as that version wrote it.
            recordParams(lid, recordFor(sealer, chain, h)).slice(0, 11),
          );
        }
      });
    } finally {
      await old.close();
      await rm(dir, { recursive: true, force: true });
    }

    const tier = tierFor(tdb.db.url);
    try {
      // Only what came after schema 4 applies (packs, and the later migrations of other features).
      const applied = await tier.migrate();
      expect(applied).toContain('0005_packs.sql');
      expect(applied.filter((n) => n < '0005')).toEqual([]);
      const [head, older] = await tier.listBackups(chain.ledgerId);
      expect((await opened(tier, sealer, head!)).blocks).toEqual(expected(chain));
      await verifyBackup(tier, older!, sealer);
      await tier.putPack(chain.ledgerId, null, packOf(sealer, chain, 0, 19));
      expect(await count('ledger_blocks')).toBe(10);
      const { pages, blocks } = await opened(tier, sealer, head!);
      expect(blocks).toEqual(expected(chain));
      expect(pages.filter((p) => 'pack' in p)).toHaveLength(1);
      await verifyBackup(tier, older!, sealer);
      // Saves go on after the upgrade.
      const more = makeChain(sealer, 2, chain);
      const { record } = await tier.append(
        chain.ledgerId,
        chain.blocks[29]!.hash,
        more.stored.slice(30),
        recordFor(sealer, more, 31),
      );
      expect((await opened(tier, sealer, record!)).blocks).toEqual(expected(more));
    } finally {
      await tier.close();
    }
  });

  it('leaves every block readable when its connection is killed in the middle of putPack, and takes the pack again', async () => {
    const tier = tierFor(tdb.db.url);
    await tier.init();
    const chain = makeChain(sealer, 40);
    const { record } = await tier.append(chain.ledgerId, null, chain.stored, recordFor(sealer, chain, 39));
    // Hold putPack between its writes: SHARE lets it read and insert the pack, and stops its first read row.
    const blocker = connectPostgres(tdb.db.url);
    try {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const holding = blocker.transaction(async (tx) => {
        await tx.query('LOCK TABLE ledger_pack_reads IN SHARE MODE');
        locked();
        await held;
      });
      await isLocked;
      const put = tier.putPack(chain.ledgerId, null, packOf(sealer, chain, 0, 29));
      put.catch(() => {});
      let pid = 0;
      await waitFor(
        'putPack to wait for the lock',
        async () => {
          const rows = await tdb.db.sql<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO ledger_pack_reads%'`,
            [tdb.db.name],
          );
          pid = rows[0]?.pid ?? 0;
          return pid !== 0;
        },
        20_000,
      );
      // By now it has inserted the pack and deleted the loose rows, uncommitted.
      await tdb.db.sql('SELECT pg_terminate_backend($1)', [pid]);
      release();
      await holding;
      await expect(put).rejects.toBeInstanceOf(UnavailableError);
    } finally {
      await blocker.close();
    }
    expect(await count('ledger_packs')).toBe(0);
    expect(await count('ledger_blocks')).toBe(40);
    expect((await opened(tier, sealer, record!)).blocks).toEqual(expected(chain));
    await tier.putPack(chain.ledgerId, null, packOf(sealer, chain, 0, 29));
    expect(await count('ledger_blocks')).toBe(10);
    expect((await opened(tier, sealer, record!)).blocks).toEqual(expected(chain));
    await verifyBackup(tier, record!, sealer);
    await tier.close();
  });

  it('collects the packs and checkpoints no remaining backup reaches, and never a reachable one', async () => {
    const tier = tierFor(tdb.db.url);
    await tier.init();
    try {
      const main = makeChain(sealer, 20);
      const { record: r9 } = await tier.append(
        main.ledgerId,
        null,
        main.stored.slice(0, 10),
        recordFor(sealer, main, 9),
      );
      const { record: r19 } = await tier.append(
        main.ledgerId,
        main.blocks[9]!.hash,
        main.stored.slice(10),
        recordFor(sealer, main, 19),
      );
      await tier.putPack(main.ledgerId, null, packOf(sealer, main, 0, 15));
      // A rollback to block 9, then saves: a fork, compacted into a pack sharing main's first ten blocks.
      const fork = makeChain(
        sealer,
        4,
        { ledgerId: main.ledgerId, blocks: main.blocks.slice(0, 10), stored: main.stored.slice(0, 10) },
        'f',
      );
      const { record: f13 } = await tier.append(
        main.ledgerId,
        main.blocks[9]!.hash,
        fork.stored.slice(10),
        recordFor(sealer, fork, 13),
      );
      await tier.putPack(main.ledgerId, null, packOf(sealer, fork, 0, 12));
      await tier.putCheckpoint(
        main.ledgerId,
        sealCheckpoint(sealer, main.ledgerId, fork.blocks[12]!.hash, stateAt(fork, 12)),
      );
      await tier.putCheckpoint(
        main.ledgerId,
        sealCheckpoint(sealer, main.ledgerId, main.blocks[8]!.hash, stateAt(main, 8)),
      );
      expect(await count('ledger_packs')).toBe(2);
      expect(await tier.checkpointFor(f13!)).toMatchObject({ height: 12 });

      // The fork's backup goes: its pack and checkpoint are freed; main's pack, chain and checkpoint stay.
      expect(await tier.deleteBackups([f13!.id])).toBe(1);
      const freed = await tier.collectGarbage(main.ledgerId);
      expect(freed.blocks).toBe(4);
      expect(freed.bytes).toBeGreaterThan(0);
      expect(await count('ledger_packs')).toBe(1);
      expect(await tdb.db.sql('SELECT DISTINCT height FROM ledger_checkpoints')).toEqual([{ height: '8' }]);
      for (const r of [r9!, r19!]) {
        expect((await opened(tier, sealer, r)).blocks).toEqual(expected(main, 0, r.height));
        await verifyBackup(tier, r, sealer);
      }
      expect(await tier.checkpointFor(r19!)).toMatchObject({ height: 8 });

      // The head's backup goes: main is cut back to block 9, inside its pack, which stays (block 9 is reached).
      await tier.deleteBackups([r19!.id]);
      expect((await tier.collectGarbage(main.ledgerId)).blocks).toBe(10);
      expect(await count('ledger_packs')).toBe(1);
      expect(await count('ledger_blocks')).toBe(0);
      const { pages, blocks } = await opened(tier, sealer, r9!);
      expect(blocks).toEqual(expected(main, 0, 9));
      expect(pages.map((p) => ('pack' in p ? [p.from, p.to] : null))).toEqual([[0, 9]]);
      await verifyBackup(tier, r9!, sealer);
      expect(await tier.hasBlock(main.ledgerId, 12, main.blocks[12]!.hash)).toBe(false);
      // Idempotent.
      expect(await tier.collectGarbage(main.ledgerId)).toEqual({ blocks: 0, bytes: 0 });
    } finally {
      await tier.close();
    }
  });

  it('reads a fork above a pack, and the chain it left, each through the pack', async () => {
    const tier = tierFor(tdb.db.url);
    await tier.init();
    try {
      const main = makeChain(sealer, 16);
      const { record: mainRec } = await tier.append(main.ledgerId, null, main.stored, recordFor(sealer, main, 15));
      await tier.putPack(main.ledgerId, null, packOf(sealer, main, 0, 9));
      const base = { ledgerId: main.ledgerId, blocks: main.blocks.slice(0, 12), stored: main.stored.slice(0, 12) };
      const fork = makeChain(sealer, 3, base, 'f');
      const { record: forkRec } = await tier.append(
        main.ledgerId,
        main.blocks[11]!.hash,
        fork.stored.slice(12),
        recordFor(sealer, fork, 14),
      );
      for (const [r, chain] of [
        [forkRec!, fork],
        [mainRec!, main],
      ] as const) {
        const { pages, blocks } = await opened(tier, sealer, r);
        expect(blocks).toEqual(expected(chain));
        expect(pages.filter((p) => 'pack' in p).map((p) => [p.from, p.to])).toEqual([[0, 9]]);
        await verifyBackup(tier, r, sealer);
      }
      expect(await tier.hashAt(forkRec!, 13)).toBe(fork.blocks[13]!.hash);
      expect(await tier.hashAt(forkRec!, 5)).toBe(main.blocks[5]!.hash);
    } finally {
      await tier.close();
    }
  });

  it('reads on through a compaction that commits in the middle of the read', async () => {
    const tier = tierFor(tdb.db.url);
    await tier.init();
    try {
      const chain = makeChain(sealer, 16);
      const { record } = await tier.append(chain.ledgerId, null, chain.stored, recordFor(sealer, chain, 15));
      await tier.putPack(chain.ledgerId, null, packOf(sealer, chain, 0, 3));
      // The read has planned the pack 0-3 and the loose rows 4-15 when the blocks 4-11 move into a pack.
      const reading = tier.readChainPages(record!)[Symbol.asyncIterator]();
      const first = await reading.next();
      await tier.putPack(chain.ledgerId, chain.blocks[3]!.hash, packOf(sealer, chain, 4, 11));
      const pages = [first.value as ChainPage];
      for (let r = await reading.next(); !r.done; r = await reading.next()) pages.push(r.value);
      expect(pages.map(pageRange)).toEqual([
        { from: 0, to: 3 },
        { from: 4, to: 11 },
        { from: 12, to: 15 },
      ]);
      const bodies = pages.flatMap((p) => {
        const o = openPage(sealer, chain.ledgerId, 'db', p, 'full');
        return o.bodies.map((b) => b.toString('utf8'));
      });
      expect(bodies).toEqual(expected(chain).map((e) => e[2]));
    } finally {
      await tier.close();
    }
  });

  it('forgets the packs of ledgers whose tables were dropped by hand, so a new ledger never reads them', async () => {
    const tier = tierFor(tdb.db.url);
    await tier.init();
    const old = makeChain(sealer, 10);
    await tier.append(old.ledgerId, null, old.stored, recordFor(sealer, old, 9));
    await tier.putPack(old.ledgerId, null, packOf(sealer, old, 0, 7));
    await tier.putCheckpoint(old.ledgerId, sealCheckpoint(sealer, old.ledgerId, old.blocks[8]!.hash, stateAt(old, 8)));
    await tier.close();
    await tdb.db.sql('DROP TABLE blockchain_backups, ipfs_backups, ledger_blocks, ledger_branches, ledgers CASCADE');
    const again = tierFor(tdb.db.url);
    try {
      await again.init();
      expect(await count('ledger_packs')).toBe(0);
      expect(await count('ledger_pack_reads')).toBe(0);
      expect(await count('ledger_checkpoints')).toBe(0);
      // A new ledger takes row id 1 again, and reads only its own blocks.
      const chain = makeChain(sealer, 10);
      const { record } = await again.append(chain.ledgerId, null, chain.stored, recordFor(sealer, chain, 9));
      expect((await opened(again, sealer, record!)).blocks).toEqual(expected(chain));
      expect(await again.checkpointFor(record!)).toBeNull();
    } finally {
      await again.close();
    }
  });

  it('repairs a pack altered in place when it is sent again', async () => {
    const tier = tierFor(tdb.db.url);
    await tier.init();
    try {
      const chain = makeChain(sealer, 12);
      const { record } = await tier.append(chain.ledgerId, null, chain.stored, recordFor(sealer, chain, 11));
      const pack = packOf(sealer, chain, 0, 9);
      await tier.putPack(chain.ledgerId, null, pack);
      // One byte of the pack flipped on disk: its AEAD fails, the backup does not verify.
      await tdb.db.sql('UPDATE ledger_packs SET sealed = set_byte(sealed, 40, get_byte(sealed, 40) # 1)');
      await expect(verifyBackup(tier, record!, sealer)).rejects.toMatchObject({ code: 'INTEGRITY' });
      expect((await tier.putPack(chain.ledgerId, null, pack)).bytesWritten).toBeGreaterThan(0);
      await verifyBackup(tier, record!, sealer);
      // Sent once more unaltered: nothing to write.
      expect((await tier.putPack(chain.ledgerId, null, pack)).bytesWritten).toBe(0);
    } finally {
      await tier.close();
    }
  });

  it('keeps the newest two checkpoints of a chain, and those of another branch', async () => {
    const tier = tierFor(tdb.db.url);
    await tier.init();
    try {
      const chain = makeChain(sealer, 14);
      const { record } = await tier.append(chain.ledgerId, null, chain.stored, recordFor(sealer, chain, 13));
      const fork = makeChain(
        sealer,
        2,
        { ledgerId: chain.ledgerId, blocks: chain.blocks.slice(0, 4), stored: chain.stored.slice(0, 4) },
        'f',
      );
      await tier.append(chain.ledgerId, chain.blocks[3]!.hash, fork.stored.slice(4));
      await tier.putCheckpoint(
        chain.ledgerId,
        sealCheckpoint(sealer, chain.ledgerId, fork.blocks[5]!.hash, stateAt(fork, 5)),
      );
      for (const h of [2, 6, 10, 12])
        await tier.putCheckpoint(
          chain.ledgerId,
          sealCheckpoint(sealer, chain.ledgerId, chain.blocks[h]!.hash, stateAt(chain, h)),
        );
      const heights = await tdb.db.sql<{ height: string }>(
        'SELECT DISTINCT height FROM ledger_checkpoints ORDER BY height',
      );
      expect(heights.map((r) => Number(r.height))).toEqual([5, 10, 12]);
      expect(await tier.checkpointFor(record as BackupRecord)).toMatchObject({ height: 12 });
    } finally {
      await tier.close();
    }
  });
});

describe('a pack the database took in two steps', () => {
  it('reads back as one whole page: the blocks it held loose and the blocks the pack added', async () => {
    const tier = tierFor(tdb.db.url);
    await tier.init();
    try {
      const chain = makeChain(sealer, 12);
      await tier.append(chain.ledgerId, null, chain.stored.slice(0, 7));
      // A catch-up: the pack of blocks 3-11 replaces the loose 3-6 and adds 7-11.
      await tier.putPack(chain.ledgerId, chain.stored[2]!.hash, packOf(sealer, chain, 3, 11));
      const record = await tier.putBackup(recordFor(sealer, chain, 11));
      const { pages, blocks } = await opened(tier, sealer, record);
      expect(blocks).toEqual(expected(chain));
      const packPages = pages.filter((p) => 'pack' in p).map((p) => pageRange(p));
      expect(packPages).toEqual([{ from: 3, to: 11 }]);
    } finally {
      await tier.close();
    }
  });
});
