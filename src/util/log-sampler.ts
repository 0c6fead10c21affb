import type { Logger } from '../log.js';

/** LogSamplerOptions: how many lines a window logs in full at info, and how long a window is. */
export interface LogSamplerOptions {
  /** perWindow lines a window logs at info; those after it go to debug and into the window's summary. @default 10 */
  perWindow?: number;
  /** windowMs is the window's length (LOG_SUMMARY_INTERVAL). @default 10000 */
  windowMs?: number;
}

/**
 * LogSampler keeps a busy stream of per-event lines (one per save, one per backup) readable at info: the first
 * `perWindow` lines of each window are logged at info as they are, the rest at debug (full detail is still there with
 * LOG_LEVEL=debug), and when the window ends one info line summarizes what it left out: how many, over which blocks,
 * how many bytes. A quiet ledger logs exactly as before.
 */
export class LogSampler {
  readonly #perWindow: number;
  readonly #windowMs: number;
  #windowStart = Number.NEGATIVE_INFINITY;
  #inWindow = 0;
  #skipped = { lines: 0, blocks: 0, bytes: 0, from: Number.POSITIVE_INFINITY, to: -1 };
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly log: Logger,
    /** summary words the summary line: "<n> more saves to the local store". */
    private readonly summary: (n: number) => string,
    options: LogSamplerOptions = {},
  ) {
    this.#perWindow = options.perWindow ?? 10;
    this.#windowMs = options.windowMs ?? 10_000;
  }

  /**
   * line logs one event: at info while the window has room, else at debug, counted for the summary by `counts` (the
   * block it reached, how many blocks and bytes it wrote).
   */
  line(
    fields: Record<string, unknown>,
    msg: string,
    counts: { height?: number; blocks?: number; bytes?: number },
  ): void {
    const now = performance.now();
    if (now - this.#windowStart >= this.#windowMs) {
      this.#flush();
      this.#windowStart = now;
      this.#inWindow = 0;
    }
    if (this.#inWindow++ < this.#perWindow) {
      this.log.info(fields, msg);
      return;
    }
    this.log.debug(fields, msg);
    const s = this.#skipped;
    s.lines++;
    s.blocks += counts.blocks ?? 0;
    s.bytes += counts.bytes ?? 0;
    if (counts.height !== undefined) {
      s.from = Math.min(s.from, counts.height);
      s.to = Math.max(s.to, counts.height);
    }
    if (!this.#timer) {
      this.#timer = setTimeout(() => this.#flush(), Math.max(0, this.#windowStart + this.#windowMs - now));
      this.#timer.unref();
    }
  }

  // The summary of the lines the window sent to debug, if any.
  #flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const s = this.#skipped;
    if (s.lines === 0) return;
    const blocks = s.blocks > 0 ? `${s.blocks} blocks, ` : '';
    const span = s.to >= 0 ? `, blocks ${s.from}..${s.to}` : '';
    this.log.info(
      {
        summarized: s.lines,
        blocks: s.blocks,
        bytes: s.bytes,
        ...(s.to >= 0 ? { fromHeight: s.from, height: s.to } : {}),
      },
      `${this.summary(s.lines)} in the last ${Math.round(this.#windowMs / 1000)} s (${blocks}${s.bytes} bytes${span}); each at LOG_LEVEL=debug`,
    );
    this.#skipped = { lines: 0, blocks: 0, bytes: 0, from: Number.POSITIVE_INFINITY, to: -1 };
  }

  /** close logs the pending summary now. */
  close(): void {
    this.#flush();
  }
}
