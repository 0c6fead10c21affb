import { openPack } from '../crypto/packs.js';
import type { ChainPage } from '../crypto/packs.js';
import type { Sealer } from '../crypto/seal.js';
import { openBody } from '../crypto/sealed-blocks.js';
import { IntegrityError } from '../errors.js';
import { previousHashOf, sha256Hex } from '../ledger/block.js';
import { storedMerkleRoot, type StoredRoot } from '../ledger/merkle.js';

/**
 * OpenMode says how much of a page to open. 'full': every block's body and the Merkle root of its stored
 * transactions, for a replay that decodes and applies each block. 'links': only what proves the run of blocks is
 * the one its hashes name (each object authenticated, each body hashed to its hash, each block linked to the one
 * before it in the page); no body is returned, so a restore below its checkpoint moves bytes and verdicts only.
 */
export type OpenMode = 'full' | 'links';

/**
 * OpenedPage is what opening a page gives: the first height, the blocks' hashes, and in 'full' mode their bodies and
 * stored Merkle roots, up to the first block that failed (its index in the page and why), else fail is null. Blocks
 * after a failure are not opened. `firstPrevious` is the previousHash the page's first block names (checked against
 * the page before by the consumer); null when it failed before that was known.
 */
export interface OpenedPage {
  from: number;
  hashes: string[];
  bodies: Buffer[];
  roots: (StoredRoot | null)[];
  firstPrevious: string | null;
  fail: { index: number; message: string; hint?: string } | null;
}

function failure(err: unknown, index: number): OpenedPage['fail'] {
  if (!(err instanceof IntegrityError)) throw err;
  return { index, message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
}

/**
 * openPage does, for every block of a page, the checks that need no block outside it: decrypt and authenticate (one
 * call per block, or one per pack), hash each body to its hash, and in 'links' mode link each block to the one
 * before it. It is the part of verifying a chain that can run on another core; the checks that need the chain (the
 * link into the page, transactions against the state) stay with the consumer.
 */
export function openPage(sealer: Sealer, ledgerId: string, where: string, page: ChainPage, mode: OpenMode): OpenedPage {
  const out: OpenedPage = { from: 0, hashes: [], bodies: [], roots: [], firstPrevious: null, fail: null };
  let bodies: { height: number; hash: string; body: Buffer }[];
  if ('pack' in page) {
    out.from = page.from;
    try {
      bodies = openPack(sealer, ledgerId, page.pack, where).slice(
        page.from - page.pack.from,
        page.to - page.pack.from + 1,
      );
    } catch (err) {
      out.fail = failure(err, 0);
      return out;
    }
    for (const [index, b] of bodies.entries()) {
      const wrong = packedHashFailure(b, page.pack, where);
      if (wrong) {
        out.fail = { index, message: wrong };
        return out;
      }
      if (!accept(out, b, index, mode, where)) return out;
    }
    return out;
  }
  out.from = page.blocks[0]?.height ?? 0;
  for (const [index, stored] of page.blocks.entries()) {
    let body: Buffer;
    try {
      body = openBody(sealer, ledgerId, stored, where);
    } catch (err) {
      out.fail = failure(err, index);
      return out;
    }
    if (!accept(out, { height: stored.height, hash: stored.hash, body }, index, mode, where)) return out;
  }
  return out;
}

/**
 * packedHashFailure says why a block opened from a pack does not hash to the hash the pack stores it under, or null
 * when it does (the pack's seal authenticates the pack, not which body belongs to which hash).
 */
export function packedHashFailure(
  b: { height: number; hash: string; body: Buffer },
  pack: { from: number; to: number },
  where: string,
): string | null {
  const hash = sha256Hex(b.body);
  if (hash === b.hash) return null;
  return `block ${b.height} in the pack of blocks ${pack.from}-${pack.to} at ${where} hashes to ${hash.slice(0, 16)}, not to the ${b.hash.slice(0, 16)} it is stored under`;
}

// Take one opened block into the page; false (with out.fail set) if it does not link to the one before.
function accept(
  out: OpenedPage,
  b: { height: number; hash: string; body: Buffer },
  index: number,
  mode: OpenMode,
  where: string,
): boolean {
  if (mode === 'full') {
    out.bodies.push(b.body);
    out.roots.push(storedMerkleRoot(b.body));
  } else {
    const previous = previousHashOf(b.body, b.height);
    const want = index === 0 ? null : out.hashes[index - 1]!;
    if (previous === null || (want !== null && previous !== want)) {
      out.fail = {
        index,
        message:
          previous === null
            ? `block ${b.height} at ${where} is not a well-formed block`
            : `block ${b.height} at ${where} links to previous hash ${previous.slice(0, 16)}, but block ${b.height - 1} has hash ${want!.slice(0, 16)}`,
      };
      return false;
    }
    if (index === 0) out.firstPrevious = previous;
  }
  out.hashes.push(b.hash);
  return true;
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
