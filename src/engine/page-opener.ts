import type { Sealer } from '../crypto/seal.js';
import { IntegrityError } from '../errors.js';
import { storedMerkleRoot, type StoredRoot } from '../ledger/merkle.js';
import type { StoredBlock } from '../crypto/stored-block.js';
import { openBody } from '../crypto/sealed-blocks.js';

/**
 * OpenedPage is what opening a page of stored blocks gives: each block's body and the Merkle root of its stored
 * transaction bytes, up to the first block that failed (its index in the page and why), else fail is null. Blocks
 * after a failure are not opened.
 */
export interface OpenedPage {
  bodies: Buffer[];
  roots: (StoredRoot | null)[];
  fail: { index: number; message: string; hint?: string } | null;
}

/**
 * openPage does, for every block of a page, the checks that need no other block (openBody: decrypt, authenticate,
 * hash) and computes its stored Merkle root: the part of verifying a chain that can run on another core. The
 * checks that need the chain (links, transactions against the state) stay with ChainReplayer.pushPage.
 */
export function openPage(sealer: Sealer, ledgerId: string, where: string, page: readonly StoredBlock[]): OpenedPage {
  const bodies: Buffer[] = [];
  const roots: (StoredRoot | null)[] = [];
  for (const [index, stored] of page.entries()) {
    try {
      const body = openBody(sealer, ledgerId, stored, where);
      bodies.push(body);
      roots.push(storedMerkleRoot(body));
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      return { bodies, roots, fail: { index, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } };
    }
  }
  return { bodies, roots, fail: null };
}

/** Packed is a run of byte strings back to back in one buffer (`ends` after each): one transfer to or from a worker. */
export interface Packed {
  bytes: Uint8Array;
  ends: Uint32Array;
}

/** pack puts byte strings back to back. */
export function pack(parts: readonly Uint8Array[]): Packed {
  const ends = new Uint32Array(parts.length);
  let at = 0;
  for (const [i, p] of parts.entries()) ends[i] = at += p.length;
  const bytes = new Uint8Array(at);
  for (const [i, p] of parts.entries()) bytes.set(p, i === 0 ? 0 : ends[i - 1]!);
  return { bytes, ends };
}

/** unpack views the byte strings of a Packed, without copying. */
export function unpack({ bytes, ends }: Packed): Buffer[] {
  return Array.from(ends, (end, i) => {
    const from = i === 0 ? 0 : ends[i - 1]!;
    return Buffer.from(bytes.buffer, bytes.byteOffset + from, end - from);
  });
}
