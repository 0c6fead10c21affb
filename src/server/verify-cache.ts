import type { VerifyReport } from '../service/ledger.js';

/** VerifySource is what the cache needs of the ledger: a full verification, and the head it would verify now. */
export interface VerifySource {
  verify(): Promise<VerifyReport>;
  /** headHash is the hash of the head block now; a new one means a new chain to verify. */
  headHash(): string;
}

interface Run {
  head: string;
  report: Promise<VerifyReport>;
}

/**
 * VerifyCache bounds what GET /chain/verify costs, whoever calls it and however often: it runs at most one full
 * verification at a time (callers that arrive while one runs share it: single-flight) and reuses its result while
 * the head is unchanged and the result younger than `maxAgeMs`. The age limit is what still catches damage at rest
 * (a stored block altered with no new save): at most one verification per `maxAgeMs` per head, which no caller can
 * make more frequent. A verification that throws is not kept: the next caller starts another.
 */
export class VerifyCache {
  #running: Run | null = null;
  #last: { head: string; report: VerifyReport; at: number } | null = null;

  constructor(
    private readonly source: VerifySource,
    private readonly maxAgeMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** report answers with a verification of the current head (or of a later one), started at most maxAgeMs ago. */
  async report(): Promise<VerifyReport> {
    for (;;) {
      const head = this.source.headHash();
      const last = this.#last;
      if (last && last.head === head && this.now() - last.at < this.maxAgeMs) return last.report;
      const running = this.#running;
      if (!running) return this.#start(head).report;
      // A run of this head (or a later one, if a save landed since we read it) answers us too.
      if (running.head === head) return running.report;
      // The run under way checks an older head: wait for it, never run two at once, then look again.
      await running.report.catch(() => undefined);
    }
  }

  #start(head: string): Run {
    const at = this.now();
    const run: Run = {
      head,
      report: this.source
        .verify()
        .then((report) => {
          this.#last = { head, report, at };
          return report;
        })
        .finally(() => {
          if (this.#running === run) this.#running = null;
        }),
    };
    this.#running = run;
    return run;
  }
}
