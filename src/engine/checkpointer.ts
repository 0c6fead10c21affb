import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { sealCheckpointBeside, type SealedCheckpoint } from '../crypto/checkpoints.js';
import type { Sealer } from '../crypto/seal.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ReplayedChain } from './replay.js';

/** CheckpointSink is where checkpoints are kept first: the local store. */
export interface CheckpointSink {
  putCheckpoint(cp: SealedCheckpoint): Promise<unknown>;
}

/** CheckpointerOptions tune when checkpoints are taken. */
export interface CheckpointerOptions {
  /** everyBlocks is the most blocks between checkpoints (LEDGER_CHECKPOINT_BLOCKS). */
  everyBlocks: number;
  /**
   * share bounds the time spent on checkpoints: the next is taken no sooner than the last one's cost divided by it
   * after it (0.02: at most 2% of the time), so a large state is checkpointed less often. @default 0.02
   */
  share?: number;
}

/**
 * Checkpointer takes a sealed checkpoint of the world state (crypto/checkpoints.ts) after a save, every `everyBlocks`
 * blocks at most and never more than `share` of the time, keeps it in the local store and then asks the tiers to
 * take it (`onTaken`: the replicators carry the newest checkpoint along). The state is read as a snapshot between
 * saves, which go on meanwhile: a checkpoint never holds a save up. A restore then replays only the blocks after the
 * newest checkpoint. One checkpoint is taken at a time; a failure is logged and tried again at a later save.
 */
export class Checkpointer {
  #last: number;
  #nextAt = 0;
  #running: Promise<void> | null = null;
  readonly #share: number;

  constructor(
    private readonly deps: {
      sealer: Sealer;
      log: Logger;
      store: CheckpointSink;
      chain: () => ReplayedChain;
      onTaken: () => void;
    },
    private readonly options: CheckpointerOptions,
    /** last is the height of the newest checkpoint already kept (-1: none). */
    last = -1,
  ) {
    this.#last = last;
    this.#share = options.share ?? 0.02;
  }

  /** newest is the height of the newest checkpoint taken or known (-1: none). */
  get newest(): number {
    return this.#last;
  }

  /** afterSave takes a checkpoint if one is due; it returns at once (the checkpoint is taken beside saves). */
  afterSave(): void {
    const chain = this.deps.chain();
    if (this.#running || chain.head.index - this.#last < this.options.everyBlocks) return;
    if (performance.now() < this.#nextAt) return;
    this.#running = this.#take(chain).finally(() => (this.#running = null));
  }

  /** takeNow takes a checkpoint of the running chain now, due or not, and resolves once it is kept (or failed). */
  async takeNow(): Promise<void> {
    while (this.#running) await this.#running;
    const chain = this.deps.chain();
    if (chain.head.index === this.#last) return;
    this.#running = this.#take(chain).finally(() => (this.#running = null));
    await this.#running;
  }

  /** idle resolves once no checkpoint is being taken. */
  async idle(): Promise<void> {
    await this.#running;
  }

  async #take(chain: ReplayedChain): Promise<void> {
    const started = performance.now();
    try {
      const cp = await sealCheckpointBeside(this.deps.sealer, chain.ledgerId, chain.head.hash, chain.state, () =>
        yieldToEventLoop(),
      );
      // A restore replaced the chain meanwhile: this checkpoint is of a chain no longer served.
      if (this.deps.chain() !== chain) return;
      await this.deps.store.putCheckpoint(cp);
      const ms = performance.now() - started;
      this.#last = cp.height;
      this.#nextAt = performance.now() + ms / this.#share;
      this.deps.log.info(
        {
          height: cp.height,
          parts: cp.parts.length,
          bytes: cp.parts.reduce((n, p) => n + p.length, 0),
          ms: Math.round(ms),
        },
        `Checkpoint of the world state at block ${cp.height} kept (${chain.state.totalProperties} properties, ${Math.round(ms)} ms): a restore replays only the blocks after it`,
      );
      this.deps.onTaken();
    } catch (err) {
      this.#nextAt = performance.now() + 60_000;
      this.deps.log.warn(
        { err: describeError(err) },
        `Checkpoint not taken: ${describeError(err)}; trying again later`,
      );
    }
  }
}
