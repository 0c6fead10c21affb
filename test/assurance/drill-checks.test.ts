/**
 * What a restore drill checks besides "the backup restores": that the tier still holds the newest backup this process
 * gave it (backups removed or rolled back behind its back are lost backups, even if what is left restores), that the
 * newest backup lies on the running chain, and that the tier's checkpoint holds the world state replayed from block 0.
 * Each is a failed drill with a reason naming the problem, kept where drills are kept.
 */
import { cp, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Config, loadConfig } from '../../src/config.js';
import { sealCheckpoint } from '../../src/crypto/checkpoints.js';
import { parseKey } from '../../src/crypto/key.js';
import { Sealer } from '../../src/crypto/seal.js';
import { latestBackup, verifyBackup } from '../../src/engine/restore.js';
import { type StateEntry, WorldState } from '../../src/ledger/state.js';
import { silentLogger } from '../../src/log.js';
import { Ledger } from '../../src/service/ledger.js';
import { openTiers } from '../../src/tiers/registry.js';
import { databasePerTest, ledgerConfig, propertyInput, TEST_KEY, tempDir, waitFor } from '../support/pg.js';

const tdb = databasePerTest('drill-checks');

// A ledger whose only other tier is a backup folder.
function folderConfig(dataDir: string, backupDir: string): Config {
  return loadConfig({
    LEDGER_DATA_DIR: dataDir,
    LEDGER_ENCRYPTION_KEY: TEST_KEY,
    LEDGER_DB: 'off',
    LEDGER_BACKUP_DIR: backupDir,
    IPFS_DEBOUNCE_MS: '0',
    LEDGER_RETRY_MS: '100',
  });
}

// Saves one property and waits until the folder holds the new head (so each save is a backup of its own).
async function saveToFolder(ledger: Ledger, id: string, n: number): Promise<void> {
  await ledger.register(propertyInput(id, n));
  await waitFor('the folder to hold the head', () => {
    const t = ledger.status().tiers.find((x) => x.name === 'dir')!;
    return t.state === 'ok' && t.height === ledger.head.index;
  });
}

async function keptDrills(dataDir: string): Promise<{ outcome: string; reason: string | null }[]> {
  return JSON.parse(await readFile(join(dataDir, 'drills.json'), 'utf8')) as { outcome: string; reason: string }[];
}

describe('a restore drill of a backup folder', () => {
  it('fails when the newest backup was removed behind its back, though an older one still restores', async () => {
    const { dir, cleanup } = await tempDir('drill-lost');
    const dataDir = join(dir, 'data');
    const backupDir = join(dir, 'backups');
    await mkdir(backupDir, { mode: 0o700 });
    const ledger = await Ledger.open({ config: folderConfig(dataDir, backupDir) });
    try {
      for (let i = 0; i < 4; i++) await saveToFolder(ledger, `l-${i}`, i);
      expect(await ledger.drill({ tier: 'dir' })).toMatchObject({ ok: true, drills: [{ outcome: 'ok', height: 4 }] });

      // The newest manifest goes; the older ones, and every pack, stay.
      const manifests = join(backupDir, 'ledgers', ledger.ledgerId, 'manifests');
      const names = (await readdir(manifests)).sort();
      expect(names.length).toBeGreaterThan(1);
      await rm(join(manifests, names.at(-1)!));

      const report = await ledger.drill({ tier: 'dir' });
      expect(report.ok).toBe(false);
      expect(report.drills[0]).toMatchObject({ tier: 'dir', outcome: 'failed', height: 3 });
      expect(report.drills[0]!.reason).toMatch(
        /newest backup in .* is at block 3, but it took backup .* at block 4: backups were lost/,
      );

      const kept = await keptDrills(dataDir);
      expect(kept.map((r) => r.outcome)).toEqual(['failed', 'ok']);
      expect(kept[0]!.reason).toMatch(/backups were lost/);
      // The live ledger is whole.
      expect(await ledger.verify()).toMatchObject({ ok: true });
    } finally {
      await ledger.close();
      await cleanup();
    }
  });

  it('fails when the newest backup is of another chain of the same ledger, not the running one', async () => {
    const { dir, cleanup } = await tempDir('drill-fork');
    const dataA = join(dir, 'a');
    const backupA = join(dir, 'backups-a');
    const dataB = join(dir, 'b');
    const backupB = join(dir, 'backups-b');
    await mkdir(backupA, { mode: 0o700 });
    let a = await Ledger.open({ config: folderConfig(dataA, backupA) });
    for (let i = 0; i < 3; i++) await saveToFolder(a, `f-${i}`, i);
    await a.close();
    // A copy of the ledger, and of its folder, that goes its own way from block 3.
    await cp(dataA, dataB, { recursive: true });
    await cp(backupA, backupB, { recursive: true });
    a = await Ledger.open({ config: folderConfig(dataA, backupA) });
    try {
      await saveToFolder(a, 'a-only', 7);
      const b = await Ledger.open({ config: folderConfig(dataB, backupB) });
      try {
        await saveToFolder(b, 'b-only', 8);
        await saveToFolder(b, 'b-too', 9);
        expect(b.ledgerId).toBe(a.ledgerId);
      } finally {
        await b.close();
      }
      // The copy's backups land in this ledger's folder: its newest backup (block 5) is newer than the one this
      // process gave it (block 4), restores and verifies, but it is not this ledger's chain.
      await cp(backupB, backupA, { recursive: true, force: true });

      const report = await a.drill({ tier: 'dir' });
      expect(report.ok).toBe(false);
      expect(report.drills[0]).toMatchObject({ tier: 'dir', outcome: 'failed', height: 5 });
      expect(report.drills[0]!.reason).toMatch(/backup .* \(block 5\) is not on the running chain/);
      const kept = await keptDrills(dataA);
      expect(kept[0]).toMatchObject({ outcome: 'failed', reason: report.drills[0]!.reason });
    } finally {
      await a.close();
      await cleanup();
    }
  });
});

describe('a restore drill of the database tier', () => {
  it('fails when its newest backups were rolled back behind its back, and records why in pawledger_drills', async () => {
    const ledger = await Ledger.open({ config: ledgerConfig(tdb.dataDir(), tdb.db.url) });
    try {
      for (let i = 0; i < 5; i++) await ledger.register(propertyInput(`r-${i}`, i));
      expect(await ledger.drill({ tier: 'db' })).toMatchObject({ ok: true, drills: [{ outcome: 'ok', height: 5 }] });

      // The two newest backup records go, as a restore of an older database snapshot would leave it.
      await tdb.db.sql(
        'DELETE FROM blockchain_backups WHERE id IN (SELECT id FROM blockchain_backups ORDER BY id DESC LIMIT 2)',
      );
      const report = await ledger.drill({ tier: 'db' });
      expect(report.ok).toBe(false);
      expect(report.drills[0]).toMatchObject({ tier: 'db', outcome: 'failed', height: 3 });
      expect(report.drills[0]!.reason).toMatch(/is at block 3, but it took backup .* at block 5: backups were lost/);

      const rows = await tdb.db.sql<{ outcome: string; reason: string | null }>(
        'SELECT outcome, reason FROM pawledger_drills ORDER BY id DESC',
      );
      expect(rows.map((r) => r.outcome)).toEqual(['failed', 'ok']);
      expect(rows[0]!.reason).toMatch(/backups were lost/);
    } finally {
      await ledger.close();
    }
  });

  it("fails when the tier's checkpoint holds a world state other than the replayed one, at the head and below it", async () => {
    const config = ledgerConfig(tdb.dataDir(), tdb.db.url);
    const ledger = await Ledger.open({ config });
    const sealer = new Sealer(parseKey(TEST_KEY));
    const opened = openTiers(config, { sealer, log: silentLogger(), only: 'db' });
    try {
      for (let i = 0; i < 4; i++) await ledger.register(propertyInput(`dog-${i}`, i));
      expect(await ledger.drill({ tier: 'db' })).toMatchObject({ ok: true });

      // A checkpoint of the head whose state has one owner changed, sealed with the key: what a bug would leave.
      const { tier } = opened.entries[0]!;
      await tier.init();
      const record = (await latestBackup(tier, null))!;
      const chain = await verifyBackup(tier, record, sealer);
      const snap = chain.state.snapshot();
      const entries: StateEntry[] = [];
      for (const e of snap.entries())
        entries.push(e.id === 'dog-1' ? { ...e, json: e.json.replace(/"owner":"[^"]*"/, '"owner":"mallory"') } : e);
      snap.release();
      const forged = WorldState.restore(record.height, entries);
      await tier.putCheckpoint!(record.ledgerId, sealCheckpoint(sealer, record.ledgerId, record.headHash, forged));

      const wrong = /the checkpoint at block 4 in .* records a world state .* other than the one replayed from block 0/;
      const atHead = await ledger.drill({ tier: 'db' });
      expect(atHead.drills[0]).toMatchObject({ outcome: 'failed', height: 4 });
      expect(atHead.drills[0]!.reason).toMatch(wrong);

      // Newer backups do not hide it: the drill replays again up to the checkpoint's block.
      await ledger.register(propertyInput('later', 9));
      const below = await ledger.drill({ tier: 'db' });
      expect(below.drills[0]).toMatchObject({ outcome: 'failed', height: 5 });
      expect(below.drills[0]!.reason).toMatch(wrong);

      const rows = await tdb.db.sql<{ outcome: string; reason: string | null }>(
        'SELECT outcome, reason FROM pawledger_drills ORDER BY id DESC LIMIT 1',
      );
      expect(rows[0]).toMatchObject({ outcome: 'failed', reason: below.drills[0]!.reason });
    } finally {
      await opened.close();
      await ledger.close();
    }
  });
});
