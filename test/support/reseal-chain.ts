/**
 * Building a local store's chain for the key-rotation tests (test/durability/local-reseal.test.ts and its child,
 * test/support/reseal-loop.ts): blocks of one registration each, sealed with a given sealer, property ids by height
 * so the chain replays whoever continues it.
 */
import { sealPack, type PackEntry } from '../../src/crypto/packs.js';
import type { Sealer } from '../../src/crypto/seal.js';
import { openBlock, openBody, sealBlock } from '../../src/crypto/sealed-blocks.js';
import type { StoredBlock } from '../../src/crypto/stored-block.js';
import { makeBlock } from '../../src/ledger/block.js';
import type { Block } from '../../src/ledger/types.js';
import type { LocalStore } from '../../src/store/local-store.js';

/** ChainTip is where a chain being built stands: its ledger id and head block (null before genesis). */
export interface ChainTip {
  ledgerId: string;
  head: Block | null;
}

/** tipOf is the tip of a stored chain, its head block opened with `sealer` (a keyring opening the head's key). */
export async function tipOf(store: LocalStore, sealer: Sealer): Promise<ChainTip> {
  const ledgerId = store.ledgerId ?? '';
  let head: Block | null = null;
  if (store.height >= 0) {
    for await (const page of store.readPages(store.height, store.height)) {
      if ('blocks' in page) head = openBlock(sealer, ledgerId, page.blocks[0]!);
      else throw new Error('the head block is packed');
    }
  }
  return { ledgerId, head };
}

/** nextBlocks makes `n` blocks after the tip, sealed with `sealer`, and moves the tip on; onBlock sees each block. */
export function nextBlocks(
  tip: ChainTip,
  sealer: Sealer,
  n: number,
  onBlock: (block: Block) => void = () => {},
): StoredBlock[] {
  const out: StoredBlock[] = [];
  for (let i = 0; i < n; i++) {
    const height = tip.head ? tip.head.index + 1 : 0;
    const ts = new Date(Date.parse('2026-01-01T00:00:00Z') + 1000 * height).toISOString();
    const txs = tip.head
      ? [
          {
            type: 'register' as const,
            timestamp: ts,
            property: { id: `p${height}`, name: 'n', address: 'a', owner: 'o', attributes: { pad: 'x'.repeat(80) } },
          },
        ]
      : [];
    const enc = makeBlock(tip.head, txs, ts);
    if (!tip.head) tip.ledgerId = enc.block.hash;
    out.push(sealBlock(sealer, tip.ledgerId, enc));
    tip.head = enc.block;
    onBlock(enc.block);
  }
  return out;
}

/** packBlocks packs the loose blocks from..to of the store as the compactor does, sealed with `sealer`. */
export async function packBlocks(store: LocalStore, sealer: Sealer, from: number, to: number): Promise<void> {
  const ledgerId = store.ledgerId!;
  const entries: PackEntry[] = [];
  for await (const page of store.readPages(from, to)) {
    if (!('blocks' in page)) throw new Error('expected loose blocks');
    for (const b of page.blocks) entries.push({ height: b.height, hash: b.hash, body: openBody(sealer, ledgerId, b) });
  }
  await store.putPack(ledgerId, sealPack(sealer, ledgerId, entries));
}
