import type { Sealer } from '../crypto/seal.js';
import { IntegrityError, PawledgerError } from '../errors.js';
import { WorldState } from '../ledger/state.js';
import type { Block } from '../ledger/types.js';
import { storedMerkleRoot, type StoredRoot } from '../ledger/merkle.js';
import { checkLink } from '../ledger/verify.js';
import type { StoredBlock } from '../crypto/stored-block.js';
import { openedPages } from './parallel-open.js';
import type { OpenedPage } from './page-opener.js';
import { decodeOpened, openBody } from '../crypto/sealed-blocks.js';

/** ReplayedChain is a chain that decrypted and verified in full, with the world state it builds. */
export interface ReplayedChain {
  ledgerId: string;
  head: Block;
  state: WorldState;
  /** sizeBytes is the chain's sealed size. */
  sizeBytes: number;
}

/** ExpectedHead is where a chain must end: a backup record's height and head hash. */
export interface ExpectedHead {
  height: number;
  hash: string;
}

/**
 * ChainReplayer decrypts and verifies a chain block by block from block 0, building its world state: every block
 * must open with the key, hash to its stored hash, link to its predecessor, match its Merkle root, and hold valid
 * transactions. The first failure throws IntegrityError naming the block and `where` it came from.
 */
export class ChainReplayer {
  readonly state = new WorldState();
  #ledgerId: string | undefined;
  #head: Block | null = null;
  #size = 0;

  constructor(
    readonly sealer: Sealer,
    readonly where: string,
    ledgerId?: string,
  ) {
    this.#ledgerId = ledgerId;
  }

  /**
   * pushPage checks and applies the next page of blocks, which openPage (page-opener.ts) opened, perhaps on another
   * core: each block is decoded, linked and applied in order, and the page's first failure is thrown at its block,
   * after the ledger checks of that block (#begin) that need no opening.
   */
  pushPage(page: readonly StoredBlock[], opened: OpenedPage): void {
    for (const [i, stored] of page.entries()) {
      if (opened.fail?.index === i) {
        this.#begin(stored);
        throw new IntegrityError(opened.fail.message, opened.fail.hint ? { hint: opened.fail.hint } : {});
      }
      this.#begin(stored);
      this.#link(stored, decodeOpened(opened.bodies[i]!, stored, this.where), opened.roots[i] ?? null);
    }
  }

  /** ledgerId is the ledger being replayed, once known (given, or block 0's hash). */
  get ledgerId(): string | undefined {
    return this.#ledgerId;
  }

  // The checks before a block is opened: block 0 names the ledger, and the chain must start there.
  #begin(stored: StoredBlock): string {
    if (stored.height === 0) {
      if (this.#ledgerId !== undefined && this.#ledgerId !== stored.hash) {
        throw new IntegrityError(
          `${this.where} holds ledger ${stored.hash.slice(0, 16)}, not ${this.#ledgerId.slice(0, 16)}`,
        );
      }
      this.#ledgerId = stored.hash;
    }
    if (this.#ledgerId === undefined) throw new IntegrityError(`${this.where} does not start at block 0`);
    return this.#ledgerId;
  }

  // The checks that need the chain: the link to the head, the Merkle root, the transactions against the state.
  #link(stored: StoredBlock, block: Block, root: StoredRoot | null): Block {
    const why = checkLink(block, this.#head, this.#head ? this.#head.index + 1 : 0, root);
    if (why) throw new IntegrityError(`block ${stored.height} at ${this.where} ${why}`);
    try {
      this.state.apply(block);
    } catch (err) {
      const reason = err instanceof PawledgerError ? err.message : String(err);
      throw new IntegrityError(`block ${stored.height} at ${this.where} holds an invalid transaction: ${reason}`);
    }
    this.#head = block;
    this.#size += stored.sealed.length;
    return block;
  }

  /** finish returns the verified chain (null if no block was pushed), checking it ends at `expect` when given. */
  finish(expect?: ExpectedHead): ReplayedChain | null {
    const head = this.#head;
    if (!head || this.#ledgerId === undefined) {
      if (expect) throw new IntegrityError(`${this.where} holds no blocks, but block ${expect.height} was expected`);
      return null;
    }
    if (expect && (head.index !== expect.height || head.hash !== expect.hash)) {
      throw new IntegrityError(
        `${this.where} ends at block ${head.index} (${head.hash.slice(0, 16)}), but its record names block ${expect.height} (${expect.hash.slice(0, 16)})`,
      );
    }
    return { ledgerId: this.#ledgerId, head, state: this.state, sizeBytes: this.#size };
  }
}

// A stored block opened and checked to follow `head` (null: it must be block 0); IntegrityError if not.
function openLinked(sealer: Sealer, ledgerId: string, stored: StoredBlock, head: Block | null, where: string): Block {
  const body = openBody(sealer, ledgerId, stored, where);
  const block = decodeOpened(body, stored, where);
  const why = checkLink(block, head, head ? head.index + 1 : 0, storedMerkleRoot(body));
  if (why) throw new IntegrityError(`block ${stored.height} at ${where} ${why}`);
  return block;
}

/**
 * checkContinuation verifies that `stored` continues `chain` (each block opens, links to the one before, and its
 * transactions apply to the chain's state in order) without changing the chain: the caller applies the returned
 * blocks once they are safely stored. The first failure throws IntegrityError naming the block and `where`.
 */
export function checkContinuation(
  sealer: Sealer,
  chain: ReplayedChain,
  stored: readonly StoredBlock[],
  where: string,
): Block[] {
  const blocks: Block[] = [];
  let head = chain.head;
  for (const s of stored) {
    head = openLinked(sealer, chain.ledgerId, s, head, where);
    blocks.push(head);
  }
  try {
    chain.state.check(blocks.flatMap((b) => b.transactions));
  } catch (err) {
    const reason = err instanceof PawledgerError ? err.message : String(err);
    throw new IntegrityError(
      `blocks ${stored[0]?.height}-${stored.at(-1)?.height} at ${where} hold an invalid transaction: ${reason}`,
    );
  }
  return blocks;
}

/** replayChain verifies a whole chain from an iterable of blocks or pages of blocks; see ChainReplayer. Empty: null. */
export async function replayChain(
  source: AsyncIterable<StoredBlock | StoredBlock[]> | Iterable<StoredBlock | StoredBlock[]>,
  sealer: Sealer,
  options: { where: string; ledgerId?: string; expectHead?: ExpectedHead },
): Promise<ReplayedChain | null> {
  const replayer = new ChainReplayer(sealer, options.where, options.ledgerId);
  const expected = options.expectHead ? { expectedBlocks: options.expectHead.height + 1 } : {};
  for await (const { page, opened } of openedPages(source, sealer, options.where, options.ledgerId, expected))
    replayer.pushPage(page, opened);
  return replayer.finish(options.expectHead);
}

/**
 * verifiedBatches replays blocks (or pages of blocks) as they stream in and passes them on in batches of about 1 MiB (one write each),
 * throwing at the end, before the consumer finishes, if the chain does not end at `expect`: a consumer such as
 * LocalStore.replace then never switches to a bad chain. Batching keeps the per-block cost to the source's own.
 */
export async function* verifiedBatches(
  source: AsyncIterable<StoredBlock | StoredBlock[]>,
  replayer: ChainReplayer,
  expect: ExpectedHead,
): AsyncGenerator<StoredBlock[]> {
  let batch: StoredBlock[] = [];
  let bytes = 0;
  for await (const { page, opened } of openedPages(source, replayer.sealer, replayer.where, replayer.ledgerId, {
    expectedBlocks: expect.height + 1,
  })) {
    replayer.pushPage(page, opened);
    for (const stored of page) {
      batch.push(stored);
      bytes += stored.sealed.length;
    }
    if (bytes >= 1024 * 1024) {
      yield batch;
      batch = [];
      bytes = 0;
    }
  }
  replayer.finish(expect);
  yield batch;
}
