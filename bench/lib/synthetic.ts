import type { Sealer } from '../../src/crypto/seal.js';
import { makeBlock } from '../../src/ledger/block.js';
import { parseRegister } from '../../src/ledger/transactions.js';
import type { Block, Transaction } from '../../src/ledger/types.js';
import { sealRecord } from '../../src/crypto/records.js';
import { sealBlock } from '../../src/crypto/sealed-blocks.js';
import type { StoredBlock } from '../../src/crypto/stored-block.js';
import type { BackupTier } from '../../src/tiers/tier.js';
import type { BackupRecord } from '../../src/crypto/records.js';
import { propertyInput } from './workload.js';

/** TxMaker gives block i's transactions (i >= 1; block 0 is the genesis block, with none). */
export type TxMaker = (i: number, timestamp: string) => Transaction[];

/** registerBenchProperty registers the i-th benchmark property: the same blocks (about 560 bytes sealed) saves make. */
export const registerBenchProperty: TxMaker = (i, timestamp) => [
  parseRegister(propertyInput('synthetic', i), timestamp),
];

/**
 * sealedChain yields a chain of n sealed blocks, one per second of 2026 from New Year on, in batches of `batch`:
 * memory stays bounded at any n. Blocks are made and sealed with pawledger's own makeBlock and sealBlock.
 */
export function* sealedChain(
  sealer: Sealer,
  n: number,
  makeTxs: TxMaker = registerBenchProperty,
  batch = 5000,
): Generator<StoredBlock[]> {
  let previous: Block | null = null;
  let ledgerId = '';
  let out: StoredBlock[] = [];
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  for (let i = 0; i < n; i++) {
    const ts = new Date(t0 + i * 1000).toISOString();
    const enc = makeBlock(previous, previous ? makeTxs(i, ts) : [], ts);
    if (!previous) ledgerId = enc.block.hash;
    out.push(sealBlock(sealer, ledgerId, enc));
    previous = enc.block;
    if (out.length >= batch) {
      yield out;
      out = [];
    }
  }
  if (out.length) yield out;
}

/**
 * loadTiers stores one chain of n blocks in every tier (each batch appended to each tier in turn, so the chain is
 * made and sealed once), then one manual backup record of its head in each. It returns the records, in tier order.
 * This is how a restore benchmark gets a long chain in minutes rather than by n saves: the blocks are the same, but
 * the tier holds one record instead of one per save.
 */
export async function loadTiers(
  tiers: BackupTier[],
  sealer: Sealer,
  n: number,
  options: { makeTxs?: TxMaker; batch?: number; progress?: (blocks: number) => void } = {},
): Promise<BackupRecord[]> {
  let parent: string | null = null;
  let ledgerId = '';
  let size = 0;
  let last: StoredBlock | null = null;
  let done = 0;
  for (const blocks of sealedChain(sealer, n, options.makeTxs, options.batch)) {
    if (parent === null) ledgerId = blocks[0]!.hash;
    for (const tier of tiers) await tier.append(ledgerId, parent, blocks);
    parent = blocks.at(-1)!.hash;
    last = blocks.at(-1)!;
    size += blocks.reduce((s, b) => s + b.sealed.length, 0);
    done += blocks.length;
    options.progress?.(done);
  }
  const record = sealRecord(sealer, {
    ledgerId,
    name: 'bench',
    kind: 'manual',
    createdAt: new Date(),
    createdBy: null,
    height: last!.height,
    headHash: last!.hash,
    sizeBytes: size,
  });
  const out: BackupRecord[] = [];
  for (const tier of tiers) out.push(await tier.putBackup(record));
  return out;
}
