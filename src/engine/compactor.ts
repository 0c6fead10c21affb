import type { ChainPage, PackEntry, SealedPack } from '../crypto/packs.js';
import { sealPack } from '../crypto/packs.js';
import type { Sealer } from '../crypto/seal.js';
import { openBody } from '../crypto/sealed-blocks.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';

/** PackStore is what the compactor needs of the local store. */
export interface PackStore {
  readonly ledgerId: string | null;
  readonly height: number;
  /** packedThrough is the highest height H such that blocks 0..H are all held in packs (-1: none). */
  packedThrough(): number;
  readPages(from: number, to: number): AsyncIterable<ChainPage>;
  putPack(ledgerId: string, pack: SealedPack): Promise<unknown>;
}

/** CompactorOptions tune compaction. */
export interface CompactorOptions {
  /** packBytes is the size of the block bodies a pack gathers (LEDGER_PACK_BYTES). @default 512 KiB */
  packBytes?: number;
  /** keepLoose is how many of the newest blocks stay loose (sealed one by one) however many there are. @default 256 */
  keepLoose?: number;
}

/**
 * Compactor packs settled blocks (all but the newest keepLoose) of the local store into packs of about packBytes of
 * bodies, oldest first: it reads the loose blocks after the last pack, opens them, seals them as one pack and has the
 * store replace them (inside `exclusive`, where no save interleaves with the store's write), then asks the tiers to
 * take the pack (`onPacked`: the replicators carry packs along). A save stays one loose block: its cost does not
 * change, and a restore reads a few large objects instead of one per block. One compaction runs at a time; a failure
 * is logged and tried again at a later save.
 */
export class Compactor {
  #running: Promise<void> | null = null;
  #retryAt = 0;
  readonly #packBytes: number;
  readonly #keepLoose: number;

  constructor(
    private readonly deps: {
      sealer: Sealer;
      log: Logger;
      store: PackStore;
      exclusive: <T>(fn: () => Promise<T>) => Promise<T>;
      onPacked: () => void;
      /** averageBlockBytes estimates a block's stored size, to tell when enough loose blocks wait for a pack. */
      averageBlockBytes: () => number;
    },
    options: CompactorOptions = {},
  ) {
    this.#packBytes = options.packBytes ?? 512 * 1024;
    this.#keepLoose = options.keepLoose ?? 256;
  }

  /** afterSave starts a compaction if enough settled blocks wait loose; it returns at once. */
  afterSave(): void {
    if (this.#running || performance.now() < this.#retryAt || this.#waiting() < 1) return;
    this.#running = this.#run().finally(() => (this.#running = null));
  }

  /** compactNow packs every settled loose block that fills a pack, and resolves when done. */
  async compactNow(): Promise<void> {
    while (this.#running) await this.#running;
    this.#running = this.#run().finally(() => (this.#running = null));
    await this.#running;
  }

  /** idle resolves once no compaction runs. */
  async idle(): Promise<void> {
    await this.#running;
  }

  // How many packs' worth of settled blocks wait loose, by the average block size.
  #waiting(): number {
    const { store } = this.deps;
    const settled = store.height - this.#keepLoose - store.packedThrough();
    return (settled * Math.max(1, this.deps.averageBlockBytes())) / this.#packBytes;
  }

  async #run(): Promise<void> {
    const { store, sealer, log } = this.deps;
    const ledgerId = store.ledgerId;
    if (ledgerId === null) return;
    try {
      let packs = 0;
      let blocks = 0;
      const started = performance.now();
      const from = store.packedThrough() + 1;
      const to = store.height - this.#keepLoose;
      let entries: PackEntry[] = [];
      let bytes = 0;
      const seal = async () => {
        const pack = sealPack(sealer, ledgerId, entries);
        // The store swapped chains meanwhile (a restore): stop, the next save starts over.
        if (store.ledgerId !== ledgerId) throw new Error('the local chain changed during compaction');
        await this.deps.exclusive(() => store.putPack(ledgerId, pack));
        packs++;
        blocks += entries.length;
        entries = [];
        bytes = 0;
      };
      for await (const page of store.readPages(from, to)) {
        if ('pack' in page) {
          // A pack already there (taken from a tier): what was gathered before it goes as a pack of its own.
          if (entries.length > 0) await seal();
          continue;
        }
        for (const b of page.blocks) {
          const body = openBody(sealer, ledgerId, b, 'the local store');
          entries.push({ height: b.height, hash: b.hash, body });
          bytes += body.length;
          if (bytes >= this.#packBytes) await seal();
        }
      }
      if (packs === 0) return;
      const ms = Math.round(performance.now() - started);
      log.info(
        { packs, blocks, packedThrough: store.packedThrough(), ms },
        `Compacted ${blocks} settled blocks into ${packs} pack(s) in ${ms} ms, up to block ${store.packedThrough()}`,
      );
      this.deps.onPacked();
    } catch (err) {
      this.#retryAt = performance.now() + 60_000;
      log.warn({ err: describeError(err) }, `Compaction stopped: ${describeError(err)}; trying again later`);
    }
  }
}
