import type { Sealer } from '../crypto/seal.js';
import { IntegrityError } from '../errors.js';
import { decodeBody, type EncodedBlock } from '../ledger/block.js';
import type { Block } from '../ledger/types.js';
import type { StoredBlock } from '../store/stored-block.js';

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
export function openBlockBody(sealer: Sealer, ledgerId: string, stored: StoredBlock, where?: string): { block: Block; body: Buffer } {
  const body = sealer.open({ ledgerId, kind: 'block', height: stored.height, hash: stored.hash }, stored.sealed, where);
  let block: Block;
  try {
    block = decodeBody(body);
  } catch (cause) {
    throw new IntegrityError(`block ${stored.height}${where ? ` at ${where}` : ''} does not hold valid JSON`, { cause });
  }
  if (block.hash !== stored.hash) {
    throw new IntegrityError(`block ${stored.height}${where ? ` at ${where}` : ''} hashes to ${block.hash.slice(0, 16)}, not to the ${stored.hash.slice(0, 16)} it is stored under`);
  }
  return { block, body };
}
