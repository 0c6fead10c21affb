import type { CheckpointSummary } from '../crypto/checkpoints.js';
import { openPack, pageBytes, pageHashes, pageRange, pageShareBytes, type ChainPage } from '../crypto/packs.js';
import type { Sealer } from '../crypto/seal.js';
import { decodeOpened, openBody } from '../crypto/sealed-blocks.js';
import type { StoredBlock } from '../crypto/stored-block.js';
import { IntegrityError, PawledgerError } from '../errors.js';
import { storedMerkleRoot, type StoredRoot } from '../ledger/merkle.js';
import { WorldState } from '../ledger/state.js';
import { GENESIS_PREVIOUS_HASH, type Block } from '../ledger/types.js';
import { checkLink } from '../ledger/verify.js';
import { progressTask } from '../util/progress.js';
import type { OpenedPage, OpenMode } from './page-opener.js';
import { openedPages } from './parallel-open.js';

/** Base is where a replay's state starts: a checkpoint's state after block `height` (hash `hash`). */
export interface Base {
  height: number;
  hash: string;
  state: WorldState;
}

/** ReplayedChain is a chain that decrypted and verified, with the world state it builds. */
export interface ReplayedChain {
  ledgerId: string;
  head: Block;
  state: WorldState;
  /** sizeBytes is the chain's stored size (a pack counted in proportion to the blocks read from it). */
  sizeBytes: number;
  /**
   * checkpoint is the checkpoint the state was taken from (null: replayed from block 0). Below it the blocks were
   * authenticated, hashed and linked, not replayed: the background replay (engine/background-replay.ts) does that.
   */
  checkpoint: { height: number; hash: string; summary?: CheckpointSummary } | null;
}

/** ExpectedHead is where a chain must end: a backup record's height and head hash. */
export interface ExpectedHead {
  height: number;
  hash: string;
}

/**
 * ChainReplayer verifies a chain page by page from block 0. Every block must open with the key and hash to its
 * stored hash, and link to its predecessor. From block 0 it replays every block: it must match its Merkle root and
 * hold valid transactions, which build the world state. Given a base (a checkpoint on this chain), the blocks up to
 * the base are only linked (opened in 'links' mode), the base's hash must be the chain's hash at its height, and the
 * state starts from the base's and replays the blocks after it. The first failure throws IntegrityError naming the
 * block and `where` it came from.
 */
export class ChainReplayer {
  readonly state: WorldState;
  readonly #base: Base | null;
  #ledgerId: string | undefined;
  #head: Block | null = null;
  #next = 0;
  #lastHash: string = GENESIS_PREVIOUS_HASH;
  #size = 0;

  constructor(
    readonly sealer: Sealer,
    readonly where: string,
    ledgerId?: string,
    base?: Base | null,
  ) {
    this.#ledgerId = ledgerId;
    this.#base = base ?? null;
    this.state = base?.state ?? new WorldState();
    if (base && base.state.height !== base.height)
      throw new Error(`a base at block ${base.height} holds the state after block ${base.state.height}`);
  }

  /** modeFor is how a page must be opened: linked only when it lies wholly below the base, else in full. */
  readonly modeFor = (page: ChainPage): OpenMode =>
    this.#base && pageRange(page).to < this.#base.height ? 'links' : 'full';

  /** blocksDone is how many blocks have been checked so far (the chain's next height). */
  get blocksDone(): number {
    return this.#next;
  }

  /** ledgerId is the ledger being replayed, once known (given, or block 0's hash). */
  get ledgerId(): string | undefined {
    return this.#ledgerId;
  }

  /**
   * pushPage checks and applies the next page, which openPage (page-opener.ts) opened in modeFor(page), perhaps on
   * another core. The page's first failure is thrown at its block, after the checks of that block that need no
   * opening (that the chain starts at block 0 of this ledger and continues without a gap).
   */
  pushPage(page: ChainPage, opened: OpenedPage): void {
    const { from, to } = pageRange(page);
    const hashes = pageHashes(page);
    if (from !== this.#next) {
      throw new IntegrityError(
        this.#next === 0
          ? `${this.where} does not start at block 0`
          : `${this.where} lacks block ${this.#next}: the next page starts at block ${from}`,
      );
    }
    const full = this.modeFor(page) === 'full';
    for (let i = 0; i <= to - from; i++) {
      const height = from + i;
      const hash = hashes[i]!;
      this.#begin(height, hash);
      if (opened.fail?.index === i)
        throw new IntegrityError(opened.fail.message, opened.fail.hint ? { hint: opened.fail.hint } : {});
      if (full) this.#replay(height, hash, opened.bodies[i]!, opened.roots[i] ?? null);
      else if (i === 0 && opened.firstPrevious !== this.#lastHash) {
        throw new IntegrityError(
          `block ${height} at ${this.where} links to previous hash ${String(opened.firstPrevious).slice(0, 16)}, but block ${height - 1} has hash ${this.#lastHash.slice(0, 16)}`,
        );
      }
      if (this.#base && height === this.#base.height && hash !== this.#base.hash) {
        throw new IntegrityError(
          `block ${height} at ${this.where} has hash ${hash.slice(0, 16)}, but the checkpoint there was taken after block ${this.#base.hash.slice(0, 16)}`,
        );
      }
      this.#lastHash = hash;
      this.#next = height + 1;
    }
    this.#size += pageShareBytes(page);
  }

  // The checks before a block is opened: block 0 names the ledger, and the chain must start there.
  #begin(height: number, hash: string): void {
    if (height === 0) {
      if (this.#ledgerId !== undefined && this.#ledgerId !== hash) {
        throw new IntegrityError(`${this.where} holds ledger ${hash.slice(0, 16)}, not ${this.#ledgerId.slice(0, 16)}`);
      }
      this.#ledgerId = hash;
    }
    if (this.#ledgerId === undefined) throw new IntegrityError(`${this.where} does not start at block 0`);
  }

  // A block opened in full: decoded, linked (by its decoded previousHash), its Merkle root checked, and above the
  // base its transactions applied to the state.
  #replay(height: number, hash: string, body: Buffer, root: StoredRoot | null): void {
    const block = decodeOpened(body, { height, hash, sealed: body }, this.where);
    const previous = this.#head && this.#head.index === height - 1 ? this.#head : null;
    const why = checkLink(block, previous ?? (height === 0 ? null : ({ hash: this.#lastHash } as Block)), height, root);
    if (why) throw new IntegrityError(`block ${height} at ${this.where} ${why}`);
    if (!this.#base || height > this.#base.height) {
      try {
        this.state.apply(block);
      } catch (err) {
        const reason = err instanceof PawledgerError ? err.message : String(err);
        throw new IntegrityError(`block ${height} at ${this.where} holds an invalid transaction: ${reason}`);
      }
    }
    this.#head = block;
  }

  /** finish returns the verified chain (null if no block was pushed), checking it ends at `expect` when given. */
  finish(expect?: ExpectedHead): ReplayedChain | null {
    const head = this.#head;
    if (this.#next === 0 || this.#ledgerId === undefined) {
      if (expect) throw new IntegrityError(`${this.where} holds no blocks, but block ${expect.height} was expected`);
      return null;
    }
    if (expect && (this.#next - 1 !== expect.height || this.#lastHash !== expect.hash)) {
      throw new IntegrityError(
        `${this.where} ends at block ${this.#next - 1} (${this.#lastHash.slice(0, 16)}), but its record names block ${expect.height} (${expect.hash.slice(0, 16)})`,
      );
    }
    if (this.#base && this.#next - 1 < this.#base.height)
      throw new IntegrityError(
        `${this.where} ends at block ${this.#next - 1}, below its checkpoint at ${this.#base.height}`,
      );
    // The last page is always opened in full (modeFor), so the head is decoded.
    if (!head || head.index !== this.#next - 1) throw new Error('ChainReplayer: the head was not replayed');
    return {
      ledgerId: this.#ledgerId,
      head,
      state: this.state,
      sizeBytes: this.#size,
      checkpoint: this.#base ? { height: this.#base.height, hash: this.#base.hash } : null,
    };
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

/**
 * replayChain verifies a whole chain from its pages (see ChainReplayer), from block 0, or from `base` when given.
 * Empty: null.
 */
export async function replayChain(
  source: AsyncIterable<ChainPage> | Iterable<ChainPage>,
  sealer: Sealer,
  options: {
    where: string;
    ledgerId?: string;
    expectHead?: ExpectedHead;
    base?: Base | null;
    /** task names the work in progress reports (util/progress.ts); total is its size in blocks when known. */
    task?: string;
    total?: number;
  },
): Promise<ReplayedChain | null> {
  const replayer = new ChainReplayer(sealer, options.where, options.ledgerId, options.base);
  const expected = options.expectHead ? { expectedBlocks: options.expectHead.height + 1 } : {};
  const total = expected.expectedBlocks ?? options.total ?? null;
  const progress = progressTask(options.task ?? `verify ${options.where}`, total);
  try {
    for await (const { page, opened } of openedPages(source, sealer, options.where, options.ledgerId, {
      ...expected,
      modeFor: replayer.modeFor,
    })) {
      replayer.pushPage(page, opened);
      progress.update(replayer.blocksDone);
    }
    return replayer.finish(options.expectHead);
  } finally {
    progress.end();
  }
}

/**
 * verifiedBatches replays pages as they stream in and passes them on in batches of about 1 MiB (one write each),
 * throwing at the end, before the consumer finishes, if the chain does not end at `expect`: a consumer such as
 * LocalStore.replace then never switches to a bad chain.
 */
export async function* verifiedBatches(
  source: AsyncIterable<ChainPage>,
  replayer: ChainReplayer,
  expect: ExpectedHead,
  options: { task?: string; pageBlocks?: number } = {},
): AsyncGenerator<ChainPage[]> {
  let batch: ChainPage[] = [];
  let bytes = 0;
  const progress = progressTask(options.task ?? `restore ${replayer.where}`, expect.height + 1);
  try {
    for await (const { page, opened } of openedPages(source, replayer.sealer, replayer.where, replayer.ledgerId, {
      expectedBlocks: expect.height + 1,
      modeFor: replayer.modeFor,
      ...(options.pageBlocks ? { pageBlocks: options.pageBlocks } : {}),
    })) {
      replayer.pushPage(page, opened);
      progress.update(replayer.blocksDone);
      const kept = keepable(page, replayer);
      batch.push(kept);
      bytes += pageBytes(kept);
      if (bytes >= 1024 * 1024) {
        yield batch;
        batch = [];
        bytes = 0;
      }
    }
    replayer.finish(expect);
    yield batch;
  } finally {
    progress.end();
  }
}

/**
 * keepable is a verified page as a store keeps it. A pack is stored whole, so a page that starts inside a pack (a
 * branch that leaves the pack's chain, or a tier that held the pack's first blocks loose) becomes its blocks sealed
 * one by one, as a save seals them: a store then never holds blocks twice, nor a pack it reads from the middle. This
 * opens that pack once more; it is rare.
 */
function keepable(page: ChainPage, replayer: ChainReplayer): ChainPage {
  if (!('pack' in page) || page.from === page.pack.from) return page;
  const { sealer, ledgerId, where } = replayer;
  const entries = openPack(sealer, ledgerId!, page.pack, where).slice(
    page.from - page.pack.from,
    page.to - page.pack.from + 1,
  );
  return {
    blocks: entries.map((e) => ({
      height: e.height,
      hash: e.hash,
      sealed: sealer.seal({ ledgerId: ledgerId!, kind: 'block', height: e.height, hash: e.hash }, e.body),
    })),
  };
}
