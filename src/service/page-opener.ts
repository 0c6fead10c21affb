import type { Sealer } from '../crypto/seal.js';
import { IntegrityError } from '../errors.js';
import { storedMerkleRoot, type StoredRoot } from '../ledger/merkle.js';
import type { StoredBlock } from '../store/stored-block.js';
import { openBody } from './sealed-blocks.js';

/** OpenJob is a page of stored blocks to open, packed for a worker thread: sealed bytes back to back, `ends` after each. */
export interface OpenJob {
  id: number;
  ledgerId: string;
  where: string;
  heights: number[];
  hashes: string[];
  sealed: Uint8Array;
  ends: Uint32Array;
}

/**
 * OpenedPage is what opening a page gives: the bodies back to back (`ends` after each), each block's Merkle root of
 * its stored transaction bytes, and the first block that failed (its index in the page and why), else null. Blocks
 * after a failure are not opened.
 */
export interface OpenedPage {
  id: number;
  bodies: Uint8Array;
  ends: Uint32Array;
  roots: (StoredRoot | null)[];
  fail: { index: number; message: string; hint?: string } | null;
}

/** packPage makes an OpenJob of a page. */
export function packPage(id: number, ledgerId: string, where: string, page: readonly StoredBlock[]): OpenJob {
  const ends = new Uint32Array(page.length);
  let at = 0;
  for (const [i, b] of page.entries()) ends[i] = at += b.sealed.length;
  const sealed = new Uint8Array(at);
  for (const [i, b] of page.entries()) sealed.set(b.sealed, i === 0 ? 0 : ends[i - 1]!);
  return { id, ledgerId, where, heights: page.map((b) => b.height), hashes: page.map((b) => b.hash), sealed, ends };
}

/**
 * openPage does, for every block of a page, the checks that need no other block (openBody: decrypt, authenticate,
 * hash) and computes its stored Merkle root: the part of verifying a chain that can run on another core. The
 * checks that need the chain (links, transactions against the state) stay with ChainReplayer.pushOpened.
 */
export function openPage(sealer: Sealer, job: OpenJob): OpenedPage {
  const bodies: Uint8Array[] = [];
  const roots: (StoredRoot | null)[] = [];
  let fail: OpenedPage['fail'] = null;
  for (let i = 0; i < job.heights.length; i++) {
    const sealed = job.sealed.subarray(i === 0 ? 0 : job.ends[i - 1], job.ends[i]);
    try {
      const body = openBody(sealer, job.ledgerId, { height: job.heights[i]!, hash: job.hashes[i]!, sealed: Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength) }, job.where);
      bodies.push(body);
      roots.push(storedMerkleRoot(body));
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      fail = { index: i, message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
      break;
    }
  }
  const ends = new Uint32Array(bodies.length);
  let at = 0;
  for (const [i, b] of bodies.entries()) ends[i] = at += b.length;
  const out = new Uint8Array(at);
  for (const [i, b] of bodies.entries()) out.set(b, i === 0 ? 0 : ends[i - 1]!);
  return { id: job.id, bodies: out, ends, roots, fail };
}

/** bodyAt is the i-th body of an opened page. */
export function bodyAt(page: OpenedPage, i: number): Buffer {
  const from = i === 0 ? 0 : page.ends[i - 1]!;
  return Buffer.from(page.bodies.buffer, page.bodies.byteOffset + from, page.ends[i]! - from);
}
