/** PinMeta names an upload for the pinning service (Pinata's metadata; at most 10 keyvalues). */
export interface PinMeta {
  name: string;
  keyvalues?: Record<string, string>;
}

/**
 * IpfsProvider is one way of putting bytes on IPFS and getting them back: Pinata, a Kubo node, or an embedded
 * blockstore. It moves opaque (already sealed) bytes. Its failures come out typed: ConfigError for bad credentials or
 * scopes (401/403, never retried), UnavailableError for what may pass (429, 5xx, network; `retryAfterMs` when the
 * service said how long to wait), IntegrityError naming the CID for content that does not match.
 */
export interface IpfsProvider {
  readonly name: 'pinata' | 'kubo' | 'embedded';
  /** label describes the provider for logs, secrets redacted. */
  readonly label: string;
  /**
   * add stores `bytes` as one UnixFS file with CIDv1, raw leaves and 256 KiB chunks (Kubo's `--cid-version=1` DAG,
   * so the CID can be recomputed locally), pins it, and returns the CID. Adding the same bytes twice is harmless.
   */
  add(bytes: Uint8Array, meta: PinMeta): Promise<string>;
  /**
   * get fetches a file's bytes by CID and checks them before returning: against the CID recomputed with the same
   * parameters, or, where the CID cannot be recomputed, against `sha256` (hex) recorded by the caller. Content that
   * matches neither throws IntegrityError naming the CID; a CID the provider cannot find throws NotFoundError.
   */
  get(cid: string, options?: { sha256?: string }): Promise<Buffer>;
  /** remove unpins a CID; one that is not pinned (already gone) is not an error. */
  remove(cid: string): Promise<void>;
  /** check proves the configuration works (credentials accepted, node reachable) without writing anything. */
  check(): Promise<void>;
  close(): Promise<void>;
}
