import { hash } from 'node:crypto';
import { pageHashes } from '../crypto/packs.js';
import type { ReplayedChain } from '../engine/replay.js';
import { IntegrityError, NotFoundError, UnavailableError, ValidationError } from '../errors.js';
import {
  appendLeaf,
  chainRoot,
  consistencyPath,
  inclusionPath,
  leafOf,
  nodeCount,
  type NodeSource,
  type Peak,
  peaksFrom,
  positionOf,
  rootAfter,
  rootOfPeaks,
  sizeOfPeaks,
  subtreeRoot,
} from '../ledger/accumulator.js';
import { canonicalJson } from '../ledger/canonical.js';
import {
  CONSISTENCY_FORMAT,
  PROOF_FORMAT,
  type ConsistencyProof,
  type ProofBlock,
  type PropertyProof,
} from '../ledger/proof-verifier.js';
import type { Logger } from '../log.js';
import { AccumulatorFile } from '../store/accumulator-file.js';
import type { LocalStore } from '../store/local-store.js';
import { type ChainReader, subjectOf } from './chain-reads.js';

/** MAX_PROOF_BLOCKS is the most blocks one proof holds; a longer history is proven a page at a time (`from`). */
export const MAX_PROOF_BLOCKS = 100;

/**
 * QUICK_CATCH_UP is the most leaves a catch-up hashes before start() resolves (tens of milliseconds): a node file
 * left level by a clean stop is ready before the first save; a longer rebuild goes on in the background.
 */
export const QUICK_CATCH_UP = 10_000;

/** ProofsState says whether proofs can be made: the node file is level with the chain, or being rebuilt. */
export type ProofsState = 'building' | 'ready' | 'off';

const hex = (nodes: Buffer[]) => nodes.map((n) => n.toString('hex'));

/**
 * ChainProofs keeps the chain's accumulator level with the running chain and makes proofs from it. At open it takes
 * the node file as it is when it was closed cleanly and still matches the chain, else rebuilds it in the background
 * from the block hashes (which the local store holds in the clear: nothing is decrypted); a restore swaps the chain
 * and does the same. Until it is level, proofs answer UnavailableError (503 with Retry-After), and a backup record
 * (a save's, a named one, a tier's catch-up) waits for it, so every record carries the root. Each save appends its blocks' leaves: O(log n) hashing, a write with no fsync.
 */
export class ChainProofs {
  #file: AccumulatorFile | null = null;
  #peaks: Peak[] = [];
  #size = 0;
  #state: ProofsState;
  #generation = 0;
  #work: Promise<void> = Promise.resolve();
  /** rebuilt counts the leaves the last catch-up had to hash from the chain (0 when the file was level). */
  rebuilt = 0;

  constructor(
    private readonly store: LocalStore,
    private readonly reader: ChainReader,
    private readonly chain: () => ReplayedChain,
    private readonly log: Logger,
    readOnly: boolean,
  ) {
    this.#state = readOnly ? 'off' : 'building';
  }

  /** state is 'ready' when proofs can be made. */
  get state(): ProofsState {
    return this.#state;
  }

  /** ready resolves when the current catch-up ends (ready, or given up: see state). */
  ready(): Promise<void> {
    return this.#work;
  }

  /**
   * start brings the accumulator level with the running chain (at open, after a restore). It resolves once it is
   * level, or once the catch-up is found longer than QUICK_CATCH_UP leaves (it then goes on in the background); it
   * never rejects (a failure is logged, and proofs answer 503).
   */
  start(): Promise<void> {
    if (this.#state === 'off') return Promise.resolve();
    const generation = ++this.#generation;
    this.#state = 'building';
    let decided!: () => void;
    const quick = new Promise<void>((resolve) => (decided = resolve));
    this.#work = this.#work
      .then(() => this.#catchUp(generation, decided))
      .catch((err: unknown) => {
        if (generation !== this.#generation) return;
        this.#state = 'building';
        this.log.error({ err }, 'Proofs: the accumulator could not be built; proofs answer 503 until a restart');
      })
      .finally(decided);
    return quick;
  }

  async #catchUp(generation: number, long: () => void): Promise<void> {
    const { ledgerId } = this.chain();
    const first = this.#file === null;
    this.#file ??= await AccumulatorFile.open(this.store.dir, ledgerId);
    const file = this.#file;
    // What this process wrote or found whole; the first leaf that differs from the chain's voids it and all above.
    let trusted = first ? file.trustedLeaves : this.#size;
    const height = this.chain().head.index;
    trusted = Math.min(trusted, height + 1);
    if (trusted > 0) {
      const stored = await file.node(positionOf(0, trusted - 1));
      if (!stored.equals(leafOf((await this.store.hashAt(trusted - 1)) ?? '00'.repeat(32)))) trusted = 0;
    }
    await file.truncate(nodeCount(trusted), ledgerId);
    this.#peaks = await peaksFrom(file, trusted);
    this.#size = trusted;
    const from = trusted;
    if (height + 1 - trusted > QUICK_CATCH_UP) long();
    for (;;) {
      if (generation !== this.#generation) return;
      const target = this.chain().head.index + 1;
      if (this.#size >= target) break;
      for await (const page of this.store.readPages(this.#size, target - 1)) {
        if (generation !== this.#generation) return;
        for (const h of pageHashes(page)) file.append(appendLeaf(this.#peaks, leafOf(h)));
        this.#size += pageHashes(page).length;
        await file.flushed();
      }
    }
    this.rebuilt = this.#size - from;
    this.#state = 'ready';
    if (this.rebuilt > 0)
      this.log.info(
        { leaves: this.rebuilt, height: this.#size - 1 },
        'Proofs: the accumulator is level with the chain',
      );
  }

  // Level with the running chain. A chain that grew by another way than a save (a standby following the writer)
  // is not: the accumulator catches up in the background, and is not used meanwhile.
  #level(): boolean {
    if (this.#state !== 'ready') return false;
    if (this.#size === this.chain().head.index + 1) return true;
    void this.start();
    return false;
  }

  /** rootAfter is the accumulator's root (hex) once `hashes` follow the head, or undefined while it is not level. */
  rootAfter(hashes: readonly string[]): string | undefined {
    if (!this.#level()) return undefined;
    return chainRoot(this.#size + hashes.length, rootAfter(this.#peaks, hashes)!).toString('hex');
  }

  // Brings the accumulator level with the running chain, waiting for a catch-up under way (or starting one: a record
  // made during open comes before start()). False when it cannot be (read-only, or the catch-up keeps failing).
  async #leveled(): Promise<boolean> {
    for (let tries = 0; tries < 3; tries++) {
      if (this.#state === 'off') return false;
      if (this.#level()) return true;
      if (this.#generation === 0) void this.start();
      await this.#work;
    }
    return this.#level();
  }

  /**
   * levelRootAfter is rootAfter once the accumulator is level: every backup record carries the root, so a record made
   * while it is rebuilt (after a restore, an unclean stop, a new ledger's first record) waits for the rebuild.
   */
  async levelRootAfter(hashes: readonly string[]): Promise<string | undefined> {
    return (await this.#leveled()) ? this.rootAfter(hashes) : undefined;
  }

  /** levelRootAt is rootAt once the accumulator is level (see levelRootAfter). */
  async levelRootAt(height: number): Promise<string | undefined> {
    return (await this.#leveled()) ? this.rootAt(height) : undefined;
  }

  /** appended takes the leaves of blocks just saved after the head (a no-op while a catch-up runs: it takes them). */
  appended(hashes: readonly string[]): void {
    if (this.#state !== 'ready') return;
    if (this.#size + hashes.length !== this.chain().head.index + 1) {
      void this.start();
      return;
    }
    for (const h of hashes) this.#file!.append(appendLeaf(this.#peaks, leafOf(h)));
    this.#size += hashes.length;
  }

  /** rootAt is the root of the chain up to `height` (hex), or undefined while the accumulator is not level. */
  async rootAt(height: number): Promise<string | undefined> {
    if (!this.#level() || height >= this.#size) return undefined;
    if (height === this.#size - 1) return chainRoot(this.#size, rootOfPeaks(this.#peaks)!).toString('hex');
    return chainRoot(height + 1, await subtreeRoot(this.#file!, 0, height + 1)).toString('hex');
  }

  #source(): { nodes: NodeSource; size: number; root: string; generation: number } {
    if (this.#state === 'off')
      throw new UnavailableError('proofs need the ledger opened for writing', {
        hint: 'Ask the running server (pawledger proof goes through it), or run the command with no server running',
      });
    if (!this.#level())
      throw new UnavailableError(
        'proofs are not ready: the chain accumulator is being rebuilt (after a restore or an unclean stop)',
        { hint: 'Retry in a few seconds; if it lasts, the server log says why the accumulator could not be built' },
      );
    return {
      nodes: this.#file!,
      size: this.#size,
      root: chainRoot(sizeOfPeaks(this.#peaks), rootOfPeaks(this.#peaks)!).toString('hex'),
      generation: this.#generation,
    };
  }

  #stillValid(generation: number): void {
    if (generation !== this.#generation) throw new UnavailableError('the chain changed while the proof was made');
  }

  /**
   * proof proves property `id`'s transactions, `limit` blocks (at most MAX_PROOF_BLOCKS) from the `from`-th block of
   * its history, against the current head. It returns the proof and where the next page starts (null at the end).
   */
  async proof(id: string, from = 0, limit = MAX_PROOF_BLOCKS): Promise<{ proof: PropertyProof; next: number | null }> {
    if (!(limit >= 1 && limit <= MAX_PROOF_BLOCKS))
      throw new ValidationError(`limit must be an integer from 1 to ${MAX_PROOF_BLOCKS}`, 'limit');
    const { nodes, size, root, generation } = this.#source();
    const rec = this.chain().state.get(id);
    if (!rec) throw new NotFoundError(`property ${id} is not registered`);
    const history = rec.blocks.filter((i) => i < size);
    if (from >= history.length)
      throw new ValidationError(`from must be below ${history.length}, the blocks in ${id}'s history`, 'from');
    const blocks: ProofBlock[] = [];
    for (const index of history.slice(from, from + limit)) {
      const [block] = await this.reader.blocks(index, 1);
      const { hash: blockHash, merkleRoot, previousHash, timestamp, transactions } = block!;
      // A proof shows no other property's plaintext, and a block's hash covers all of its transactions.
      if (transactions.some((tx) => subjectOf(tx) !== id))
        throw new IntegrityError(`block ${index} holds another property's transaction: it cannot be proven alone`);
      blocks.push({
        hash: blockHash,
        index,
        merkleRoot,
        path: hex(await inclusionPath(nodes, index, size)),
        previousHash,
        timestamp,
        transactions,
        txPaths: await transactionPaths(transactions),
      });
    }
    const headHash = (await this.store.hashAt(size - 1))!;
    const head = { hash: headHash, height: size - 1, path: hex(await inclusionPath(nodes, size - 1, size)), root };
    this.#stillValid(generation);
    const next = from + limit < history.length ? from + limit : null;
    return { proof: { blocks, format: PROOF_FORMAT, head, propertyId: id }, next };
  }

  /** consistency proves that the chain at height `from` is a prefix of the chain at height `to` (the head at most). */
  async consistency(from: number, to: number): Promise<ConsistencyProof> {
    const { nodes, size, generation } = this.#source();
    if (to >= size) throw new ValidationError(`to must be at most the head's height, ${size - 1}`, 'to');
    if (from > to) throw new ValidationError('from must be at most to', 'from');
    const rootOf = async (h: number) => chainRoot(h + 1, await subtreeRoot(nodes, 0, h + 1)).toString('hex');
    const path = from === to ? [] : await consistencyPath(nodes, from + 1, to + 1);
    // A chain root does not give the first tree's root away: a path from a whole subtree starts with it.
    const whole = ((from + 1) & from) === 0;
    if (from < to && whole) path.unshift(await subtreeRoot(nodes, 0, from + 1));
    const proof: ConsistencyProof = {
      format: CONSISTENCY_FORMAT,
      from: { height: from, root: await rootOf(from) },
      path: hex(path),
      to: { height: to, root: await rootOf(to) },
    };
    this.#stillValid(generation);
    return proof;
  }

  /** close stops a catch-up and closes the node file (clean when it is level with the chain). */
  async close(): Promise<void> {
    const wasReady = this.#state === 'ready';
    this.#generation++;
    await this.#work;
    if (!this.#file) return;
    const file = this.#file;
    this.#file = null;
    // The file is derived from the chain: failing to close it cleanly costs a rebuild at the next start, nothing more.
    await (wasReady ? file.close() : file.abandon()).catch((err: unknown) =>
      this.log.warn({ err }, 'Proofs: the node file was not closed cleanly; it is rebuilt at the next start'),
    );
  }
}

// Each transaction's Merkle path to its block's root (the same tree as merkle.ts, over canonical JSON).
async function transactionPaths(transactions: readonly unknown[]): Promise<string[][]> {
  const leaves = transactions.map((tx) =>
    hash('sha256', Buffer.concat([Buffer.from([0]), Buffer.from(canonicalJson(tx))]), 'buffer'),
  );
  const stored: Buffer[] = [];
  const peaks: Peak[] = [];
  for (const leaf of leaves) stored.push(...appendLeaf(peaks, leaf));
  const nodes: NodeSource = { node: async (p) => stored[p]! };
  return Promise.all(leaves.map(async (_, i) => hex(await inclusionPath(nodes, i, leaves.length))));
}
