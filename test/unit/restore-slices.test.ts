import { afterEach, describe, expect, it } from 'vitest';
import type { ChainPage } from '../../src/crypto/packs.js';
import { openPage } from '../../src/engine/page-opener.js';
import { ChainReplayer, verifiedBatches } from '../../src/engine/replay.js';
import { LocalStore } from '../../src/store/local-store.js';
import { packOf } from '../conformance/pack-suite.js';
import { makeChain, testSealer } from '../support/chain.js';
import { tempDir } from '../support/durability.js';

const sealer = testSealer();

async function* from(pages: ChainPage[]): AsyncGenerator<ChainPage> {
  yield* pages;
}

describe('a restore whose tier hands out a pack from its middle', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  it('keeps those blocks one by one, so the local store holds every block once and reads back whole', async () => {
    const chain = makeChain(sealer, 14);
    // Blocks 3-9 were packed, but the tier read 3-5 loose (a branch, or rows held before the pack came) and the rest
    // from the pack; a whole pack 10-13 follows.
    const pages: ChainPage[] = [
      { blocks: chain.stored.slice(0, 6) },
      { pack: packOf(sealer, chain, 3, 9), from: 6, to: 9 },
      { pack: packOf(sealer, chain, 10, 13), from: 10, to: 13 },
    ];
    const { dir, cleanup } = await tempDir('slices');
    cleanups.push(cleanup);
    const { store } = await LocalStore.open(dir);
    const replayer = new ChainReplayer(sealer, 'a test tier', chain.ledgerId);
    const head = chain.blocks.at(-1)!;
    await store.replace(
      chain.ledgerId,
      verifiedBatches(from(pages), replayer, { height: head.index, hash: head.hash }),
    );
    expect(replayer.finish({ height: head.index, hash: head.hash })!.state.totalBlocks).toBe(14);
    const heights: number[] = [];
    for await (const page of store.readPages()) {
      const opened = openPage(sealer, chain.ledgerId, 'the local store', page, 'full');
      expect(opened.fail).toBeNull();
      heights.push(...opened.hashes.map((_, i) => opened.from + i));
      expect(opened.hashes).toEqual(
        chain.blocks.slice(opened.from, opened.from + opened.hashes.length).map((b) => b.hash),
      );
    }
    expect(heights).toEqual([...Array(14).keys()]);
    // The whole pack stayed a pack.
    expect(store.packs().map((p) => [p.from, p.to])).toEqual([[10, 13]]);
    await store.close();
  });
});
