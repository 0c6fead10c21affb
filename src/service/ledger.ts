import { mkdir } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { loadConfig, type Config } from '../config.js';
import { resolveKey } from '../crypto/key-source.js';
import { Sealer } from '../crypto/seal.js';
import { ConflictError, IntegrityError, NotFoundError, UnavailableError } from '../errors.js';
import { makeBlock } from '../ledger/block.js';
import { WorldState } from '../ledger/state.js';
import { parseRegister, parseTransfer, parseUpdate } from '../ledger/transactions.js';
import type { Block, Property, Transaction } from '../ledger/types.js';
import { silentLogger, type Logger } from '../log.js';
import { readExport, writeExport } from '../store/export-file.js';
import { LocalStore } from '../store/local-store.js';
import { lockDir, type DirLock } from '../store/lock.js';
import { Batcher, type Settled } from './batcher.js';
import { replayChain } from './replay.js';
import { openBlock, sealBlock } from './sealed-blocks.js';

/** OpenLedgerOptions configure openLedger; everything defaults from the environment. */
export interface OpenLedgerOptions {
  config?: Config;
  logger?: Logger;
  /** readOnly opens without the write lock and without repairing a torn tail, for reads beside a running server. */
  readOnly?: boolean;
  /** now supplies timestamps (tests pin it). @default () => new Date() */
  now?: () => Date;
}

/** SaveResult is what a mutation returns once it is durable. */
export interface SaveResult {
  block: Block;
  property: Property;
}

/** HistoryEntry is one transaction about a property, with the block that holds it. */
export interface HistoryEntry {
  blockIndex: number;
  blockHash: string;
  transaction: Transaction;
}

/** TierStatus is one storage tier's state, as status reports it. */
export interface TierStatus {
  name: string;
  state: 'ok' | 'lagging' | 'down' | 'off';
  height: number;
  detail?: string;
}

/** LedgerStatus is the ledger's summary. */
export interface LedgerStatus {
  ledgerId: string;
  height: number;
  headHash: string;
  totalBlocks: number;
  totalProperties: number;
  keyId: string;
  tiers: TierStatus[];
}

/** VerifyReport is the result of re-reading and checking the whole stored chain. */
export type VerifyReport = { ok: true; totalBlocks: number; headHash: string } | { ok: false; reason: string };

const MAX_CHAIN_PAGE = 1000;

/**
 * Ledger is pawledger's service object: the property ledger over its local store. The CLI, the HTTP server and
 * library users all go through it. Saves are serialized and group-committed: each becomes a block, sealed, appended
 * and fsync'd before its promise resolves.
 */
export class Ledger {
  readonly log: Logger;
  readonly #store: LocalStore;
  readonly #sealer: Sealer;
  readonly #lock: DirLock | null;
  readonly #now: () => Date;
  #ledgerId: string;
  #head: Block;
  #state: WorldState;
  #failed: Error | null = null;
  readonly #saves: Batcher<Transaction, Block>;

  private constructor(init: {
    store: LocalStore; sealer: Sealer; lock: DirLock | null; log: Logger; now: () => Date;
    ledgerId: string; head: Block; state: WorldState;
  }) {
    this.#store = init.store;
    this.#sealer = init.sealer;
    this.#lock = init.lock;
    this.log = init.log;
    this.#now = init.now;
    this.#ledgerId = init.ledgerId;
    this.#head = init.head;
    this.#state = init.state;
    this.#saves = new Batcher((txs) => this.#commit(txs));
  }

  /**
   * open restores the ledger from its local store, or creates a genesis block when the store is empty. A store that
   * does not decrypt or verify throws IntegrityError: it is never silently replaced.
   */
  static async open(options: OpenLedgerOptions = {}): Promise<Ledger> {
    const config = options.config ?? loadConfig();
    const log = options.logger ?? silentLogger();
    const now = options.now ?? (() => new Date());
    const dir = resolvePath(config.dataDir);
    const started = performance.now();
    if (!options.readOnly) await mkdir(dir, { recursive: true, mode: 0o700 });
    const lock = options.readOnly ? null : await lockDir(dir, `the ledger in ${dir}`);
    try {
      const sealer = new Sealer(await resolveKey(config, log, { generate: !options.readOnly }));
      const { store, report } = await LocalStore.open(dir, { segmentBytes: config.segmentBytes, readOnly: options.readOnly });
      if (report.tornBytes > 0) {
        log.warn({ tornBytes: report.tornBytes }, `Local store: cut a torn final record (${report.tornBytes} bytes) left by a crash; no acknowledged save is affected`);
      }
      log.info({ source: 'local', dir }, `Restoring ledger: trying local store ${dir}`);
      const replayed = await replayChain(store.read(), sealer, { where: `local store ${dir}` });
      if (replayed) {
        const ms = Math.round(performance.now() - started);
        log.info(
          { source: 'local', totalBlocks: replayed.state.totalBlocks, totalProperties: replayed.state.totalProperties, ms },
          `Ledger restored from local store in ${ms} ms: ${replayed.state.totalBlocks} blocks, ${replayed.state.totalProperties} properties`,
        );
        return new Ledger({ store, sealer, lock, log, now, ...replayed });
      }
      if (options.readOnly) throw new NotFoundError(`no ledger in ${dir}`, { hint: 'Start `pawledger serve` once to create one' });
      const genesis = makeBlock(null, [], now().toISOString());
      const ledgerId = genesis.block.hash;
      await store.append(ledgerId, [sealBlock(sealer, ledgerId, genesis)]);
      const state = new WorldState();
      state.apply(genesis.block);
      log.info({ source: 'genesis', ledgerId }, 'No ledger found: created a new genesis block (fresh deployment)');
      return new Ledger({ store, sealer, lock, log, now, ledgerId, head: genesis.block, state });
    } catch (err) {
      await lock?.release();
      throw err;
    }
  }

  get ledgerId(): string {
    return this.#ledgerId;
  }

  get head(): Block {
    return this.#head;
  }

  /** register adds a new property. Input is checked field by field (ValidationError names the field). */
  async register(input: unknown): Promise<SaveResult> {
    return this.#save(parseRegister(input, this.#now().toISOString()));
  }

  /** update changes an existing property's name, address or attributes. */
  async update(id: string, input: unknown): Promise<SaveResult> {
    return this.#save(parseUpdate(id, input, this.#now().toISOString()));
  }

  /** transfer moves a property from its current owner (`from`) to `to`. */
  async transfer(id: string, input: unknown): Promise<SaveResult> {
    return this.#save(parseTransfer(id, input, this.#now().toISOString()));
  }

  async #save(tx: Transaction): Promise<SaveResult> {
    const block = await this.#saves.submit(tx);
    const id = tx.type === 'register' ? tx.property.id : tx.propertyId;
    return { block, property: this.#state.get(id)!.property };
  }

  // One flush of the group commit: each transaction that passes becomes a block; all go in one append and fsync.
  async #commit(txs: Transaction[]): Promise<Settled<Block>[]> {
    if (this.#failed) throw this.#failed;
    const results: Settled<Block>[] = [];
    const accepted: Transaction[] = [];
    const encoded = [];
    let previous = this.#head;
    for (const tx of txs) {
      try {
        this.#state.check([...accepted, tx]);
      } catch (error) {
        results.push({ ok: false, error });
        continue;
      }
      accepted.push(tx);
      const enc = makeBlock(previous, [tx], this.#now().toISOString());
      encoded.push(enc);
      previous = enc.block;
      results.push({ ok: true, value: enc.block });
    }
    if (encoded.length === 0) return results;
    const sealed = encoded.map((e) => sealBlock(this.#sealer, this.#ledgerId, e));
    try {
      const { bytesWritten } = await this.#store.append(this.#ledgerId, sealed);
      for (const e of encoded) this.#state.apply(e.block);
      this.#head = previous;
      this.log.info(
        { height: previous.index, blocks: encoded.length, bytes: bytesWritten },
        `Ledger saved to local store: block ${previous.index} (${encoded.length} new, ${bytesWritten} bytes, fsync'd)`,
      );
    } catch (cause) {
      // After a failed write or fsync the file's state is unknown: refuse further saves until a restart re-reads it.
      this.#failed = new UnavailableError('the local store failed a write; restart pawledger to re-check it', { cause });
      this.log.error({ err: cause }, 'Local store write failed: saves are refused until restart');
      throw this.#failed;
    }
    return results;
  }

  /** properties lists every property's current state, sorted by id. */
  properties(): Property[] {
    return this.#state.list();
  }

  /** property returns a property's current state and its history, oldest first. */
  async property(id: string): Promise<{ property: Property; history: HistoryEntry[] }> {
    const rec = this.#state.get(id);
    if (!rec) throw new NotFoundError(`property ${id} is not registered`);
    const history: HistoryEntry[] = [];
    for (const index of rec.blocks) {
      const [block] = await this.chain(index, 1);
      for (const tx of block!.transactions) {
        if ((tx.type === 'register' ? tx.property.id : tx.propertyId) === id) {
          history.push({ blockIndex: block!.index, blockHash: block!.hash, transaction: tx });
        }
      }
    }
    return { property: rec.property, history };
  }

  /** chain returns up to `limit` blocks (at most 1000) starting at height `from`. */
  async chain(from = 0, limit = 100): Promise<Block[]> {
    const to = Math.min(this.#head.index, from + Math.min(limit, MAX_CHAIN_PAGE) - 1);
    const blocks: Block[] = [];
    for await (const stored of this.#store.read(from, to)) blocks.push(openBlock(this.#sealer, this.#ledgerId, stored, 'the local store'));
    return blocks;
  }

  /** verify re-reads the whole stored chain and checks every block; it reports the first bad one and why. */
  async verify(): Promise<VerifyReport> {
    try {
      const replayed = await replayChain(this.#store.read(0, this.#head.index), this.#sealer, {
        where: 'the local store',
        ledgerId: this.#ledgerId,
        expectHead: { height: this.#head.index, hash: this.#head.hash },
      });
      return { ok: true, totalBlocks: replayed!.state.totalBlocks, headHash: replayed!.head.hash };
    } catch (err) {
      if (err instanceof IntegrityError) return { ok: false, reason: err.message };
      throw err;
    }
  }

  status(): LedgerStatus {
    return {
      ledgerId: this.#ledgerId,
      height: this.#head.index,
      headHash: this.#head.hash,
      totalBlocks: this.#state.totalBlocks,
      totalProperties: this.#state.totalProperties,
      keyId: this.#sealer.keyId,
      tiers: [{ name: 'local', state: this.#failed ? 'down' : 'ok', height: this.#store.height, detail: this.#store.dir }],
    };
  }

  /** exportTo writes the whole chain as one sealed file, atomically. */
  async exportTo(path: string): Promise<{ bytes: number; totalBlocks: number }> {
    const head = { ledgerId: this.#ledgerId, height: this.#head.index, hash: this.#head.hash };
    const { bytes } = await writeExport(path, head, this.#store.read(0, head.height), this.#sealer);
    this.log.info({ path, bytes, totalBlocks: head.height + 1 }, `Ledger exported to ${path}: ${head.height + 1} blocks, ${bytes} bytes`);
    return { bytes, totalBlocks: head.height + 1 };
  }

  /**
   * importFrom reads an export file, verifies it in full, and makes it the ledger. A chain that does not extend the
   * current one (another ledger, or a rollback) is refused unless `force` is set.
   */
  async importFrom(path: string, options: { force?: boolean } = {}): Promise<{ totalBlocks: number }> {
    await this.#saves.idle();
    const { head, blocks } = await readExport(path, this.#sealer);
    const replayed = await replayChain(blocks, this.#sealer, { where: path, ledgerId: head.ledgerId, expectHead: head });
    if (!replayed) throw new IntegrityError(`${path} holds no blocks`);
    const extends_ = replayed.ledgerId === this.#ledgerId && blocks[this.#head.index]?.hash === this.#head.hash;
    if (!extends_ && !options.force) {
      throw new ConflictError(
        `${path} holds ${replayed.ledgerId === this.#ledgerId ? 'a chain that does not extend' : 'another ledger than'} the current one (block ${this.#head.index}); importing would discard blocks`,
      );
    }
    await this.#store.replace(replayed.ledgerId, blocks);
    this.#ledgerId = replayed.ledgerId;
    this.#head = replayed.head;
    this.#state = replayed.state;
    this.log.info({ path, totalBlocks: replayed.state.totalBlocks }, `Ledger imported from ${path}: ${replayed.state.totalBlocks} blocks, ${replayed.state.totalProperties} properties`);
    return { totalBlocks: replayed.state.totalBlocks };
  }

  /** close finishes in-flight saves, closes files and releases the write lock. */
  async close(): Promise<void> {
    await this.#saves.idle();
    await this.#store.close();
    await this.#lock?.release();
  }
}
