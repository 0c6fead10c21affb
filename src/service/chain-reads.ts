import type { Sealer } from '../crypto/seal.js';
import { IntegrityError, NotFoundError } from '../errors.js';
import type { Block, Transaction } from '../ledger/types.js';
import type { LocalStore } from '../store/local-store.js';
import type { HistoryEntry, VerifyReport } from './ledger-types.js';
import type { ReplayedChain } from '../engine/replay.js';
import { replayChain } from '../engine/replay.js';
import { openBlock } from '../crypto/sealed-blocks.js';

/** MAX_CHAIN_PAGE is the most blocks one chain read returns. */
export const MAX_CHAIN_PAGE = 1000;

/** ChainReader answers the Ledger's reads of stored blocks: pages of the chain, a property's history, a full verify. */
export class ChainReader {
  constructor(
    private readonly store: LocalStore,
    private readonly sealer: Sealer,
    private readonly chain: () => ReplayedChain,
  ) {}

  /** blocks returns up to `limit` blocks (at most MAX_CHAIN_PAGE) from height `from`, decrypted and checked. */
  async blocks(from: number, limit: number): Promise<Block[]> {
    const { head, ledgerId } = this.chain();
    const to = Math.min(head.index, from + Math.min(limit, MAX_CHAIN_PAGE) - 1);
    const out: Block[] = [];
    for await (const stored of this.store.read(from, to))
      out.push(openBlock(this.sealer, ledgerId, stored, 'the local store'));
    return out;
  }

  /** history lists the transactions about property `id`, oldest first; NotFoundError if it is not registered. */
  async history(id: string): Promise<HistoryEntry[]> {
    const rec = this.chain().state.get(id);
    if (!rec) throw new NotFoundError(`property ${id} is not registered`);
    const history: HistoryEntry[] = [];
    for (const index of rec.blocks) {
      const [block] = await this.blocks(index, 1);
      for (const tx of block!.transactions) {
        if (subjectOf(tx) === id) history.push({ blockIndex: block!.index, blockHash: block!.hash, transaction: tx });
      }
    }
    return history;
  }

  /** verify re-reads the whole stored chain and checks every block; it reports the first bad one and why. */
  async verify(): Promise<VerifyReport> {
    const { ledgerId, head } = this.chain();
    try {
      const replayed = await replayChain(this.store.readPages(0, head.index), this.sealer, {
        where: 'the local store',
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
