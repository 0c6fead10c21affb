import { beforeEach, describe, expect, it, type TestContext } from 'vitest';
import { openCheckpoint, sealCheckpoint } from '../../src/crypto/checkpoints.js';
import { pageRange, sealPack, type ChainPage, type PackEntry, type SealedPack } from '../../src/crypto/packs.js';
import type { BackupRecord } from '../../src/crypto/records.js';
import type { Sealer } from '../../src/crypto/seal.js';
import { openPage } from '../../src/engine/page-opener.js';
import { verifyBackup } from '../../src/engine/restore.js';
import { encodeBody } from '../../src/ledger/block.js';
import { WorldState } from '../../src/ledger/state.js';
import type { BackupTier } from '../../src/tiers/tier.js';
import { collect, makeChain, recordFor, type TestChain } from '../support/chain.js';
import type { TierFactory } from './tier-suite.js';

/** entries are a test chain's blocks from..to as a pack holds them. */
export function entries(chain: TestChain, from: number, to: number): PackEntry[] {
  return chain.blocks.slice(from, to + 1).map((b) => ({ height: b.index, hash: b.hash, body: encodeBody(b) }));
}

/** packOf seals blocks from..to of a test chain as one pack. */
export function packOf(sealer: Sealer, chain: TestChain, from: number, to: number): SealedPack {
  return sealPack(sealer, chain.ledgerId, entries(chain, from, to));
}

/** stateAt is the world state after block `height` of a test chain. */
export function stateAt(chain: TestChain, height: number): WorldState {
  const state = new WorldState();
  for (const b of chain.blocks.slice(0, height + 1)) state.apply(b);
  return state;
}

/** opened reads a record's chain from a tier and opens every page: heights, hashes and bodies as strings. */
export async function opened(
  tier: BackupTier,
  sealer: Sealer,
  record: BackupRecord,
  start = 0,
): Promise<{ pages: ChainPage[]; blocks: [number, string, string][] }> {
  const pages = await collect(tier.readChainPages(record, start));
  const blocks: [number, string, string][] = [];
  for (const page of pages) {
    const o = openPage(sealer, record.ledgerId, tier.name, page, 'full');
    expect(o.fail).toBeNull();
    for (const [i, body] of o.bodies.entries()) blocks.push([o.from + i, o.hashes[i]!, body.toString('utf8')]);
  }
  return { pages, blocks };
}

/** expected is what opened() must give for blocks from..to of a chain. */
export function expected(chain: TestChain, from = 0, to = chain.blocks.length - 1): [number, string, string][] {
  return chain.blocks.slice(from, to + 1).map((b) => [b.index, b.hash, encodeBody(b).toString('utf8')]);
}

/**
 * describePacks runs the packs-and-checkpoints half of the tier contract (src/tiers/tier.ts: putPack, putCheckpoint,
 * checkpointFor, readChainPages yielding packs) against real storage. A tier without putPack skips it.
 */
export function describePacks(name: string, factory: TierFactory & { sealer: Sealer }): void {
  describe(`tier contract, packs and checkpoints: ${name}`, () => {
    const { sealer } = factory;
    let tier: BackupTier;
    beforeEach(async () => {
      tier = await factory.create();
      await tier.init();
      return () => tier.close();
    });
    const needs = (ctx: TestContext) => {
      // A tier without packs (the bench's read-only stand-ins, a future tier) has nothing here to check: skipped,
      // not passed. Every product tier implements them (src/tiers/tier.ts).
      if (!tier.putPack || !tier.putCheckpoint || !tier.checkpointFor) ctx.skip();
    };

    it('compacts held blocks into a pack: the chain reads back the same, with the pack as one page', async (ctx) => {
      needs(ctx);
      const chain = makeChain(sealer, 12);
      const { record } = await tier.append(chain.ledgerId, null, chain.stored, recordFor(sealer, chain, 11));
      await tier.putPack!(chain.ledgerId, null, packOf(sealer, chain, 0, 7));
      const { pages, blocks } = await opened(tier, sealer, record!);
      expect(blocks).toEqual(expected(chain));
      expect(pages.filter((p) => 'pack' in p).map(pageRange)).toEqual([{ from: 0, to: 7 }]);
      await verifyBackup(tier, record!, sealer);
      // Idempotent, and it survives a reopen.
      await tier.putPack!(chain.ledgerId, null, packOf(sealer, chain, 0, 7));
      const again = await factory.reopen(tier);
      await again.init();
      expect((await opened(again, sealer, record!)).blocks).toEqual(expected(chain));
      if (again !== tier) await again.close();
    });

    it('answers hashAt and hasBlock for blocks held in a pack', async (ctx) => {
      needs(ctx);
      const chain = makeChain(sealer, 10);
      const { record } = await tier.append(chain.ledgerId, null, chain.stored, recordFor(sealer, chain, 9));
      await tier.putPack!(chain.ledgerId, null, packOf(sealer, chain, 0, 5));
      await tier.putPack!(chain.ledgerId, chain.blocks[5]!.hash, packOf(sealer, chain, 6, 8));
      for (const h of [0, 3, 5, 6, 8, 9]) {
        expect(await tier.hashAt(record!, h)).toBe(chain.blocks[h]!.hash);
        expect(await tier.hasBlock(chain.ledgerId, h, chain.blocks[h]!.hash)).toBe(true);
      }
      expect(await tier.hasBlock(chain.ledgerId, 4, chain.blocks[3]!.hash)).toBe(false);
      expect(await tier.hashAt(record!, 10)).toBeNull();
    });

    it('catches up with a pack: blocks it lacked are added, then appends continue after it', async (ctx) => {
      needs(ctx);
      const chain = makeChain(sealer, 10);
      await tier.putPack!(chain.ledgerId, null, packOf(sealer, chain, 0, 4));
      await tier.putPack!(chain.ledgerId, chain.blocks[4]!.hash, packOf(sealer, chain, 5, 7));
      const { record } = await tier.append(
        chain.ledgerId,
        chain.blocks[7]!.hash,
        chain.stored.slice(8),
        recordFor(sealer, chain, 9),
      );
      expect((await opened(tier, sealer, record!)).blocks).toEqual(expected(chain));
      await verifyBackup(tier, record!, sealer);
    });

    it('catches up with a pack that overlaps what it holds', async (ctx) => {
      needs(ctx);
      const chain = makeChain(sealer, 10);
      await tier.append(chain.ledgerId, null, chain.stored.slice(0, 4));
      await tier.putPack!(chain.ledgerId, null, packOf(sealer, chain, 0, 7));
      const { record } = await tier.append(
        chain.ledgerId,
        chain.blocks[7]!.hash,
        chain.stored.slice(8),
        recordFor(sealer, chain, 9),
      );
      expect((await opened(tier, sealer, record!)).blocks).toEqual(expected(chain));
    });

    it('refuses a pack whose parent it lacks, with NotFoundError, and stores nothing', async (ctx) => {
      needs(ctx);
      const chain = makeChain(sealer, 10);
      await tier.append(chain.ledgerId, null, chain.stored.slice(0, 3));
      await expect(
        tier.putPack!(chain.ledgerId, chain.blocks[4]!.hash, packOf(sealer, chain, 5, 9)),
      ).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      expect(await tier.hasBlock(chain.ledgerId, 5, chain.blocks[5]!.hash)).toBe(false);
    });

    it('reads from a start inside a pack: the first page is the pack cut to start there', async (ctx) => {
      needs(ctx);
      const chain = makeChain(sealer, 12);
      const { record } = await tier.append(chain.ledgerId, null, chain.stored, recordFor(sealer, chain, 11));
      await tier.putPack!(chain.ledgerId, null, packOf(sealer, chain, 0, 9));
      const { pages, blocks } = await opened(tier, sealer, record!, 4);
      expect(pageRange(pages[0]!).from).toBe(4);
      expect(blocks).toEqual(expected(chain, 4));
    });

    it('reads an older backup inside a pack as its prefix: the pack cut at the record head', async (ctx) => {
      needs(ctx);
      const chain = makeChain(sealer, 12);
      const { record: older } = await tier.append(
        chain.ledgerId,
        null,
        chain.stored.slice(0, 6),
        recordFor(sealer, chain, 5),
      );
      await tier.append(chain.ledgerId, chain.blocks[5]!.hash, chain.stored.slice(6), recordFor(sealer, chain, 11));
      await tier.putPack!(chain.ledgerId, null, packOf(sealer, chain, 0, 9));
      expect((await opened(tier, sealer, older!)).blocks).toEqual(expected(chain, 0, 5));
      await verifyBackup(tier, older!, sealer);
    });

    it('keeps every backup readable after compaction and garbage collection', async (ctx) => {
      needs(ctx);
      const chain = makeChain(sealer, 16);
      const records: BackupRecord[] = [];
      for (let h = 3; h < 16; h += 4) {
        const from = h - 3;
        const { record } = await tier.append(
          chain.ledgerId,
          from === 0 ? null : chain.blocks[from - 1]!.hash,
          chain.stored.slice(from, h + 1),
          recordFor(sealer, chain, h),
        );
        records.push(record!);
      }
      await tier.putPack!(chain.ledgerId, null, packOf(sealer, chain, 0, 11));
      if (factory.retention !== false) {
        await tier.deleteBackups([records[1]!.id]);
        await tier.collectGarbage(chain.ledgerId);
      }
      for (const r of factory.retention !== false ? [records[0]!, records[2]!, records[3]!] : records) {
        expect((await opened(tier, sealer, r)).blocks).toEqual(expected(chain, 0, r.height));
        await verifyBackup(tier, r, sealer);
      }
    });

    it('stores checkpoints and finds the newest on a record chain', async (ctx) => {
      needs(ctx);
      const chain = makeChain(sealer, 12);
      const { record: r5 } = await tier.append(
        chain.ledgerId,
        null,
        chain.stored.slice(0, 6),
        recordFor(sealer, chain, 5),
      );
      const { record: r11 } = await tier.append(
        chain.ledgerId,
        chain.blocks[5]!.hash,
        chain.stored.slice(6),
        recordFor(sealer, chain, 11),
      );
      expect(await tier.checkpointFor!(r11!)).toBeNull();
      await tier.putCheckpoint!(
        chain.ledgerId,
        sealCheckpoint(sealer, chain.ledgerId, chain.blocks[4]!.hash, stateAt(chain, 4)),
      );
      await tier.putCheckpoint!(
        chain.ledgerId,
        sealCheckpoint(sealer, chain.ledgerId, chain.blocks[8]!.hash, stateAt(chain, 8)),
      );
      // Idempotent.
      await tier.putCheckpoint!(
        chain.ledgerId,
        sealCheckpoint(sealer, chain.ledgerId, chain.blocks[8]!.hash, stateAt(chain, 8)),
      );
      const newest = await tier.checkpointFor!(r11!);
      expect(newest).toMatchObject({ height: 8, hash: chain.blocks[8]!.hash });
      const { state } = await openCheckpoint(sealer, chain.ledgerId, newest!, newest!.parts(), tier.name);
      expect(state.list()).toEqual(stateAt(chain, 8).list());
      expect(state.height).toBe(8);
      // The older record's newest checkpoint is the one at or below its head.
      expect(await tier.checkpointFor!(r5!)).toMatchObject({ height: 4, hash: chain.blocks[4]!.hash });
      // It survives a reopen.
      const again = await factory.reopen(tier);
      await again.init();
      expect(await again.checkpointFor!(r11!)).toMatchObject({ height: 8 });
      if (again !== tier) await again.close();
    });

    it('refuses a checkpoint for a block it lacks, with NotFoundError', async (ctx) => {
      needs(ctx);
      const chain = makeChain(sealer, 8);
      await tier.append(chain.ledgerId, null, chain.stored.slice(0, 4));
      const cp = sealCheckpoint(sealer, chain.ledgerId, chain.blocks[6]!.hash, stateAt(chain, 6));
      await expect(tier.putCheckpoint!(chain.ledgerId, cp)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it('stores a checkpoint of many parts and gives them back in order', async (ctx) => {
      needs(ctx);
      const chain = makeChain(sealer, 3);
      const { record } = await tier.append(chain.ledgerId, null, chain.stored, recordFor(sealer, chain, 2));
      // A state of 3000 properties in parts of about 1 MiB: make it span several by padding the properties.
      const state = new WorldState();
      for (let i = 0; i < 3000; i++)
        state.add({ id: `big${i}`, blocks: 1, json: JSON.stringify({ id: `big${i}`, pad: 'x'.repeat(1000) }) });
      state.setHeight(2);
      const cp = sealCheckpoint(sealer, chain.ledgerId, chain.blocks[2]!.hash, state);
      expect(cp.parts.length).toBeGreaterThan(2);
      await tier.putCheckpoint!(chain.ledgerId, cp);
      const got = await tier.checkpointFor!(record!);
      const parts = await collect(got!.parts());
      expect(parts.map((p) => p.toString('base64'))).toEqual(cp.parts.map((p) => p.toString('base64')));
    });

    if (factory.branches) {
      it('reads a fork that leaves a pack: the pack cut where the branch leaves, then the branch', async (ctx) => {
        needs(ctx);
        const main = makeChain(sealer, 12);
        const { record: mainRec } = await tier.append(main.ledgerId, null, main.stored, recordFor(sealer, main, 11));
        await tier.putPack!(main.ledgerId, null, packOf(sealer, main, 0, 9));
        const fork = makeChain(
          sealer,
          3,
          { ledgerId: main.ledgerId, blocks: main.blocks.slice(0, 5), stored: main.stored.slice(0, 5) },
          'f',
        );
        const { record: forkRec } = await tier.append(
          main.ledgerId,
          main.blocks[4]!.hash,
          fork.stored.slice(5),
          recordFor(sealer, fork, 7),
        );
        expect((await opened(tier, sealer, forkRec!)).blocks).toEqual(expected(fork));
        expect((await opened(tier, sealer, mainRec!)).blocks).toEqual(expected(main));
        await verifyBackup(tier, forkRec!, sealer);
        // A checkpoint on the main chain above the fork point is not the fork's.
        await tier.putCheckpoint!(
          main.ledgerId,
          sealCheckpoint(sealer, main.ledgerId, main.blocks[6]!.hash, stateAt(main, 6)),
        );
        expect(await tier.checkpointFor!(forkRec!)).toBeNull();
        // The fork compacts too, into a pack that shares its first blocks with main's.
        await tier.putPack!(main.ledgerId, null, packOf(sealer, fork, 0, 6));
        expect((await opened(tier, sealer, forkRec!)).blocks).toEqual(expected(fork));
        expect((await opened(tier, sealer, mainRec!)).blocks).toEqual(expected(main));
      });
    }
  });
}
