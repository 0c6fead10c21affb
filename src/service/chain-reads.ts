import { type ChainPage, openPack, type PackEntry } from '../crypto/packs.js';
import type { Sealer } from '../crypto/seal.js';
import { decodeOpened } from '../crypto/sealed-blocks.js';
import { openPage, packedHashFailure } from '../engine/page-opener.js';
import type { ReplayedChain } from '../engine/replay.js';
import { replayChain } from '../engine/replay.js';
import { IntegrityError, NotFoundError } from '../errors.js';
import type { Block, Transaction } from '../ledger/types.js';
import type { LocalStore } from '../store/local-store.js';
import type { HistoryEntry, VerifyReport } from './ledger-types.js';

/** MAX_CHAIN_PAGE is the most blocks one chain read returns. */
export const MAX_CHAIN_PAGE = 1000;
// Packs kept opened for reads that come back to them (a property's history often does).
const OPENED_PACKS = 4;
// Blocks of a property's history read at once.
const HISTORY_READS = 8;
const WHERE = 'the local store';

/** ChainReader answers the Ledger's reads of stored blocks: pages of the chain, a property's history, a full verify. */
export class ChainReader {
  // The blocks of the packs read last, by the pack's last hash: a pack is authenticated whole, so a block from one it
  // just opened costs only its own hash and decoding.
  readonly #packs = new Map<string, PackEntry[]>();

  constructor(
    private readonly store: LocalStore,
    private readonly sealer: Sealer,
    private readonly chain: () => ReplayedChain,
  ) {}

  /** blocks returns up to `limit` blocks (at most MAX_CHAIN_PAGE) from height `from`, decrypted and checked. */
  async blocks(from: number, limit: number): Promise<Block[]> {
    const { head } = this.chain();
    const to = Math.min(head.index, from + Math.min(limit, MAX_CHAIN_PAGE) - 1);
    const out: Block[] = [];
    for await (const page of this.store.readPages(from, to)) out.push(...this.#open(page));
    return out;
  }

  // A page's blocks, opened (authenticated, hashed) and decoded; IntegrityError names the block at fault.
  #open(page: ChainPage): Block[] {
    const { ledgerId } = this.chain();
    if ('blocks' in page) {
      const opened = openPage(this.sealer, ledgerId, WHERE, page, 'full');
      if (opened.fail) throw new IntegrityError(opened.fail.message);
      return opened.bodies.map((body, i) => decodeOpened(body, page.blocks[i]!, WHERE));
    }
    // The pack is authenticated whole (one AEAD), once; of its blocks only the ones asked for are hashed and decoded:
    // a property's history takes one block from each of many packs (at 1M blocks, ~100 packs of ~700 blocks), and
    // opening every block of each for a replay ('full': hash, JSON, Merkle root) made one read take seconds.
    const pack = page.pack;
    const key = pack.hashes.at(-1)!;
    let entries = this.#packs.get(key);
    if (!entries) {
      entries = openPack(this.sealer, ledgerId, pack, WHERE);
      this.#packs.set(key, entries);
      if (this.#packs.size > OPENED_PACKS) this.#packs.delete(this.#packs.keys().next().value!);
    }
    const out: Block[] = [];
    for (let h = page.from; h <= page.to; h++) {
      const entry = entries[h - pack.from]!;
      const wrong = packedHashFailure(entry, pack, WHERE);
      if (wrong) throw new IntegrityError(wrong);
      out.push(decodeOpened(entry.body, { height: h, hash: entry.hash, sealed: entry.body }, WHERE));
    }
    return out;
  }

  /** history lists the transactions about property `id`, oldest first; NotFoundError if it is not registered. */
  async history(id: string): Promise<HistoryEntry[]> {
    const rec = this.chain().state.get(id);
    if (!rec) throw new NotFoundError(`property ${id} is not registered`);
    // Its blocks are read a few at a time: one after another, each read waited behind whatever else the thread was
    // doing (a background replay's pages), and a long history took seconds however fast each read was.
    const indexes = rec.blocks;
    const blocks: Block[] = new Array(indexes.length);
    let next = 0;
    const reader = async () => {
      while (next < indexes.length) {
        const i = next++;
        blocks[i] = (await this.blocks(indexes[i]!, 1))[0]!;
      }
    };
    await Promise.all(Array.from({ length: Math.min(HISTORY_READS, indexes.length) }, reader));
    const history: HistoryEntry[] = [];
    for (const block of blocks) {
      for (const tx of block.transactions) {
        if (subjectOf(tx) === id) history.push({ blockIndex: block.index, blockHash: block.hash, transaction: tx });
      }
    }
    return history;
  }

  /** verify re-reads the whole stored chain and checks every block; it reports the first bad one and why. */
  async verify(): Promise<VerifyReport> {
    const { ledgerId, head } = this.chain();
    try {
      const replayed = await replayChain(this.store.readPages(0, head.index), this.sealer, {
        where: WHERE,
        ledgerId,
        expectHead: { height: head.index, hash: head.hash },
      });
      return { ok: true, totalBlocks: replayed!.state.totalBlocks, headHash: replayed!.head.hash };
    } catch (err) {
      if (err instanceof IntegrityError) return { ok: false, reason: err.message };
      throw err;
    }
  }
}

/** subjectOf is the id of the property a transaction is about. */
export function subjectOf(tx: Transaction): string {
  return tx.type === 'register' ? tx.property.id : tx.propertyId;
}
