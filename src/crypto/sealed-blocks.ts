import type { Sealer } from './seal.js';
import { IntegrityError } from '../errors.js';
import { sha256Hex, type EncodedBlock } from '../ledger/block.js';
import type { Block } from '../ledger/types.js';
import type { StoredBlock } from './stored-block.js';

/** sealBlock seals a block's canonical body, bound to its ledger, height and hash. */
export function sealBlock(sealer: Sealer, ledgerId: string, encoded: EncodedBlock): StoredBlock {
  const { index: height, hash } = encoded.block;
  return { height, hash, sealed: sealer.seal({ ledgerId, kind: 'block', height, hash }, encoded.body) };
}

/**
 * openBlock decrypts a stored block and checks that its contents hash to the hash it was stored under. Any failure
 * is an IntegrityError naming the block (and `where`, e.g. the tier).
 */
export function openBlock(sealer: Sealer, ledgerId: string, stored: StoredBlock, where?: string): Block {
  return openBlockBody(sealer, ledgerId, stored, where).block;
}

/** openBlockBody is openBlock that also returns the block's canonical body as stored. */
export function openBlockBody(
  sealer: Sealer,
  ledgerId: string,
  stored: StoredBlock,
  where?: string,
): { block: Block; body: Buffer } {
  const body = openBody(sealer, ledgerId, stored, where);
  return { block: decodeOpened(body, stored, where), body };
}

/**
 * openBody is the first half of openBlockBody, the part that needs no other block: decrypt, authenticate, and check
 * that the body hashes to the hash it is stored under. IntegrityError names the block and `where`.
 */
export function openBody(sealer: Sealer, ledgerId: string, stored: StoredBlock, where?: string): Buffer {
  const body = sealer.open({ ledgerId, kind: 'block', height: stored.height, hash: stored.hash }, stored.sealed, where);
  const hash = sha256Hex(body);
  if (hash !== stored.hash) {
    throw new IntegrityError(
      `block ${stored.height}${where ? ` at ${where}` : ''} hashes to ${hash.slice(0, 16)}, not to the ${stored.hash.slice(0, 16)} it is stored under`,
    );
  }
  return body;
}

/** decodeOpened is the second half: the block in a body openBody checked (its hash is the stored one). */
export function decodeOpened(body: Uint8Array, stored: StoredBlock, where?: string): Block {
  try {
    return {
      ...(JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8')) as Omit<
        Block,
        'hash'
      >),
      hash: stored.hash,
    };
  } catch (cause) {
    throw new IntegrityError(`block ${stored.height}${where ? ` at ${where}` : ''} does not hold valid JSON`, {
      cause,
    });
  }
}
