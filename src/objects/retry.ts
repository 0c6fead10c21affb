import type { ObjectStore, PutRequest } from './object-store.js';
import { withRetry, type RetryOptions } from '../util/retry.js';

/**
 * retryingStore wraps any ObjectStore so that each call is retried by withRetry: the decorator that keeps backoff out
 * of the stores themselves. put() may then run twice for the same bytes, which the contract allows.
 */
export function retryingStore(inner: ObjectStore, options: Omit<RetryOptions, 'what'>): ObjectStore {
  const run = <T>(what: string, fn: () => Promise<T>): Promise<T> =>
    withRetry(() => fn(), { ...options, what: `${inner.name} ${what}` });
  const list = inner.list?.bind(inner);
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
