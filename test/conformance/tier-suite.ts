import { readChain } from '../support/chain-pages.js';
import { describePacks } from './pack-suite.js';
import { beforeEach, describe, expect, it } from 'vitest';
import { verifyBackup } from '../../src/engine/restore.js';
import { checkRecord } from '../../src/crypto/records.js';
import type { Sealer } from '../../src/crypto/seal.js';
import type { BackupTier } from '../../src/tiers/tier.js';
import { collect, makeChain, recordFor, testSealer } from '../support/chain.js';

/** TierFactory makes a fresh tier; reopen makes a new tier object over the same storage. */
export interface TierFactory {
  create(): Promise<BackupTier>;
  reopen(tier: BackupTier): Promise<BackupTier>;
  /** branches is true for tiers that keep every branch of every ledger (PostgreSQL); the local store keeps one chain. */
  branches: boolean;
  /** sealer seals the test chains; a tier that seals its own objects (IPFS) must be built with the same one. */
  sealer?: Sealer;
  /**
   * retention false is a configuration that cannot delete or protect records (IPFS without the database, which is
   * where its records live): both are refused with ConfigError and nothing changes. @default true
   */
  retention?: boolean;
}

/**
 * describeTier runs the contract every backup tier must meet (src/tiers/tier.ts), against real storage. Each case
 * works on a ledger of its own, so tiers that share a database between cases still start each case empty.
 */
export function describeTier(name: string, factory: TierFactory): void {
  const sealer = factory.sealer ?? testSealer();
  describePacks(name, { ...factory, sealer });
  describe(`tier contract: ${name}`, () => {
    let tier: BackupTier;
    beforeEach(async () => {
      tier = await factory.create();
      await tier.init();
      return () => tier.close();
    });

    const bytes = (blocks: { height: number; hash: string; sealed: Buffer }[]) =>
      blocks.map((b) => [b.height, b.hash, b.sealed.toString('base64')]);

    it('starts empty for a new ledger: no backups, no blocks, unknown ids are NotFound', async () => {
      const chain = makeChain(sealer, 1);
      expect(await tier.listBackups(chain.ledgerId)).toEqual([]);
      expect(await tier.hasBlock(chain.ledgerId, 0, chain.ledgerId)).toBe(false);
      await expect(tier.getBackup('987654321')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(tier.getBackup('not-an-id')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it('stores a chain with its record and reads back the same sealed bytes', async () => {
      const chain = makeChain(sealer, 5);
      const { record } = await tier.append(chain.ledgerId, null, chain.stored, recordFor(sealer, chain, 4));
      expect(record).toMatchObject({
        ledgerId: chain.ledgerId,
        height: 4,
        headHash: chain.blocks[4]!.hash,
        tier: tier.name,
      });
      expect(bytes(await collect(readChain(tier, record!)))).toEqual(bytes(chain.stored));
      const got = await tier.getBackup(record!.id);
      expect(got).toMatchObject({ id: record!.id, name: 'backup at 4', height: 4, createdBy: 1 });
      checkRecord(sealer, got);
      expect(await tier.hasBlock(chain.ledgerId, 4, chain.blocks[4]!.hash)).toBe(true);
    });

    it('is idempotent: appending blocks it holds again changes nothing', async () => {
      const chain = makeChain(sealer, 4);
      await tier.append(chain.ledgerId, null, chain.stored.slice(0, 3));
      await tier.append(chain.ledgerId, null, chain.stored);
      const { record } = await tier.append(
        chain.ledgerId,
        chain.blocks[2]!.hash,
        chain.stored.slice(3),
        recordFor(sealer, chain, 3),
      );
      expect(bytes(await collect(readChain(tier, record!)))).toEqual(bytes(chain.stored));
    });

    it('refuses blocks whose parent it lacks, and a record for a block it lacks', async () => {
      const chain = makeChain(sealer, 6);
      await tier.append(chain.ledgerId, null, chain.stored.slice(0, 2));
      await expect(tier.append(chain.ledgerId, chain.blocks[3]!.hash, chain.stored.slice(4))).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      await expect(tier.putBackup(recordFor(sealer, chain, 5))).rejects.toMatchObject({ code: 'NOT_FOUND' });
      // A tier may record its own automatic backups of what it holds (IPFS writes a manifest per upload), never one
      // for a block it lacks.
      expect((await tier.listBackups(chain.ledgerId)).filter((r) => r.height > 1)).toEqual([]);
    });

    it(`lists newest first, honours the limit, ${factory.branches ? 'keeps ledgers apart' : 'refuses a second ledger'}`, async () => {
      const a = makeChain(sealer, 3, undefined, 'a');
      const b = makeChain(sealer, 2, undefined, 'b');
      await tier.append(a.ledgerId, null, a.stored, recordFor(sealer, a, 1, 'a1'));
      await tier.putBackup(recordFor(sealer, a, 2, 'a2'));
      const named = (list: { name: string }[]) => list.map((r) => r.name).filter((x) => !x.startsWith('Auto-backup'));
      expect(named(await tier.listBackups(a.ledgerId))).toEqual(['a2', 'a1']);
      expect((await tier.listBackups(a.ledgerId, { limit: 1 })).map((r) => r.name)).toEqual(['a2']);
      const other = tier.append(b.ledgerId, null, b.stored, recordFor(sealer, b, 1, 'b1'));
      if (!factory.branches) {
        await expect(other).rejects.toMatchObject({ code: 'CONFLICT' });
        return;
      }
      await other;
      expect(named(await tier.listBackups(b.ledgerId))).toEqual(['b1']);
      expect(named(await tier.listBackups(a.ledgerId))).toEqual(['a2', 'a1']);
    });

    it('reads an older backup as the prefix it pointed to, after later appends', async () => {
      const chain = makeChain(sealer, 8);
      const { record: early } = await tier.append(
        chain.ledgerId,
        null,
        chain.stored.slice(0, 3),
        recordFor(sealer, chain, 2),
      );
      await tier.append(chain.ledgerId, chain.blocks[2]!.hash, chain.stored.slice(3), recordFor(sealer, chain, 7));
      expect(bytes(await collect(readChain(tier, early!)))).toEqual(bytes(chain.stored.slice(0, 3)));
    });

    it('keeps what it stored across a reopen', async () => {
      const chain = makeChain(sealer, 3);
      const { record } = await tier.append(chain.ledgerId, null, chain.stored, recordFor(sealer, chain, 2));
      await tier.close();
      tier = await factory.reopen(tier);
      await tier.init();
      const again = await tier.getBackup(record!.id);
      expect(bytes(await collect(readChain(tier, again)))).toEqual(bytes(chain.stored));
    });

    describe('retention', () => {
      const named = (list: { name: string }[]) => list.map((r) => r.name).filter((x) => !x.startsWith('Auto-backup'));

      async function threeRecords() {
        const chain = makeChain(sealer, 6);
        const { record: r5 } = await tier.append(chain.ledgerId, null, chain.stored, recordFor(sealer, chain, 5, 'r5'));
        const r2 = await tier.putBackup(recordFor(sealer, chain, 2, 'r2'));
        const r3 = await tier.putBackup(recordFor(sealer, chain, 3, 'r3'));
        return { chain, r5: r5!, r2, r3 };
      }

      if (factory.retention === false) {
        it('refuses to delete or protect records with ConfigError, and changes nothing', async () => {
          const { chain, r2 } = await threeRecords();
          await expect(tier.deleteBackups([r2.id])).rejects.toMatchObject({ code: 'CONFIG' });
          await expect(tier.setProtected(r2.id, true)).rejects.toMatchObject({ code: 'CONFIG' });
          expect(named(await tier.listBackups(chain.ledgerId))).toEqual(['r3', 'r2', 'r5']);
          expect(await tier.collectGarbage(chain.ledgerId)).toEqual({ blocks: 0, bytes: 0 });
        });
        return;
      }

      it('deletes records only: the rest list and read back; unknown ids are ignored', async () => {
        const { chain, r5, r2, r3 } = await threeRecords();
        expect(await tier.deleteBackups([r3.id, '987654321', 'not-an-id'])).toBe(1);
        expect(named(await tier.listBackups(chain.ledgerId))).toEqual(['r2', 'r5']);
        expect(await tier.deleteBackups([r3.id])).toBe(0);
        expect(bytes(await collect(readChain(tier, r5)))).toEqual(bytes(chain.stored));
        expect(bytes(await collect(readChain(tier, r2)))).toEqual(bytes(chain.stored.slice(0, 3)));
        expect(await tier.deleteBackups([])).toBe(0);
      });

      it('never deletes a protected record; the flag survives a reopen; unknown ids are NotFound', async () => {
        const { chain, r2 } = await threeRecords();
        await tier.setProtected(r2.id, true);
        await tier.close();
        tier = await factory.reopen(tier);
        await tier.init();
        const flag = async () => (await tier.listBackups(chain.ledgerId)).find((r) => r.id === r2.id)?.protected;
        expect(await flag()).toBe(true);
        expect(await tier.deleteBackups([r2.id])).toBe(0);
        await tier.setProtected(r2.id, false);
        expect(await flag()).toBe(false);
        expect(await tier.deleteBackups([r2.id])).toBe(1);
        await expect(tier.setProtected(r2.id, true)).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(tier.setProtected('987654321', true)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      });

      it('collects garbage without touching a kept record: each reads back byte-identical and verifies', async () => {
        const main = makeChain(sealer, 8);
        const { record: m3 } = await tier.append(
          main.ledgerId,
          null,
          main.stored.slice(0, 4),
          recordFor(sealer, main, 3, 'm3'),
        );
        const { record: m7 } = await tier.append(
          main.ledgerId,
          main.blocks[3]!.hash,
          main.stored.slice(4),
          recordFor(sealer, main, 7, 'm7'),
        );
        const kept = [m3!];
        let gone = m7!;
        if (factory.branches) {
          // A rollback to block 3 and saves after it: the main tail (4..7) is left to its record m7 alone.
          const fork = makeChain(
            sealer,
            3,
            { ledgerId: main.ledgerId, blocks: main.blocks.slice(0, 4), stored: main.stored.slice(0, 4) },
            'f',
          );
          const { record: f6 } = await tier.append(
            main.ledgerId,
            main.blocks[3]!.hash,
            fork.stored.slice(4),
            recordFor(sealer, fork, 6, 'f6'),
          );
          kept.push(f6!);
        } else {
          kept.splice(0, 1, m7!);
          gone = m3!;
        }
        const before = new Map<string, unknown>();
        for (const r of kept) before.set(r.id, bytes(await collect(readChain(tier, r))));
        expect(await tier.deleteBackups([gone.id])).toBe(1);
        const freed = await tier.collectGarbage(main.ledgerId);
        if (factory.branches) expect(freed.blocks).toBeGreaterThan(0);
        else expect(freed).toEqual({ blocks: 0, bytes: 0 });
        for (const r of kept) {
          const again = await tier.getBackup(r.id);
          expect(bytes(await collect(readChain(tier, again)))).toEqual(before.get(r.id));
          await verifyBackup(tier, again, sealer);
        }
        expect(await tier.collectGarbage(main.ledgerId)).toEqual({ blocks: 0, bytes: 0 });
        if (factory.branches) {
          await expect(tier.getBackup(gone.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
          // Saves go on after a collection, on either surviving line.
          const after = makeChain(
            sealer,
            2,
            { ledgerId: main.ledgerId, blocks: main.blocks.slice(0, 4), stored: main.stored.slice(0, 4) },
            'h',
          );
          const { record: h5 } = await tier.append(
            main.ledgerId,
            main.blocks[3]!.hash,
            after.stored.slice(4),
            recordFor(sealer, after, 5, 'h5'),
          );
          expect(bytes(await collect(readChain(tier, h5!)))).toEqual(bytes(after.stored));
          await verifyBackup(tier, h5!, sealer);
        }
      });
    });

    it(
      factory.branches
        ? 'keeps both branches of a fork, each readable from its own record'
        : 'refuses a fork with ConflictError and keeps its chain',
      async () => {
        const main = makeChain(sealer, 6);
        const fork = makeChain(
          sealer,
          3,
          { ledgerId: main.ledgerId, blocks: main.blocks.slice(0, 3), stored: main.stored.slice(0, 3) },
          'f',
        );
        const { record: mainRec } = await tier.append(main.ledgerId, null, main.stored, recordFor(sealer, main, 5));
        const attempt = tier.append(
          main.ledgerId,
          main.blocks[2]!.hash,
          fork.stored.slice(3),
          recordFor(sealer, fork, 5),
        );
        if (!factory.branches) {
          await expect(attempt).rejects.toMatchObject({ code: 'CONFLICT' });
          expect(bytes(await collect(readChain(tier, mainRec!)))).toEqual(bytes(main.stored));
          return;
        }
        const { record: forkRec } = await attempt;
        expect(bytes(await collect(readChain(tier, forkRec!)))).toEqual(bytes(fork.stored));
        expect(bytes(await collect(readChain(tier, mainRec!)))).toEqual(bytes(main.stored));
        // The fork's tip continues on its own branch.
        const longer = makeChain(sealer, 2, fork, 'g');
        const { record: longRec } = await tier.append(
          main.ledgerId,
          fork.blocks[5]!.hash,
          longer.stored.slice(6),
          recordFor(sealer, longer, 7),
        );
        expect(bytes(await collect(readChain(tier, longRec!)))).toEqual(bytes(longer.stored));
      },
    );
  });
}
