/**
 * Packs and the verification rule for a restore from a checkpoint. A pack is opened whole (one AEAD call); every
 * block in it must hash to its hash and link to the one before; a restore below its checkpoint checks exactly that
 * (and the checkpoint's block hash), replays the blocks after it, and gives the state a full replay gives. What
 * links-only checking lets through (a block sealed with the key but holding an invalid transaction, a checkpoint
 * sealed with the key over a wrong state) the background replay catches, and marks the ledger degraded.
 */
import { describe, expect, it } from 'vitest';
import { sealCheckpoint } from '../../src/crypto/checkpoints.js';
import { decodePack, encodePack, sealPack, wholePack, type ChainPage } from '../../src/crypto/packs.js';
import { BackgroundReplay } from '../../src/engine/background-replay.js';
import { openPage } from '../../src/engine/page-opener.js';
import { openedPages } from '../../src/engine/parallel-open.js';
import { replayChain, type Base } from '../../src/engine/replay.js';
import { IntegrityError } from '../../src/errors.js';
import { encodeBody, makeBlock } from '../../src/ledger/block.js';
import { stateDigest } from '../../src/ledger/state-codec.js';
import { WorldState } from '../../src/ledger/state.js';
import type { Block } from '../../src/ledger/types.js';
import { silentLogger } from '../../src/log.js';
import { entries, packOf, stateAt } from '../conformance/pack-suite.js';
import { makeChain, testSealer, type TestChain } from '../support/chain.js';

const sealer = testSealer();
const WORKER = new URL('../../dist/engine/open-worker.js', import.meta.url);

// The chain as pages: packs of `size` blocks up to `packedTo`, then loose blocks.
function pages(chain: TestChain, size: number, packedTo: number): ChainPage[] {
  const out: ChainPage[] = [];
  for (let from = 0; from <= packedTo; from += size)
    out.push(wholePack(packOf(sealer, chain, from, Math.min(from + size - 1, packedTo))));
  if (packedTo + 1 < chain.stored.length) out.push({ blocks: chain.stored.slice(packedTo + 1) });
  return out;
}

async function baseAt(chain: TestChain, height: number, state = stateAt(chain, height)): Promise<Base> {
  return { height, hash: chain.blocks[height]!.hash, state };
}

describe('packs', () => {
  const chain = makeChain(sealer, 300);

  it('round-trip through their stored form and open whole or as a slice, in either mode', () => {
    const pack = packOf(sealer, chain, 10, 49);
    const back = decodePack(encodePack(pack), 'test');
    expect(back).toEqual(pack);
    const full = openPage(sealer, chain.ledgerId, 'test', { pack: back, from: 20, to: 29 }, 'full');
    expect(full.fail).toBeNull();
    expect(full.from).toBe(20);
    expect(full.bodies.map((b) => b.toString())).toEqual(
      chain.blocks.slice(20, 30).map((b) => encodeBody(b).toString()),
    );
    const links = openPage(sealer, chain.ledgerId, 'test', wholePack(back), 'links');
    expect(links).toMatchObject({ fail: null, firstPrevious: chain.blocks[9]!.hash, bodies: [] });
    expect(links.hashes).toEqual(chain.blocks.slice(10, 50).map((b) => b.hash));
  });

  it('fail to open with a flipped byte, another key or another ledger, at the pack', () => {
    const pack = packOf(sealer, chain, 0, 9);
    const flipped = { ...pack, sealed: Buffer.from(pack.sealed) };
    flipped.sealed[100]! ^= 1;
    for (const [what, p, s, l] of [
      ['flipped', flipped, sealer, chain.ledgerId],
      ['key', pack, testSealer(), chain.ledgerId],
      ['ledger', pack, sealer, 'f'.repeat(64)],
    ] as const) {
      const o = openPage(s, l, 'test', wholePack(p), 'links');
      expect(o.fail, what).toMatchObject({ index: 0 });
    }
    expect(() => decodePack(encodePack(pack).subarray(0, 40), 'test')).toThrow(IntegrityError);
  });

  it('name the first block that does not hash to its hash or does not link, sealed with the key', () => {
    // A body that does not hash to the hash its pack indexes it under.
    const bad = entries(chain, 0, 9);
    bad[4] = { ...bad[4]!, body: encodeBody({ ...chain.blocks[4]!, timestamp: '2027-01-01T00:00:00.000Z' }) };
    const o = openPage(sealer, chain.ledgerId, 'test', wholePack(sealPack(sealer, chain.ledgerId, bad)), 'links');
    expect(o.fail).toMatchObject({ index: 4, message: expect.stringContaining('block 4') });
    // Blocks of another chain spliced in: each hashes right, but block 5 does not link to block 4.
    const other = makeChain(sealer, 10);
    const spliced = [...entries(chain, 0, 4), ...entries(other, 5, 9)];
    const s = openPage(sealer, chain.ledgerId, 'test', wholePack(sealPack(sealer, chain.ledgerId, spliced)), 'links');
    expect(s.fail).toMatchObject({ index: 5, message: expect.stringContaining('links to previous hash') });
  });

  it('open the same on the worker thread as here', async () => {
    const all = pages(chain, 25, 249);
    const collect = async (workerUrl: URL | null) => {
      const out = [];
      for await (const p of openedPages(all, sealer, 'test', chain.ledgerId, {
        workerUrl,
        expectedBlocks: 1_000_000,
        modeFor: (page) => ('pack' in page && page.pack.from < 100 ? 'links' : 'full'),
      }))
        out.push({ ...p.opened, bodies: p.opened.bodies.map((b) => b.toString('hex')) });
      return out;
    };
    expect(await collect(WORKER)).toEqual(await collect(null));
  });
});

describe('a restore from a checkpoint', () => {
  const chain = makeChain(sealer, 300);
  const where = 'test';

  it('gives the state a full replay gives, checking the checkpoint block hash', async () => {
    const full = await replayChain(pages(chain, 40, 279), sealer, { where });
    const fast = await replayChain(pages(chain, 40, 279), sealer, { where, base: await baseAt(chain, 250) });
    expect(fast!.checkpoint).toMatchObject({ height: 250 });
    expect(full!.checkpoint).toBeNull();
    expect(stateDigest(fast!.state)).toBe(stateDigest(full!.state));
    expect(fast!.head).toEqual(full!.head);
    // A checkpoint whose block hash is not the chain's at its height is refused.
    const wrong = { ...(await baseAt(chain, 250)), hash: chain.blocks[251]!.hash };
    await expect(replayChain(pages(chain, 40, 279), sealer, { where, base: wrong })).rejects.toThrow(/checkpoint/);
    // A chain that ends below its checkpoint is refused.
    await expect(
      replayChain(pages(chain, 40, 279).slice(0, 4), sealer, {
        where,
        base: await baseAt(chain, 250),
        expectHead: { height: 299, hash: chain.blocks[299]!.hash },
      }),
    ).rejects.toBeInstanceOf(IntegrityError);
  });

  it('at the head itself decodes the head block', async () => {
    const fast = await replayChain(pages(chain, 50, 299), sealer, { where, base: await baseAt(chain, 299) });
    expect(fast!.head).toEqual(chain.blocks[299]);
  });

  it('refuses a gap or a missing block 0', async () => {
    const all = pages(chain, 40, 279);
    await expect(replayChain([all[0]!, all[2]!], sealer, { where })).rejects.toThrow(/lacks block 40/);
    await expect(replayChain(all.slice(1), sealer, { where })).rejects.toThrow(/does not start at block 0/);
  });
});

// The pages up to height `to`, cut there, as the local store's readPages(0, to) gives them.
function* clip(all: ChainPage[], to: number): Generator<ChainPage> {
  for (const p of all) {
    if ('pack' in p) {
      if (p.from <= to) yield { ...p, to: Math.min(p.to, to) };
    } else {
      const blocks = p.blocks.filter((b) => b.height <= to);
      if (blocks.length > 0) yield { blocks };
    }
  }
}

describe('the background replay', () => {
  async function replay(base: Base, all: ChainPage[]) {
    // What the checkpoint recorded: the digest of the state it holds.
    const summary = { version: 1 as const, digest: stateDigest(base.state), properties: base.state.totalProperties };
    const restored = await replayChain(all, sealer, { where: 'test', base });
    let degraded: string | null = null;
    const bg = new BackgroundReplay(
      { ...restored!, checkpoint: { height: base.height, hash: base.hash, summary } },
      {
        readPages: async function* (_from, to) {
          yield* clip(all, to);
        },
        current: () => true,
      },
      sealer,
      silentLogger(),
      (reason) => (degraded = reason),
    );
    return { state: await bg.done, degraded: () => degraded };
  }

  it('verifies a sound chain and checkpoint', async () => {
    const chain = makeChain(sealer, 200);
    const { state, degraded } = await replay(await baseAt(chain, 150), pages(chain, 30, 179));
    expect(state).toMatchObject({ state: 'verified', checkpoint: 150 });
    expect(degraded()).toBeNull();
  });

  it('catches a checkpoint sealed with the key over a wrong state, and degrades the ledger', async () => {
    const chain = makeChain(sealer, 200);
    const wrong = stateAt(chain, 150);
    // One property's owner differs from what the chain says: sealed and linked, only a replay can tell.
    wrong.apply({
      ...chain.blocks[0]!,
      index: 151,
      transactions: [{ type: 'transfer', timestamp: 't', propertyId: 'p5', from: 'o', to: 'mallory' }],
    } as Block);
    const tampered = WorldState.restore(150, wrong.entries());
    const cp = sealCheckpoint(sealer, chain.ledgerId, chain.blocks[150]!.hash, tampered);
    expect(cp.height).toBe(150);
    const base = { height: 150, hash: chain.blocks[150]!.hash, state: tampered };
    const { state, degraded } = await replay(base, pages(chain, 30, 179));
    expect(state).toMatchObject({ state: 'degraded', checkpoint: 150 });
    expect(degraded()).toMatch(/differs from the checkpoint/);
  });

  it('catches a block below the checkpoint that holds an invalid transaction, sealed with the key', async () => {
    const chain = makeChain(sealer, 120);
    // Rebuild the chain with block 60 transferring a property from someone who does not own it.
    const blocks: Block[] = chain.blocks.slice(0, 60);
    const ts = (i: number) => new Date(Date.UTC(2027, 0, 1, 0, 0, i)).toISOString();
    const transfer = { type: 'transfer' as const, timestamp: ts(0), propertyId: 'p3', from: 'x', to: 'y' };
    blocks.push(makeBlock(blocks.at(-1)!, [transfer], ts(60)).block);
    for (let i = 61; i < 120; i++) blocks.push(makeBlock(blocks.at(-1)!, [], ts(i)).block);
    const forged: TestChain = { ledgerId: chain.ledgerId, blocks, stored: [] };
    // The restore below the checkpoint only links: it takes the chain.
    const base = { height: 100, hash: blocks[100]!.hash, state: stateAt(chain, 59) };
    base.state.setHeight(100);
    const { state, degraded } = await replay(base, pages(forged, 30, 119));
    expect(state).toMatchObject({ state: 'degraded' });
    expect(degraded()).toMatch(/block 60 .*invalid transaction/);
  });
});
