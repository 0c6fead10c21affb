import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical.js';
import type { Transaction } from './types.js';

const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);

/**
 * merkleRoot computes the Merkle root of a block's transactions as RFC 6962 does: leaves are
 * SHA-256(0x00 || canonical JSON of the transaction), inner nodes SHA-256(0x01 || left || right), the tree split at
 * the largest power of two below n. No transactions: SHA-256 of the empty string. The result is hex.
 */
export function merkleRoot(transactions: readonly Transaction[]): string {
  if (transactions.length === 0) return createHash('sha256').digest('hex');
  const leaves = transactions.map((tx) => createHash('sha256').update(LEAF).update(canonicalJson(tx)).digest());
  return subtreeRoot(leaves, 0, leaves.length).toString('hex');
}

function subtreeRoot(leaves: Buffer[], from: number, to: number): Buffer {
  const n = to - from;
  if (n === 1) return leaves[from]!;
  let split = 1;
  while (split * 2 < n) split *= 2;
  return createHash('sha256')
    .update(NODE)
    .update(subtreeRoot(leaves, from, from + split))
    .update(subtreeRoot(leaves, from + split, to))
    .digest();
}
