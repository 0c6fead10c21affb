/**
 * Freshness: how far (blocks) and how long (seconds) each tier's newest backup lags the head, and stale past
 * LEDGER_MAX_LAG_BLOCKS / LEDGER_MAX_LAG_SECONDS; incidentsOf turns a stale tier into an alert's incident.
 */
import { mkdir } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { incidentsOf } from '../../src/service/alerts.js';
import { Ledger } from '../../src/service/ledger.js';
import { databasePerTest, ledgerConfig, propertyInput } from '../support/pg.js';

const tdb = databasePerTest('freshness');

describe('tier freshness', () => {
  it('counts the blocks and seconds a background tier lags, marks it stale past the limits, and level again once caught up', async () => {
    const data = tdb.dataDir();
    const backupDir = `${data}-dir`;
    await mkdir(backupDir, { recursive: true });
    let clock = Date.parse('2026-12-01T00:00:00Z');
    const ledger = await Ledger.open({
      // The folder tier catches up only when asked (a long debounce): it lags every save meanwhile.
      config: ledgerConfig(data, tdb.db.url, {
        LEDGER_BACKUP_DIR: backupDir,
        IPFS_DEBOUNCE_MS: '600000',
        LEDGER_MAX_LAG_BLOCKS: '2',
        LEDGER_MAX_LAG_SECONDS: '30',
      }),
      now: () => new Date(clock),
    });
    try {
      await ledger.backup({ tier: 'dir', name: 'level' });
      const tier = (name: string) => ledger.status().assurance.tiers.find((t) => t.tier === name)!;
      expect(tier('dir')).toMatchObject({ lagBlocks: 0, lagSeconds: 0, stale: false });

      await ledger.register(propertyInput('f-1', 1));
      clock += 10_000;
      await ledger.register(propertyInput('f-2', 2));
      expect(tier('db')).toMatchObject({ lagBlocks: 0, lagSeconds: 0, stale: false });
      expect(tier('dir')).toMatchObject({ lagBlocks: 2, lagSeconds: 10, stale: false });

      clock += 25_000;
      expect(tier('dir')).toMatchObject({ lagBlocks: 2, lagSeconds: 35, stale: true });
      await ledger.register(propertyInput('f-3', 3));
      expect(tier('dir')).toMatchObject({ lagBlocks: 3, stale: true });
      expect(incidentsOf(ledger.status(), 60_000, clock).map((i) => i.key)).toEqual(['tier_stale:dir']);

      await ledger.backup({ tier: 'dir', name: 'caught up' });
      expect(tier('dir')).toMatchObject({ lagBlocks: 0, lagSeconds: 0, stale: false });
      expect(incidentsOf(ledger.status(), 60_000, clock)).toEqual([]);
    } finally {
      await ledger.close();
    }
  });
});
