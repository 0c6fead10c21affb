import { UnavailableError } from '../errors.js';
import type { Logger } from '../log.js';

// The one retry mechanism: withRetry around a call that may fail for a while, Backoff for a loop that retries on a timer.

/**
 * RetryAfterError is an UnavailableError that carries how long the service asked us to wait (Retry-After, or
 * Pinata's x-ratelimit-reset), so that withRetry waits at least that long.
 */
export class RetryAfterError extends UnavailableError {
  /** retryAfterMs is the wait the service asked for, when it said; undefined when it did not. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options: { retryAfterMs?: number | undefined; hint?: string; cause?: unknown } = {}) {
    super(message, options);
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * retryAfterFromHeaders reads how long a 429/503 answer asks the client to wait: `Retry-After` (seconds or an HTTP
 * date), else `x-ratelimit-reset` (epoch seconds; a small number is taken as seconds from now). Undefined when
 * neither says, or when the moment has already passed.
 */
export function retryAfterFromHeaders(headers: Headers, now: number = Date.now()): number | undefined {
  const retryAfter = headers.get('retry-after');
  if (retryAfter !== null && retryAfter.trim() !== '') {
    const s = Number(retryAfter);
    if (Number.isFinite(s)) return s > 0 ? Math.ceil(s * 1000) : undefined;
    const at = Date.parse(retryAfter);
    if (Number.isFinite(at)) return at > now ? at - now : undefined;
  }
  const reset = headers.get('x-ratelimit-reset');
  if (reset !== null && reset.trim() !== '') {
    const n = Number(reset);
    if (!Number.isFinite(n) || n <= 0) return undefined;
    const ms = n < 1e9 ? n * 1000 : n * 1000 - now;
    return ms > 0 ? Math.ceil(ms) : undefined;
  }
  return undefined;
}

/** RetryOptions tune withRetry. */
export interface RetryOptions {
  /** attempts is the total number of tries, the first included. @default 5 */
  attempts?: number;
  /** baseMs is the backoff ceiling of the first retry; it doubles at each retry. @default 500 */
  baseMs?: number;
  /** maxMs caps the backoff ceiling. @default 30000 */
  maxMs?: number;
  /** maxRetryAfterMs: a service asking for a longer wait than this is not waited for; the error goes up. @default 60000 */
  maxRetryAfterMs?: number;
  /** what names the operation in log lines ("pinning ledger pack"). */
  what: string;
  log?: Pick<Logger, 'warn'>;
  /** sleep is injectable for tests. @default setTimeout */
  sleep?: (ms: number) => Promise<void>;
  /** random is injectable for tests; it returns [0, 1). @default Math.random */
  random?: () => number;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Backoff is the wait before each next try of something that keeps failing: exponential from `baseMs`, capped at
 * `maxMs`, with jitter (0.5x to 1.5x) so that many instances do not retry in step. reset() after a success.
 */
export class Backoff {
  #next: number;

  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {
    this.#next = baseMs;
  }

  /** next is the wait before the next try; each call doubles the one after it, up to maxMs. */
  next(): number {
    const wait = Math.round(this.#next * (0.5 + this.random()));
    this.#next = Math.min(this.#next * 2, this.maxMs);
    return Math.min(wait, this.maxMs);
  }

  /** first is true when no failure has been counted since the last reset. */
  get first(): boolean {
    return this.#next === this.baseMs;
  }

  reset(): void {
    this.#next = this.baseMs;
  }
}

/** retryAfterOf reads `retryAfterMs` from any UnavailableError that carries one (ours or another module's). */
function retryAfterOf(err: UnavailableError): number | undefined {
  const v = (err as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined;
}

/**
 * withRetry runs `fn`, retrying it when it throws UnavailableError (429, 5xx, network, timeout) and only then:
 * ConfigError, IntegrityError, NotFoundError and everything else go up at once. Waits use exponential backoff with
 * full jitter (a random wait up to min(maxMs, baseMs * 2^n)), and never less than a `retryAfterMs` the error carries.
 * After the last attempt the last error goes up unchanged.
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 5);
  const baseMs = options.baseMs ?? 500;
  const maxMs = options.maxMs ?? 30_000;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
  const sleep = options.sleep ?? defaultSleep;
  const random = options.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!(err instanceof UnavailableError) || attempt >= attempts) throw err;
      const asked = retryAfterOf(err);
      if (asked !== undefined && asked > maxRetryAfterMs) throw err;
      const ceiling = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
      const waitMs = Math.max(asked ?? 0, Math.floor(random() * ceiling));
      options.log?.warn({ attempt, attempts, waitMs, err: err.message }, `${options.what} failed, retrying`);
      await sleep(waitMs);
    }
  }
}
