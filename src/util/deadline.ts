import { TimeoutError } from '../errors.js';

/**
 * withDeadline rejects with TimeoutError naming `what` if `promise` has not settled within `ms`; the hint names the
 * variable that sets the limit.
 */
export async function withDeadline<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
  setting = 'LEDGER_SOURCE_TIMEOUT_MS',
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(new TimeoutError(`${what} did not answer within ${ms} ms`, { hint: `${setting} sets this limit` })),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * stalling cuts off a stream that stops making progress: each next item must arrive within `ms`, so a long restore
 * that keeps moving is never cut, while a source that hangs is.
 */
export async function* stalling<T>(source: AsyncIterable<T>, ms: number, what: string): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await withDeadline(it.next(), ms, what);
      if (next.done) return;
      yield next.value;
    }
  } finally {
    void it.return?.();
  }
}
