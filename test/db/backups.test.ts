/**
 * The PostgreSQL tier seen through the Ledger: one automatic backup row per save in the seed's blockchain_backups
 * table, manual backups, listing, restore by id, rollback and roll-forward across branches, dry runs, and a reboot
 * that wipes the local disk (Render) and comes back from the database alone.
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Ledger } from '../../src/service/ledger.js';
import type { Property } from '../../src/ledger/types.js';
import { ledgerConfig, propertyInput, snapshotFiles, type BackupRow, databasePerTest } from '../support/pg.js';

const run = promisify(execFile);

// A ledger opened on an empty data folder restores the database's newest backup: each test gets its own database.
const tdb = databasePerTest('db-backups');

/** Clock is a settable clock for `now`, so backup names and created_at can be asserted exactly. */
function clock(start: string) {
  let t = Date.parse(start);
  return {
    now: () => new Date(t),
    advance: (ms: number) => void (t += ms),
    get ms() {
      return t;
    },
  };
}

function dataDir(): string {
  return tdb.dataDir();
}

/** rowsOf lists one ledger's blockchain_backups rows, oldest first. */
function rowsOf(ledgerId: string): Promise<BackupRow[]> {
  return tdb.db.sql<BackupRow>(
    'SELECT b.* FROM blockchain_backups b JOIN ledgers l ON l.id = b.ledger_id WHERE l.genesis_hash = $1 ORDER BY b.id',
    [ledgerId],
  );
}

async function psql(sql: string): Promise<string[]> {
  const { stdout } = await run('psql', [
    '-h',
    '127.0.0.1',
    '-U',
    'postgres',
    '-d',
    tdb.db.name,
    '-At',
    '-F',
    '|',
    '-c',
    sql,
  ]);
  return stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '');
}

async function saveMany(ledger: Ledger, prefix: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await ledger.register(propertyInput(`${prefix}-${i}`, i));
}

/** view is what a user sees of a running ledger. */
function view(ledger: Ledger): { height: number; headHash: string; properties: Property[] } {
  return { height: ledger.head.index, headHash: ledger.head.hash, properties: ledger.properties() };
}

describe('database backups through the Ledger', () => {
  it('adds exactly one "Auto-backup YYYY-MM-DD HH:MM:SS" row per save to the seed\'s blockchain_backups table', async () => {
    const c = clock('2025-03-04T05:06:07.000Z');
    const ledger = await Ledger.open({ config: ledgerConfig(dataDir(), tdb.db.url), now: c.now });
    try {
      const columns = await psql(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'blockchain_backups'",
      );
      expect(columns).toEqual(
        expect.arrayContaining([
          'id',
          'name',
          'filename',
          'backup_data',
          'created_at',
          'created_by',
          'ledger_id',
          'height',
          'head_hash',
          'block_count',
          'size_bytes',
        ]),
      );
      // Opening a fresh ledger backs up its genesis block.
      let rows = await rowsOf(ledger.ledgerId);
      expect(rows.map((r) => Number(r.height))).toEqual([0]);
      let lastSize = Number(rows[0]!.size_bytes);

      for (let i = 0; i < 5; i++) {
        c.advance(61_001);
        const { block } = await ledger.register(propertyInput(`auto-${i}`, i));
        rows = await rowsOf(ledger.ledgerId);
        expect(rows).toHaveLength(2 + i);
        const row = rows.at(-1)!;
        const stamp = new Date(c.ms).toISOString().slice(0, 19).replace('T', ' ');
        expect(row.name).toBe(`Auto-backup ${stamp}`);
        expect(row.name).toMatch(/^Auto-backup \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
        expect(row.created_at.getTime()).toBe(c.ms);
        expect(row.created_by).toBeNull();
        expect(Number(row.height)).toBe(block.index);
        expect(row.head_hash).toBe(block.hash);
        expect(Number(row.block_count)).toBe(block.index + 1);
        expect(row.filename).not.toBe('');
        expect(row.backup_data).not.toBe('');
        expect(Number(row.size_bytes)).toBeGreaterThan(lastSize);
        lastSize = Number(row.size_bytes);
      }
      // psql sees the same rows (committed, not just visible to pawledger's own connection).
      const names = await psql(
        `SELECT b.name FROM blockchain_backups b JOIN ledgers l ON l.id = b.ledger_id WHERE l.genesis_hash = '${ledger.ledgerId}' ORDER BY b.id`,
      );
      expect(names).toEqual(rows.map((r) => r.name));
      // Each block is stored once, however many records point at it.
      const blocks = await tdb.db.sql<{ n: string }>(
        'SELECT count(*) AS n FROM ledger_blocks b JOIN ledgers l ON l.id = b.ledger_id WHERE l.genesis_hash = $1',
        [ledger.ledgerId],
      );
      expect(Number(blocks[0]!.n)).toBe(6);
    } finally {
      await ledger.close();
    }
  });

  it('makes a named manual backup with created_by = adminId, and lists backups newest first', async () => {
    const ledger = await Ledger.open({ config: ledgerConfig(dataDir(), tdb.db.url) });
    try {
      await saveMany(ledger, 'manual', 3);
      const result = await ledger.backupToDatabase({ name: 'Before the audit', adminId: 1 });
      expect(result).toMatchObject({
        tier: 'db',
        name: 'Before the audit',
        height: ledger.head.index,
        headHash: ledger.head.hash,
      });
      const row = (await rowsOf(ledger.ledgerId)).at(-1)!;
      expect(row).toMatchObject({
        id: result.id,
        name: 'Before the audit',
        created_by: 1,
        head_hash: ledger.head.hash,
      });
      expect(Number(row.height)).toBe(ledger.head.index);

      await ledger.register(propertyInput('manual-after'));
      const list = await ledger.listBackups({ allLedgers: false });
      const ids = list.map((b) => Number(b.id));
      expect(ids).toEqual([...ids].sort((a, b) => b - a));
      expect(list).toHaveLength((await rowsOf(ledger.ledgerId)).length);
      expect(list[0]).toMatchObject({ height: ledger.head.index, headHash: ledger.head.hash, kind: 'auto' });
      expect(list[1]).toMatchObject({ id: result.id, name: 'Before the audit', createdBy: 1, kind: 'manual' });
      expect((await ledger.verifyBackup({ backupId: result.id })).ok).toBe(true);
    } finally {
      await ledger.close();
    }
  });

  it('restores a backup by id after later saves: its height, head and properties', async () => {
    const ledger = await Ledger.open({ config: ledgerConfig(dataDir(), tdb.db.url) });
    try {
      await saveMany(ledger, 'byid', 3);
      const before = view(ledger);
      const backupId = (await rowsOf(ledger.ledgerId)).at(-1)!.id;
      await saveMany(ledger, 'byid-later', 3);
      expect(ledger.properties()).toHaveLength(6);

      const plan = await ledger.restoreFromDatabase({ backupId });
      expect(plan).toMatchObject({
        backupId,
        height: before.height,
        headHash: before.headHash,
        currentHeight: before.height + 3,
        rollback: true,
        dryRun: false,
      });
      expect(view(ledger)).toEqual(before);
      expect(ledger.status()).toMatchObject({ height: before.height, headHash: before.headHash, totalProperties: 3 });
      expect(await ledger.verify()).toMatchObject({ ok: true, headHash: before.headHash });
      await expect(ledger.property('byid-later-0')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    } finally {
      await ledger.close();
    }
  });

  it('rolls back, saves on a new branch, then restores the newer backup and keeps saving on it', async () => {
    const ledger = await Ledger.open({ config: ledgerConfig(dataDir(), tdb.db.url) });
    try {
      await saveMany(ledger, 'old', 2);
      const oldBackup = (await rowsOf(ledger.ledgerId)).at(-1)!.id;
      await saveMany(ledger, 'newer', 3);
      const newer = view(ledger);
      const newerBackup = (await rowsOf(ledger.ledgerId)).at(-1)!.id;

      await ledger.restoreFromDatabase({ backupId: oldBackup });
      expect(ledger.properties().map((p) => p.id)).toEqual(['old-0', 'old-1']);
      await saveMany(ledger, 'branch', 2);
      const branch = view(ledger);
      expect(branch.height).toBe(newer.height - 1);
      expect(branch.properties.map((p) => p.id)).toEqual(['branch-0', 'branch-1', 'old-0', 'old-1']);
      expect(ledger.status().tiers.find((t) => t.name === 'db')).toMatchObject({ state: 'ok', height: branch.height });

      await ledger.restoreFromDatabase({ backupId: newerBackup });
      expect(view(ledger)).toEqual(newer);
      expect(await ledger.verify()).toMatchObject({ ok: true });

      // Saving after the roll-forward continues the newer chain, and the database follows it.
      const { block } = await ledger.register(propertyInput('after-forward'));
      expect(block.index).toBe(newer.height + 1);
      expect(block.previousHash).toBe(newer.headHash);
      expect(ledger.status().tiers.find((t) => t.name === 'db')).toMatchObject({ state: 'ok', height: block.index });
      const report = await ledger.verifyBackup();
      expect(report).toMatchObject({ ok: true, headHash: block.hash, totalBlocks: block.index + 1 });
      // The branch's blocks are still in the database: restoring its backup works too.
      const branchBackup = (await rowsOf(ledger.ledgerId)).find((r) => r.head_hash === branch.headHash)!;
      expect((await ledger.verifyBackup({ backupId: branchBackup.id })).ok).toBe(true);
    } finally {
      await ledger.close();
    }
  });

  it('reports a restore that leaves a branch as a rollback', async () => {
    const ledger = await Ledger.open({ config: ledgerConfig(dataDir(), tdb.db.url) });
    try {
      await saveMany(ledger, 'flag-old', 2);
      const oldBackup = (await rowsOf(ledger.ledgerId)).at(-1)!.id;
      await saveMany(ledger, 'flag-newer', 3);
      const newerBackup = (await rowsOf(ledger.ledgerId)).at(-1)!.id;
      await ledger.restoreFromDatabase({ backupId: oldBackup });
      await saveMany(ledger, 'flag-branch', 1);
      // The running head (on the branch) is not in the newer backup's chain: restoring it discards that block.
      const plan = await ledger.restoreFromDatabase({ backupId: newerBackup, dryRun: true });
      expect(plan.rollback, 'restoring the newer backup drops block flag-branch-0 from the running chain').toBe(true);
    } finally {
      await ledger.close();
    }
  });

  it('restore --dry-run reports the plan and changes nothing', async () => {
    const data = dataDir();
    const ledger = await Ledger.open({ config: ledgerConfig(data, tdb.db.url) });
    try {
      await saveMany(ledger, 'dry', 2);
      const target = (await rowsOf(ledger.ledgerId)).at(-1)!;
      await saveMany(ledger, 'dry-later', 2);
      const before = view(ledger);
      const files = await snapshotFiles(data);
      const rows = await rowsOf(ledger.ledgerId);

      const plan = await ledger.restoreFromDatabase({ backupId: target.id, dryRun: true });
      expect(plan).toMatchObject({
        backupId: target.id,
        name: target.name,
        height: Number(target.height),
        headHash: target.head_hash,
        currentHeight: before.height,
        rollback: true,
        dryRun: true,
      });
      expect(view(ledger)).toEqual(before);
      expect(await snapshotFiles(data)).toEqual(files);
      expect(await rowsOf(ledger.ledgerId)).toEqual(rows);
    } finally {
      await ledger.close();
    }
  });

  it('comes back from the database alone after a reboot that wiped the local data folder', async () => {
    const data = dataDir();
    const first = await Ledger.open({ config: ledgerConfig(data, tdb.db.url) });
    await saveMany(first, 'reboot', 4);
    await first.update('reboot-1', { name: 'Renamed before reboot' });
    const before = view(first);
    await first.close();
    await rm(data, { recursive: true, force: true });

    const second = await Ledger.open({ config: ledgerConfig(data, tdb.db.url) });
    try {
      expect(view(second)).toEqual(before);
      expect(second.ledgerId).toBe(first.ledgerId);
      expect((await second.property('reboot-1')).property.name).toBe('Renamed before reboot');
      expect(await second.verify()).toMatchObject({ ok: true, headHash: before.headHash });
      const { block } = await second.register(propertyInput('after-reboot'));
      expect(block.previousHash).toBe(before.headHash);
    } finally {
      await second.close();
    }
  });

  for (const wipe of [false, true]) {
    it(`keeps a restored (rolled back) head across a restart${wipe ? ' that wiped the local data folder' : ''}`, async () => {
      const data = dataDir();
      const ledger = await Ledger.open({ config: ledgerConfig(data, tdb.db.url) });
      let restored: ReturnType<typeof view>;
      try {
        await saveMany(ledger, `keep-${wipe}`, 2);
        const target = (await rowsOf(ledger.ledgerId)).at(-1)!.id;
        await saveMany(ledger, `keep-${wipe}-later`, 2);
        await ledger.restoreFromDatabase({ backupId: target });
        restored = view(ledger);
      } finally {
        await ledger.close();
      }
      if (wipe) await rm(data, { recursive: true, force: true });
      const again = await Ledger.open({ config: ledgerConfig(data, tdb.db.url) });
      try {
        expect(view(again), 'the restart undid the restore').toEqual(restored);
      } finally {
        await again.close();
      }
    });
  }
});
