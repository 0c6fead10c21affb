import { parseKey, generateKey } from '../../src/crypto/key.js';
import { Sealer } from '../../src/crypto/seal.js';
import { makeBlock } from '../../src/ledger/block.js';
import type { Block } from '../../src/ledger/types.js';
import { sealRecord } from '../../src/crypto/records.js';
import { sealBlock } from '../../src/crypto/sealed-blocks.js';
import type { StoredBlock } from '../../src/crypto/stored-block.js';
import type { NewBackup } from '../../src/crypto/records.js';

/** testSealer seals with a fresh random key. */
export function testSealer(): Sealer {
  return new Sealer(parseKey(generateKey()));
}

/** TestChain is a real sealed chain built in memory, for feeding tiers. */
export interface TestChain {
  ledgerId: string;
  blocks: Block[];
  stored: StoredBlock[];
}

let clock = Date.parse('2026-01-01T00:00:00Z');

/** makeChain builds `n` blocks after `base` (or a new genesis), each registering one property. */
export function makeChain(sealer: Sealer, n: number, base?: TestChain, tag = 'p'): TestChain {
  const blocks = base ? [...base.blocks] : [];
  const stored = base ? [...base.stored] : [];
  let ledgerId = base?.ledgerId ?? '';
  for (let i = 0; i < n; i++) {
    const previous = blocks.at(-1) ?? null;
    const ts = new Date((clock += 1000)).toISOString();
    const txs = previous
      ? [
          {
            type: 'register' as const,
            timestamp: ts,
            property: { id: `${tag}${blocks.length}`, name: 'n', address: 'a', owner: 'o', attributes: {} },
          },
        ]
      : [];
    const enc = makeBlock(previous, txs, ts);
    if (!previous) ledgerId = enc.block.hash;
    blocks.push(enc.block);
    stored.push(sealBlock(sealer, ledgerId, enc));
  }
  return { ledgerId, blocks, stored };
}

/** recordFor seals a backup record pointing at block `height` of the chain. */
export function recordFor(sealer: Sealer, chain: TestChain, height: number, name = `backup at ${height}`): NewBackup {
  const sizeBytes = chain.stored.slice(0, height + 1).reduce((n, b) => n + b.sealed.length, 0);
  return sealRecord(sealer, {
    ledgerId: chain.ledgerId,
    name,
    kind: 'manual',
    createdAt: new Date((clock += 1000)),
    createdBy: 1,
    height,
    headHash: chain.blocks[height]!.hash,
    sizeBytes,
  });
}

/** collect drains an async iterable. */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
