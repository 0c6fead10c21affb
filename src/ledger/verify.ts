import { encodeBody, sha256Hex } from './block.js';
import { merkleRoot, type StoredRoot } from './merkle.js';
import { GENESIS_PREVIOUS_HASH, type Block } from './types.js';

/** VerifyFailure names the first bad block and why it is bad. */
export interface VerifyFailure {
  ok: false;
  index: number;
  reason: string;
}

/** VerifyResult is the outcome of checking a chain. */
export type VerifyResult = { ok: true; totalBlocks: number; headHash: string | null } | VerifyFailure;

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * checkLink returns why `block` cannot follow `previous` (null for the genesis block), or null if it can. The block's
 * `hash` must already be the SHA-256 of its canonical body (openBody checks it; verifyChain recomputes it).
 * `stored`, the Merkle root of the transactions' bytes as stored (storedMerkleRoot), spares re-serializing them.
 */
export function checkLink(
  block: Block,
  previous: Block | null,
  expectedIndex: number,
  stored?: StoredRoot | null,
): string | null {
  if (typeof block !== 'object' || block === null) return 'is not an object';
  if (block.index !== expectedIndex) return `has index ${String(block.index)}, expected ${expectedIndex}`;
  if (typeof block.timestamp !== 'string' || Number.isNaN(Date.parse(block.timestamp))) return 'has no valid timestamp';
  if (!Array.isArray(block.transactions)) return 'has no transaction list';
  const wantPrevious = previous ? previous.hash : GENESIS_PREVIOUS_HASH;
  if (block.previousHash !== wantPrevious) {
    return `links to previous hash ${String(block.previousHash).slice(0, 16)}, but block ${expectedIndex - 1} has hash ${wantPrevious.slice(0, 16)}`;
  }
  if (typeof block.merkleRoot !== 'string' || !HEX64.test(block.merkleRoot)) return 'has no valid Merkle root';
  let root: string;
  try {
    root = stored && stored.count === block.transactions.length ? stored.root : merkleRoot(block.transactions);
    // The fast path hashes the stored bytes; before calling a block bad, check by re-serializing as well.
    if (root !== block.merkleRoot && stored) root = merkleRoot(block.transactions);
  } catch {
    return 'holds a transaction that is not canonical JSON';
  }
  if (root !== block.merkleRoot)
    return `has Merkle root ${block.merkleRoot.slice(0, 16)}, but its transactions hash to ${root.slice(0, 16)}`;
  return null;
}

/**
 * verifyChain checks every block of a chain held as objects: index, hash link, block hash (recomputed from the
 * canonical encoding) and Merkle root. It stops at the first bad block and says why.
 */
export function verifyChain(blocks: Iterable<Block>): VerifyResult {
  let previous: Block | null = null;
  let i = 0;
  for (const block of blocks) {
    const why = checkLink(block, previous, i);
    if (why) return { ok: false, index: i, reason: `block ${i} ${why}` };
    let hash: string;
    try {
      hash = sha256Hex(encodeBody(block));
    } catch {
      return { ok: false, index: i, reason: `block ${i} is not canonical JSON` };
    }
    if (hash !== block.hash) {
      return {
        ok: false,
        index: i,
        reason: `block ${i} has hash ${String(block.hash).slice(0, 16)}, but its contents hash to ${hash.slice(0, 16)}`,
      };
    }
    previous = block;
    i++;
  }
  return { ok: true, totalBlocks: i, headHash: previous ? previous.hash : null };
}
