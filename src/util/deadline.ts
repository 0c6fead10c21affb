import { UnavailableError } from '../errors.js';

/** withDeadline rejects with UnavailableError naming `what` if `promise` has not settled within `ms`. */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new UnavailableError(`${what} did not answer within ${ms} ms`, {
                hint: 'LEDGER_SOURCE_TIMEOUT_MS sets this limit',
              }),
            ),
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
