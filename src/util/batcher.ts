/** Settled is one item's outcome in a flushed batch. */
export type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

/**
 * Batcher is a group commit: items submitted while a flush is running wait and go together in the next flush, so a
 * burst of saves shares one write and one fsync. At most one flush runs at a time; flushes run in submission order.
 */
export class Batcher<T, R> {
  #pending: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  #running: Promise<void> | null = null;

  constructor(
    private readonly flush: (items: T[]) => Promise<Settled<R>[]>,
    private readonly maxBatch = 256,
  ) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      this.#kick();
    });
  }

  /** idle resolves once every submitted item has been flushed. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  #kick(): void {
    if (this.#running || this.#pending.length === 0) return;
    this.#running = this.#drain().finally(() => {
      this.#running = null;
      this.#kick();
    });
  }

  async #drain(): Promise<void> {
    const batch = this.#pending.splice(0, this.maxBatch);
    let results: Settled<R>[];
    try {
      results = await this.flush(batch.map((p) => p.item));
    } catch (error) {
      for (const p of batch) p.reject(error);
      return;
    }
    batch.forEach((p, i) => {
      const r = results[i]!;
      if (r.ok) p.resolve(r.value);
      else p.reject(r.error);
    });
  }
}
