import type { Sealer } from '../crypto/seal.js';
import { IntegrityError, PawledgerError } from '../errors.js';
import { WorldState } from '../ledger/state.js';
import type { Block } from '../ledger/types.js';
import { checkLink } from '../ledger/verify.js';
import type { StoredBlock } from '../store/stored-block.js';
import { openBlock } from './sealed-blocks.js';

/** ReplayedChain is a chain that decrypted and verified in full, with the world state it builds. */
export interface ReplayedChain {
  ledgerId: string;
  head: Block;
  state: WorldState;
}

/**
 * replayChain decrypts and verifies a whole chain from block 0, building its world state: every block must open
 * with the key, hash to its stored hash, link to its predecessor, match its Merkle root, and hold valid transactions.
 * The first failure throws IntegrityError naming the block and `where` it came from. When `expectHead` is given, the
 * chain must end exactly there (a backup record's height and head hash). An empty source returns null.
 */
export async function replayChain(
  source: AsyncIterable<StoredBlock> | Iterable<StoredBlock>,
  sealer: Sealer,
  options: { where: string; ledgerId?: string; expectHead?: { height: number; hash: string } },
): Promise<ReplayedChain | null> {
  const state = new WorldState();
  let ledgerId = options.ledgerId;
  let head: Block | null = null;
  for await (const stored of source) {
    if (stored.height === 0) {
      if (ledgerId !== undefined && ledgerId !== stored.hash) {
        throw new IntegrityError(`${options.where} holds ledger ${stored.hash.slice(0, 16)}, not ${ledgerId.slice(0, 16)}`);
      }
      ledgerId = stored.hash;
    }
    if (ledgerId === undefined) throw new IntegrityError(`${options.where} does not start at block 0`);
    const block = openBlock(sealer, ledgerId, stored, options.where);
    const why = checkLink(block, head, head ? head.index + 1 : 0);
    if (why) throw new IntegrityError(`block ${stored.height} at ${options.where} ${why}`);
    try {
      state.apply(block);
    } catch (err) {
      const reason = err instanceof PawledgerError ? err.message : String(err);
      throw new IntegrityError(`block ${stored.height} at ${options.where} holds an invalid transaction: ${reason}`);
    }
    head = block;
  }
  if (!head || ledgerId === undefined) {
    if (options.expectHead) throw new IntegrityError(`${options.where} holds no blocks, but block ${options.expectHead.height} was expected`);
    return null;
  }
  if (options.expectHead && (head.index !== options.expectHead.height || head.hash !== options.expectHead.hash)) {
    throw new IntegrityError(
      `${options.where} ends at block ${head.index} (${head.hash.slice(0, 16)}), but its record names block ${options.expectHead.height} (${options.expectHead.hash.slice(0, 16)})`,
    );
  }
  return { ledgerId, head, state };
}
