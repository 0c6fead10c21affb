import { ValidationError } from '../errors.js';

/**
 * PutRequest says where and how to keep an object. A named store (a folder, S3) keeps it under `key`; a
 * content-addressed store (IPFS) derives its id from the bytes and uses `label` and `keyvalues` only to describe it.
 */
export interface PutRequest {
  /**
   * key is the object's name in a named store: segments of [a-z0-9._-] joined by '/', neither starting with a dot
   * nor empty (the pack engine's keys, e.g. `ledgers/<id>/packs/<from>-<to>-<sha>.pack`).
   */
  key: string;
  /** label names the object for a person (a pinning service's pin name). */
  label: string;
  /** keyvalues describe the object to a pinning service (Pinata allows at most 10). */
  keyvalues?: Record<string, string>;
}

/** OBJECT_KEY is what a valid PutRequest.key looks like. */
export const OBJECT_KEY = /^(?!.*(?:^|\/)\.)[a-z0-9._-]+(?:\/[a-z0-9._-]+)*$/;

/** validKey returns `key` when it is an OBJECT_KEY (so it cannot leave a store's root), else throws ValidationError. */
export function validKey(key: unknown): string {
  if (typeof key === 'string' && OBJECT_KEY.test(key)) return key;
  const shown = JSON.stringify(String(key).slice(0, 80));
  throw new ValidationError(
    `${shown} is not an object key (segments of [a-z0-9._-] joined by '/', none starting with a dot)`,
    'key',
  );
}

/** validPrefix returns `prefix` when some OBJECT_KEY starts with it (or it is empty), else throws ValidationError. */
export function validPrefix(prefix: unknown): string {
  if (typeof prefix === 'string' && (prefix === '' || OBJECT_KEY.test(`${prefix}a`))) return prefix;
  throw new ValidationError(`${JSON.stringify(String(prefix).slice(0, 80))} is not a key prefix`, 'prefix');
}

/**
 * ObjectStore moves opaque (already sealed) bytes: Pinata, a Kubo node, the embedded blockstore, a folder, S3.
 * The pack engine above it (src/tiers/packs) decides what objects exist; a store only keeps them. Contract, which
 * test/conformance/object-store-suite.ts checks for every store:
 *
 * - put() stores the bytes durably and returns the object's id: for a content-addressed store the CID of the bytes
 *   (CIDv1, raw leaves, 256 KiB chunks, so it can be recomputed), for a named store `request.key`. It is idempotent:
 *   the same bytes again return the same id. A named store never overwrites: other bytes under an existing key
 *   throw ConflictError and leave the object as it was.
 * - get() returns the bytes only after checking them: against the CID, or, when `sha256` (hex) is given, against
 *   it. Bytes that do not match throw IntegrityError naming the id; an absent object throws NotFoundError; an id
 *   that cannot name an object of this store throws ValidationError.
 * - has() tells whether the store holds (pins) the object; delete() removes (unpins) it, and one already gone is no
 *   error. list(), where the store can list (named stores), yields the ids starting with `prefix`, in key order.
 * - Failures come out typed: ConfigError for what only configuration fixes (credentials, scopes, permissions: never
 *   retried), UnavailableError for what may pass (429, 5xx, network, a full disk: `retryAfterMs` when the service
 *   said how long to wait). Retries are a decorator (retryingStore), never inside a store.
 */
export interface ObjectStore {
  /** name is the kind of store ('pinata', 'kubo', 'embedded', 'dir', 's3'). */
  readonly name: string;
  /** label describes where the bytes go, secrets redacted. */
  readonly label: string;
  /** contentAddressed is true when ids come from the bytes (IPFS): such a store cannot be searched by key. */
  readonly contentAddressed: boolean;
  put(bytes: Uint8Array, request: PutRequest): Promise<string>;
  get(id: string, options?: { sha256?: string }): Promise<Buffer>;
  has(id: string): Promise<boolean>;
  delete(id: string): Promise<void>;
  list?(prefix: string): AsyncIterable<string>;
  /** check proves the configuration works (credentials accepted, node or folder reachable) without writing. */
  check(): Promise<void>;
  close(): Promise<void>;
}
