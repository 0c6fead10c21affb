import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { ChainPage } from '../crypto/packs.js';
import type { Sealer } from '../crypto/seal.js';
import { describeError, IntegrityError } from '../errors.js';
import { stateDigest } from '../ledger/state-codec.js';
import type { Logger } from '../log.js';
import { openedPages } from './parallel-open.js';
import { ChainReplayer, type ReplayedChain } from './replay.js';

/** ReplayState is where the full replay behind a checkpoint stands. */
export type ReplayState =
  | { state: 'full' }
  | { state: 'replaying'; checkpoint: number; replayed: number }
  | { state: 'verified'; checkpoint: number; ms: number }
  | { state: 'degraded'; checkpoint: number; reason: string; since: Date }
  | { state: 'stopped'; checkpoint: number };

/** ReplaySource is the chain to replay: the local store's pages, and a way to tell the chain was swapped meanwhile. */
export interface ReplaySource {
  readPages(from: number, to: number): AsyncIterable<ChainPage>;
  /** current is false once the chain being replayed is no longer the running one (a restore replaced it). */
  current(): boolean;
}

/**
 * BackgroundReplay finishes the verification of a chain restored from a checkpoint (ReplayedChain.checkpoint): it
 * replays the stored chain from block 0 to the checkpoint's block in full (every block opened, hashed, linked,
 * its Merkle root and transactions checked, the world state rebuilt) and compares the state's digest with the one
 * the checkpoint recorded. It runs beside serving, a page at a time, yielding to the event loop between pages.
 * A failure marks the ledger degraded through `onDegraded` (writes are refused until an operator acts). A chain
 * swapped while it runs (a restore) stops it without a verdict: the new chain has its own.
 */
export class BackgroundReplay {
  #state: ReplayState;
  #stopped = false;
  readonly done: Promise<ReplayState>;

  constructor(
    chain: ReplayedChain,
    private readonly source: ReplaySource,
    private readonly sealer: Sealer,
    private readonly log: Logger,
    private readonly onDegraded: (reason: string) => void,
    /** begin resolves when the replay may start (once serving began); it starts at once without it. */
    private readonly begin: Promise<void> = Promise.resolve(),
  ) {
    const cp = chain.checkpoint;
    this.#state = cp ? { state: 'replaying', checkpoint: cp.height, replayed: 0 } : { state: 'full' };
    this.done = cp ? this.#run(chain, cp) : Promise.resolve(this.#state);
  }

  get state(): ReplayState {
    return this.#state;
  }

  /** stop ends the replay at the next page, without a verdict. */
  stop(): void {
    this.#stopped = true;
  }

  async #run(chain: ReplayedChain, cp: NonNullable<ReplayedChain['checkpoint']>): Promise<ReplayState> {
    const started = performance.now();
    const where = 'the local store (replay from block 0)';
    const replayer = new ChainReplayer(this.sealer, where, chain.ledgerId);
    const gone = () => this.#stopped || !this.source.current();
    try {
      // Let startup finish and serving begin before the first page.
      await this.begin;
      await yieldToEventLoop();
      for await (const { page, opened } of openedPages(
        this.source.readPages(0, cp.height),
        this.sealer,
        where,
        chain.ledgerId,
        {
          expectedBlocks: cp.height + 1,
        },
      )) {
        if (gone()) return this.#stop(cp.height);
        replayer.pushPage(page, opened);
        if (this.#state.state === 'replaying') this.#state.replayed = replayer.state.height + 1;
        await yieldToEventLoop();
      }
      if (gone()) return this.#stop(cp.height);
      const replayed = replayer.finish({ height: cp.height, hash: cp.hash })!;
      const digest = stateDigest(replayed.state);
      if (cp.summary && (digest !== cp.summary.digest || replayed.state.totalProperties !== cp.summary.properties)) {
        throw new IntegrityError(
          `the world state replayed from block 0 to block ${cp.height} (${replayed.state.totalProperties} properties, digest ${digest.slice(0, 16)}) differs from the checkpoint's (${cp.summary.properties} properties, digest ${cp.summary.digest.slice(0, 16)})`,
        );
      }
      const ms = Math.round(performance.now() - started);
      this.#state = { state: 'verified', checkpoint: cp.height, ms };
      this.log.info(
        { checkpoint: cp.height, ms },
        `Background replay verified blocks 0..${cp.height} from block 0 in ${ms} ms: the checkpoint's state matches`,
      );
      return this.#state;
    } catch (err) {
      if (gone()) return this.#stop(cp.height);
      if (!(err instanceof IntegrityError)) {
        // Not a verdict on the chain (the disk failed a read): say so, and leave the ledger as it is.
        this.log.error({ err: describeError(err) }, `Background replay could not finish: ${describeError(err)}`);
        return this.#stop(cp.height);
      }
      const reason = `the full replay behind the checkpoint at block ${cp.height} failed: ${err.message}`;
      this.#state = { state: 'degraded', checkpoint: cp.height, reason, since: new Date() };
      this.log.error({ checkpoint: cp.height, err: err.message }, `LEDGER DEGRADED: ${reason}; writes are refused`);
      this.onDegraded(reason);
      return this.#state;
    }
  }

  #stop(checkpoint: number): ReplayState {
    this.#state = { state: 'stopped', checkpoint };
    return this.#state;
  }
}
