/**
 * Restore drills catch backups that would not restore while everything else looks fine: a byte changed in a stored
 * block in the database, and an IPFS store whose content was emptied while it still answers (the catalog still names
 * the newest manifest). The drill says so, names the cause, records it, and never touches the live ledger.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { Ledger } from '../../src/service/ledger.js';
import {
  databasePerTest,
  ledgerConfig,
  propertyInput,
  snapshotFiles,
  TEST_KEY,
  tempDir,
  waitFor,
} from '../support/pg.js';

const tdb = databasePerTest('drill');

describe('a restore drill of the database tier', () => {
  it('passes on intact backups, then catches a byte changed in a stored block and records both', async () => {
    const data = tdb.dataDir();
    const ledger = await Ledger.open({ config: ledgerConfig(data, tdb.db.url) });
    try {
      for (let i = 0; i < 6; i++) await ledger.register(propertyInput(`d-${i}`, i));
      const files = await snapshotFiles(data);
      const good = await ledger.drill({ tier: 'db' });
      // The live store is untouched.
      expect(await snapshotFiles(data)).toEqual(files);
      expect(good.ok).toBe(true);
      expect(good.drills).toMatchObject([{ tier: 'db', outcome: 'ok', height: 6, reason: null }]);

      await tdb.db.sql(
        'UPDATE ledger_blocks SET sealed = set_byte(sealed, length(sealed) / 2, get_byte(sealed, length(sealed) / 2) # 255) WHERE height = 3',
      );
      const bad = await ledger.drill();
      expect(bad.ok).toBe(false);
      expect(bad.drills[0]).toMatchObject({ tier: 'db', outcome: 'failed', height: 6 });
      expect(bad.drills[0]!.reason).toMatch(/\bblock 3\b/);

      // Kept in the database, newest first, and shown in status.
      const rows = await tdb.db.sql<{ outcome: string; tier: string }>(
        'SELECT tier, outcome FROM pawledger_drills ORDER BY id DESC',
      );
      expect(rows).toEqual([
        { tier: 'db', outcome: 'failed' },
        { tier: 'db', outcome: 'ok' },
      ]);
      const db = ledger.status().assurance.tiers.find((t) => t.tier === 'db')!;
      expect(db.lastDrill).toMatchObject({ outcome: 'failed' });

      // The live ledger never moved: it verifies and takes saves.
      expect(await ledger.verify()).toMatchObject({ ok: true });
      await ledger.register(propertyInput('after', 9));
      expect(ledger.head.index).toBe(7);
    } finally {
      await ledger.close();
    }
  });

  it('keeps only the newest LEDGER_DRILL_KEEP records', async () => {
    const ledger = await Ledger.open({
      config: ledgerConfig(tdb.dataDir(), tdb.db.url, { LEDGER_DRILL_KEEP: '2' }),
    });
    try {
      await ledger.register(propertyInput('k', 1));
      for (let i = 0; i < 4; i++) await ledger.drill();
      const rows = await tdb.db.sql('SELECT id FROM pawledger_drills');
      expect(rows).toHaveLength(2);
    } finally {
      await ledger.close();
    }
  });
});

describe('a restore drill of an IPFS store emptied while it still answers', () => {
  it('fails, naming what is missing, and without a database keeps its verdicts in drills.json', async () => {
    const { dir, cleanup } = await tempDir('drill-ipfs');
    const ipfsDir = join(dir, 'ipfs');
    const dataDir = join(dir, 'data');
    const config = loadConfig({
      LEDGER_DATA_DIR: dataDir,
      LEDGER_ENCRYPTION_KEY: TEST_KEY,
      LEDGER_DB: 'off',
      IPFS_PROVIDER: 'embedded',
      IPFS_EMBEDDED_DIR: ipfsDir,
      IPFS_DEBOUNCE_MS: '0',
      LEDGER_RETRY_MS: '100',
    });
    const ledger = await Ledger.open({ config });
    try {
      for (let i = 0; i < 5; i++) await ledger.register(propertyInput(`i-${i}`, i));
      await waitFor('IPFS to hold the head', () => {
        const t = ledger.status().tiers.find((x) => x.name === 'ipfs')!;
        return t.state === 'ok' && t.height === ledger.head.index;
      });
      expect(await ledger.drill({ tier: 'ipfs' })).toMatchObject({ ok: true, drills: [{ outcome: 'ok', height: 5 }] });

      // Every stored block goes; the store, its pins and the catalog's pointer stay and answer.
      for (const shard of await readdir(join(ipfsDir, 'blocks')))
        await rm(join(ipfsDir, 'blocks', shard), { recursive: true, force: true });
      const report = await ledger.drill({ tier: 'ipfs' });
      expect(report.ok).toBe(false);
      expect(report.drills[0]).toMatchObject({ tier: 'ipfs', outcome: 'failed' });
      expect(report.drills[0]!.reason).toMatch(/is pinned .* but its root block is missing/);

      const kept = JSON.parse(await readFile(join(dataDir, 'drills.json'), 'utf8')) as { outcome: string }[];
      expect(kept.map((r) => r.outcome)).toEqual(['failed', 'ok']);
      expect(await ledger.verify()).toMatchObject({ ok: true });
    } finally {
      await ledger.close();
      await cleanup();
    }
  });
});
