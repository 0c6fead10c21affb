import { hash } from 'node:crypto';

/**
 * The chain's accumulator: an append-only RFC 6962 Merkle tree over the block hashes, kept as a Merkle Mountain Range.
 * Leaf i is SHA-256(0x00 || hash of block i), an inner node SHA-256(0x01 || left || right); the root of n leaves is
 * RFC 6962's MTH, which is the MMR's peaks folded from the right. Every node of a whole subtree is stored once, in
 * the order appending makes them (post-order), so a node's position is a formula and a store is an append-only run
 * of 32-byte hashes (src/store/accumulator-file.ts). Memory holds the peaks only: O(log n).
 *
 * Proofs (inclusion path, consistency path) are RFC 6962's PATH and PROOF, read from a NodeSource; they are checked
 * by verifyInclusion and verifyConsistency of proof-verifier.js, the one verifier Node and browsers share. What is
 * recorded and proven against is chainRoot(size, MTH), which binds the size too (verifyChainInclusion and
 * verifyChainConsistency).
 */

/** NODE_BYTES is the size of one stored node. */
export const NODE_BYTES = 32;

const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);

/** leafOf is the accumulator leaf of a block hash (hex). */
export function leafOf(blockHash: string): Buffer {
  return hash('sha256', Buffer.concat([LEAF, Buffer.from(blockHash, 'hex')]), 'buffer');
}

/** parentOf is the inner node over two children. */
export function parentOf(left: Buffer, right: Buffer): Buffer {
  return hash('sha256', Buffer.concat([NODE, left, right]), 'buffer');
}

function popcount(n: number): number {
  let c = 0;
  for (; n > 0; n = Math.floor(n / 2)) c += n % 2;
  return c;
}

/** nodeCount is how many nodes an accumulator of `leaves` leaves stores: 2n - popcount(n). */
export function nodeCount(leaves: number): number {
  return 2 * leaves - popcount(leaves);
}

/** leavesOf is the number of leaves whose nodeCount is `nodes`, or null when no number of leaves stores that many. */
export function leavesOf(nodes: number): number | null {
  // nodeCount grows by 1 or more per leaf, so n is within log2(nodes) + 1 of nodes / 2.
  let n = Math.floor(nodes / 2);
  while (n > 0 && nodeCount(n) > nodes) n--;
  while (nodeCount(n) < nodes) n++;
  return nodeCount(n) === nodes ? n : null;
}

/** largestValidNodes is the largest node count of a whole number of leaves not above `nodes` (a torn tail cut). */
export function largestValidNodes(nodes: number): number {
  let n = Math.floor(nodes / 2) + 1;
  while (n > 0 && nodeCount(n) > nodes) n--;
  return nodeCount(n);
}

/** positionOf is the stored position of the node over leaves [index * 2^level, (index + 1) * 2^level). */
export function positionOf(level: number, index: number): number {
  const last = (index + 1) * 2 ** level - 1;
  return 2 * last - popcount(last) + level;
}

function largestPowerBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** Peak is the root of one whole subtree of the range: 2^level leaves. */
export interface Peak {
  level: number;
  hash: Buffer;
}

/** peakSpans are the whole subtrees an accumulator of `size` leaves is made of, largest (leftmost) first. */
export function peakSpans(size: number): { level: number; index: number }[] {
  const out: { level: number; index: number }[] = [];
  let from = 0;
  for (let level = 52; level >= 0; level--) {
    const span = 2 ** level;
    if (size - from >= span) {
      out.push({ level, index: from / span });
      from += span;
    }
  }
  return out;
}

/** rootOfPeaks folds the peaks from the right: the RFC 6962 root of the whole range. Null for an empty one. */
export function rootOfPeaks(peaks: readonly Peak[]): Buffer | null {
  let root: Buffer | null = null;
  for (let i = peaks.length - 1; i >= 0; i--) root = root ? parentOf(peaks[i]!.hash, root) : peaks[i]!.hash;
  return root;
}

/**
 * appendLeaf adds a leaf to `peaks` (changed in place) and returns the nodes to store, in order: the leaf, then each
 * parent it completes. O(log n) hashing.
 */
export function appendLeaf(peaks: Peak[], leaf: Buffer): Buffer[] {
  const made = [leaf];
  peaks.push({ level: 0, hash: leaf });
  while (peaks.length >= 2 && peaks.at(-1)!.level === peaks.at(-2)!.level) {
    const right = peaks.pop()!;
    const left = peaks.pop()!;
    const parent = parentOf(left.hash, right.hash);
    peaks.push({ level: left.level + 1, hash: parent });
    made.push(parent);
  }
  return made;
}

/**
 * chainRoot is a chain's root of `size` leaves: SHA-256(0x02 || size u64 big-endian || tree root). It is what records,
 * manifests and proofs carry: an RFC 6962 path does not fix the tree's size, so the root holds it (proof-verifier.js).
 */
export function chainRoot(size: number, treeRoot: Buffer): Buffer {
  const sizeBytes = Buffer.alloc(8);
  sizeBytes.writeBigUInt64BE(BigInt(size));
  return hash('sha256', Buffer.concat([Buffer.from([2]), sizeBytes, treeRoot]), 'buffer');
}

/** sizeOfPeaks is the number of leaves under `peaks`. */
export function sizeOfPeaks(peaks: readonly Peak[]): number {
  return peaks.reduce((n, p) => n + 2 ** p.level, 0);
}

/** rootAfter is the root once `blockHashes` are appended to `peaks`, leaving `peaks` as they are. */
export function rootAfter(peaks: readonly Peak[], blockHashes: readonly string[]): Buffer | null {
  const copy = [...peaks];
  for (const h of blockHashes) appendLeaf(copy, leafOf(h));
  return rootOfPeaks(copy);
}

/** NodeSource reads stored nodes by position (src/store/accumulator-file.ts; an array in tests). */
export interface NodeSource {
  node(position: number): Promise<Buffer>;
}

/** subtreeRoot is MTH of leaves [from, to): a stored node when it is a whole aligned subtree, else computed. */
export async function subtreeRoot(nodes: NodeSource, from: number, to: number): Promise<Buffer> {
  const n = to - from;
  if (Number.isInteger(Math.log2(n)) && from % n === 0) return nodes.node(positionOf(Math.log2(n), from / n));
  const k = largestPowerBelow(n);
  return parentOf(await subtreeRoot(nodes, from, from + k), await subtreeRoot(nodes, from + k, to));
}

/** inclusionPath is RFC 6962's PATH(index, D[0:size]): the audit path of leaf `index` in the tree of `size` leaves. */
export async function inclusionPath(nodes: NodeSource, index: number, size: number): Promise<Buffer[]> {
  if (!(index >= 0 && index < size)) throw new RangeError(`leaf ${index} is not in a tree of ${size}`);
  const path: Buffer[] = [];
  const walk = async (lo: number, hi: number): Promise<void> => {
    if (hi - lo === 1) return;
    const k = largestPowerBelow(hi - lo);
    if (index < lo + k) {
      await walk(lo, lo + k);
      path.push(await subtreeRoot(nodes, lo + k, hi));
    } else {
      await walk(lo + k, hi);
      path.push(await subtreeRoot(nodes, lo, lo + k));
    }
  };
  await walk(0, size);
  return path;
}

/**
 * consistencyPath is RFC 6962's PROOF(size1, D[0:size2]): the nodes that show the tree of size1 leaves is a prefix
 * of the tree of size2 leaves.
 */
export async function consistencyPath(nodes: NodeSource, size1: number, size2: number): Promise<Buffer[]> {
  if (!(size1 >= 1 && size1 <= size2)) throw new RangeError(`no consistency proof from ${size1} to ${size2} leaves`);
  const path: Buffer[] = [];
  const sub = async (m: number, lo: number, hi: number, whole: boolean): Promise<void> => {
    if (m === hi - lo) {
      if (!whole) path.push(await subtreeRoot(nodes, lo, hi));
      return;
    }
    const k = largestPowerBelow(hi - lo);
    if (m <= k) {
      await sub(m, lo, lo + k, whole);
      path.push(await subtreeRoot(nodes, lo + k, hi));
    } else {
      await sub(m - k, lo + k, hi, false);
      path.push(await subtreeRoot(nodes, lo, lo + k));
    }
  };
  await sub(size1, 0, size2, true);
  return path;
}

/** peaksFrom reads the peaks of an accumulator of `size` leaves from its stored nodes: O(log n) reads. */
export async function peaksFrom(nodes: NodeSource, size: number): Promise<Peak[]> {
  const out: Peak[] = [];
  for (const { level, index } of peakSpans(size)) out.push({ level, hash: await nodes.node(positionOf(level, index)) });
  return out;
}

export {
  verifyChainConsistency,
  verifyChainInclusion,
  verifyConsistency,
  verifyInclusion,
} from './proof-verifier.js';
