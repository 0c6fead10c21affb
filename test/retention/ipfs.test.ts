/**
 * Retention on the IPFS tier through the Ledger (records in the real server's ipfs_backups), on the embedded
 * blockstore and the Pinata stand-in: keep-last leaves exactly the newest manifests, each of which restores and
 * verifies, while the removed manifests and the packs only they named are unpinned; a save during a prune loses
 * nothing; pruning every tier at once.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Ledger } from '../../src/service/ledger.js';
import { createTempDatabase, ledgerConfig, propertyInput, tempDir, type TempDatabase } from '../support/pg.js';
import { startPinataStandin, type PinataStandin } from '../support/standins/pinata.js';

const JWT = 'retention-ipfs-jwt';
let pinata: PinataStandin;
let db: TempDatabase;
let dir: string;
let cleanup: () => Promise<void>;
let seq = 0;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('retention-ipfs'));
  pinata = await startPinataStandin({ jwt: JWT });
});
afterAll(async () => {
  await pinata?.close();
  await cleanup?.();
});
// A ledger opened on an empty data folder restores the database's newest backup: each test gets its own database.
beforeEach(async () => {
  db = await createTempDatabase();
});
afterEach(async () => {
  await db?.drop();
});

type Provider = 'embedded' | 'pinata';

function config(provider: Provider, dataDir = join(dir, `data-${seq++}`)) {
  const ipfs =
    provider === 'embedded'
      ? { IPFS_PROVIDER: 'embedded', IPFS_EMBEDDED_DIR: join(dir, `ipfs-${seq++}`) }
      : { IPFS_PROVIDER: 'pinata', PINATA_JWT: JWT, PINATA_API_URL: pinata.url, PINATA_GATEWAY_URL: pinata.gatewayUrl };
  return ledgerConfig(dataDir, db.url, { ...ipfs, IPFS_DEBOUNCE_MS: '10' });
}

/** rounds saves and backs up to IPFS by name n times: each round makes an automatic manifest and a named one. */
async function rounds(ledger: Ledger, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    await ledger.register(propertyInput(`${tag}${i}`, i));
    await ledger.backupToIpfs({ name: `${tag} ${i}` });
  }
}

const ipfsBackups = (ledger: Ledger) => ledger.listBackups({ tier: 'ipfs', allLedgers: false, limit: 1000 });

describe.each(['embedded', 'pinata'] as const)('pruning the IPFS tier (%s)', (provider) => {
  it('keep-last leaves exactly the newest manifests, each restorable; the rest and their own packs are unpinned', async () => {
    const ledger = await Ledger.open({ config: config(provider) });
    try {
      await rounds(ledger, 4, 'k');
      const before = await ipfsBackups(ledger);
      expect(before.length).toBeGreaterThanOrEqual(8);
      const report = await ledger.pruneBackups({ keepLast: 2 }, { tier: 'ipfs' });
      const [t] = report.tiers;
      expect(t!.newestValid).toBe(before[0]!.id);
      expect(t!.keep.map((k) => k.id)).toEqual(before.slice(0, 2).map((r) => r.id));
      expect(t!.removed).toBe(before.length - 2);
      // Every removed manifest, and the packs that only removed manifests named (merges leave some behind).
      expect(t!.collected.blocks).toBeGreaterThan(t!.removed);
      expect((await ipfsBackups(ledger)).map((r) => r.id)).toEqual(t!.keep.map((k) => k.id));
      for (const k of t!.keep)
        expect(await ledger.verifyBackup({ tier: 'ipfs', backupId: k.id })).toMatchObject({ ok: true });
      for (const r of t!.remove)
        await expect(ledger.verifyBackup({ tier: 'ipfs', backupId: r.id })).rejects.toMatchObject({
          code: 'NOT_FOUND',
        });
      if (provider === 'pinata') {
        for (const r of t!.remove) expect(pinata.pins.get(r.id)?.dateUnpinned).not.toBeNull();
        for (const k of t!.keep) expect(pinata.pins.get(k.id)?.dateUnpinned).toBeNull();
      }
      // The older kept backup restores (a rollback), then the newest.
      await ledger.restoreFromIpfs(t!.keep[1]!.id);
      expect(ledger.head.index).toBe(t!.keep[1]!.height);
      await ledger.restoreFromIpfs(t!.keep[0]!.id);
      expect(ledger.properties()).toHaveLength(4);
      // Nothing left to collect; uploads go on after it.
      expect((await ledger.pruneBackups({ keepLast: 2 }, { tier: 'ipfs' })).tiers[0]).toMatchObject({
        removed: 0,
        collected: { blocks: 0, bytes: 0 },
      });
      await ledger.register(propertyInput('after', 9));
      const cid = await ledger.backupToIpfs({ name: 'after' });
      expect(await ledger.verifyBackup({ tier: 'ipfs', backupId: cid })).toMatchObject({ ok: true, totalBlocks: 6 });
    } finally {
      await ledger.close();
    }
  });

  it('a save during the prune loses nothing: the next manifest holds every save and restores on a new machine', async () => {
    const cfg = config(provider);
    const ledger = await Ledger.open({ config: cfg });
    let fresh: Ledger | undefined;
    try {
      await rounds(ledger, 5, 's');
      const saves = Array.from({ length: 10 }, (_, i) =>
        new Promise((r) => setTimeout(r, i * 5)).then(() => ledger.register(propertyInput(`during${i}`, i))),
      );
      const [report] = await Promise.all([ledger.pruneBackups({ keepLast: 1 }, { tier: 'ipfs' }), ...saves]);
      expect(report.tiers[0]!.removed).toBeGreaterThan(0);
      const cid = await ledger.backupToIpfs({ name: 'after the prune' });
      for (const r of await ipfsBackups(ledger))
        expect(await ledger.verifyBackup({ tier: 'ipfs', backupId: r.id })).toMatchObject({ ok: true });
      // A new machine without the database: beside the embedded blockstore, its own pointer file names the newest
      // manifest and startup walks back from it (the walk ends where pruning cut it); with Pinata, the CID restores.
      fresh = await Ledger.open({ config: { ...cfg, dataDir: join(dir, `data-${seq++}`), database: { kind: 'off' } } });
      if (provider === 'embedded') expect(fresh.head.hash).toBe(ledger.head.hash);
      await fresh.restoreFromIpfs(cid);
      expect(fresh.head.hash).toBe(ledger.head.hash);
      expect(fresh.properties()).toHaveLength(15);
    } finally {
      await fresh?.close();
      await ledger.close();
    }
  });
});

describe('pruning every tier', () => {
  it('applies the policy to the database and IPFS, each keeping its newest valid backup', async () => {
    const ledger = await Ledger.open({ config: config('embedded') });
    try {
      await rounds(ledger, 3, 'a');
      const dry = await ledger.pruneBackups('keep-last=1', { dryRun: true });
      expect(dry.tiers.map((t) => [t.tier, t.removed, t.keep.length])).toEqual([
        ['db', 0, 1],
        ['ipfs', 0, 1],
      ]);
      const report = await ledger.pruneBackups('keep-last=1');
      expect(report.tiers.map((t) => t.tier)).toEqual(['db', 'ipfs']);
      for (const t of report.tiers) {
        expect(t.error).toBeUndefined();
        expect(t.removed).toBe(dry.tiers.find((d) => d.tier === t.tier)!.remove.length);
        expect(await ledger.listBackups({ tier: t.tier, allLedgers: false })).toHaveLength(1);
        expect(await ledger.verifyBackup({ tier: t.tier })).toMatchObject({ ok: true, headHash: ledger.head.hash });
      }
    } finally {
      await ledger.close();
    }
  });
});
