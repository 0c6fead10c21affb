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
  return merkleRootOfEncoded(transactions.map((tx) => canonicalJson(tx)));
}

/** merkleRootOfEncoded is merkleRoot over transactions already in their canonical encoding (strings or bytes). */
export function merkleRootOfEncoded(encoded: readonly (string | Uint8Array)[]): string {
  if (encoded.length === 0) return createHash('sha256').digest('hex');
  const leaves = encoded.map((tx) => createHash('sha256').update(LEAF).update(tx).digest());
  return subtreeRoot(leaves, 0, leaves.length).toString('hex');
}

/** StoredRoot is the Merkle root of a block's transactions computed on their stored bytes, and how many there were. */
export interface StoredRoot {
  root: string;
  count: number;
}

/** storedMerkleRoot is the Merkle root over the transactions' bytes inside a stored block body, or null (see encodedTransactions). */
export function storedMerkleRoot(body: Uint8Array): StoredRoot | null {
  const txs = encodedTransactions(body);
  return txs ? { root: merkleRootOfEncoded(txs), count: txs.length } : null;
}

const TRANSACTIONS_KEY = Buffer.from('"transactions":[');

/**
 * encodedTransactions finds each transaction's canonical bytes inside a block body that is itself canonical JSON:
 * "transactions" sorts last among a block's keys, so its array runs from after `"transactions":[` to the closing
 * `]}`, split at top-level commas. Verifying a stored block then hashes the bytes as stored instead of
 * re-serializing every transaction. It returns null for a body not shaped that way (the caller falls back).
 */
export function encodedTransactions(body: Uint8Array): Uint8Array[] | null {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  // The first occurrence is the block's own key: the keys before it (index, merkleRoot, previousHash, timestamp)
  // hold numbers, hex and a date, while a transaction's attributes could hold a key named "transactions".
  const start = buf.indexOf(TRANSACTIONS_KEY);
  if (start < 0 || buf[buf.length - 1] !== 0x7d || buf[buf.length - 2] !== 0x5d) return null;
  const end = buf.length - 2;
  const out: Uint8Array[] = [];
  let from = start + TRANSACTIONS_KEY.length;
  if (from === end) return out;
  let depth = 0;
  let inString = false;
  for (let i = from; i < end; i++) {
    const c = buf[i]!;
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
    else if (c === 0x2c && depth === 0) {
      out.push(buf.subarray(from, i));
      from = i + 1;
    }
  }
  if (depth !== 0 || inString) return null;
  out.push(buf.subarray(from, end));
  return out;
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
