import type { ObjectStore, PutRequest } from './object-store.js';
import { withRetry, type RetryOptions } from '../util/retry.js';

/**
 * retryingStore wraps any ObjectStore so that each call is retried by withRetry: the decorator that keeps backoff out
 * of the stores themselves. put() may then run twice for the same bytes, which the contract allows. A list() that
 * fails part way starts again and skips the keys it already yielded (a list is in key order), so a throttled page
 * does not cut a listing short.
 */
export function retryingStore(inner: ObjectStore, options: Omit<RetryOptions, 'what'>): ObjectStore {
  const run = <T>(what: string, fn: () => Promise<T>): Promise<T> =>
    withRetry(() => fn(), { ...options, what: `${inner.name} ${what}` });
  const innerList = inner.list?.bind(inner);
  const list = innerList
    ? async function* (prefix: string): AsyncIterable<string> {
        // Closures assign these, so they live in an object (TypeScript would narrow plain variables to null).
        const at: { it: AsyncIterator<string> | null; last: string | null } = { it: null, last: null };
        try {
          for (;;) {
            const next = await run(`list ${prefix}`, async () => {
              try {
                at.it ??= innerList(prefix)[Symbol.asyncIterator]();
                for (;;) {
                  const r = await at.it.next();
                  if (r.done || at.last === null || r.value > at.last) return r;
                }
              } catch (err) {
                at.it = null; // a failed iterator is done: the next attempt lists again from the start
                throw err;
              }
            });
            if (next.done) return;
            at.last = next.value;
            yield next.value;
          }
        } finally {
          await at.it?.return?.(); // the caller stopped early: let the inner listing end too
        }
      }
    : undefined;
  return {
    name: inner.name,
    label: inner.label,
    contentAddressed: inner.contentAddressed,
    put: (bytes: Uint8Array, request: PutRequest) => run('put', () => inner.put(bytes, request)),
    get: (id: string, opts?: { sha256?: string }) => run(`get ${id}`, () => inner.get(id, opts)),
    has: (id: string) => run(`has ${id}`, () => inner.has(id)),
    delete: (id: string) => run(`delete ${id}`, () => inner.delete(id)),
    ...(list ? { list } : {}),
    check: () => run('check', () => inner.check()),
    close: () => inner.close(),
  };
}
