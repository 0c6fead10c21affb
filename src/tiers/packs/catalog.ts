import type { BackupRecord } from '../../crypto/records.js';

/** ReadRecord opens the backup record a manifest holds (fetched by id, checked, decrypted). */
export type ReadRecord = (id: string) => Promise<BackupRecord>;

/**
 * Catalog is where a pack tier lists its backups, one per manifest: which is the newest of a ledger, which are
 * protected from retention, and which retention removed but whose objects garbage collection has not freed yet.
 * For IPFS the database keeps it (PointerCatalog: a content-addressed store cannot be searched by name); a named
 * store keeps it itself (ListingCatalog: manifests under a prefix, small marker objects for the rest).
 *
 * Contract: add() is called once a manifest is durable, and latest() answers the newest head added (or, after a
 * restart, found): a backup of an older point added later does not replace it. list() answers newest first, without removed backups, or null when this catalog keeps no
 * history (the pack tier then walks the manifests' `previous` links). markPruned() skips protected and unknown ids.
 */
export interface Catalog {
  /** name says where the list lives, for logs ('database', 'folder listing'). */
  readonly name: string;
  latest(ledgerId?: string): Promise<string | null>;
  /** add remembers a manifest just written; `head` is false for a backup of an older point, which stays history. */
  add(record: BackupRecord, head: boolean): Promise<void>;
  list(ledgerId: string | undefined, limit: number): Promise<BackupRecord[] | null>;
  isProtected(id: string): Promise<boolean>;
  /** setProtected answers false when no live backup has this id. */
  setProtected(id: string, on: boolean): Promise<boolean>;
  markPruned(ids: readonly string[]): Promise<number>;
  pruned(ledgerId: string): Promise<string[]>;
  forget(ids: readonly string[]): Promise<void>;
  /** anchors are backups garbage collection must keep whatever retention says (the newest each pointer names). */
  anchors(ledgerId: string): Promise<string[]>;
  /** flush, where the catalog writes pointers in the background (Render), waits until they are written or failed. */
  flush?(): Promise<void>;
  /** diagnose, where the catalog leans on other services (the pointer stores), reads each once and says what it found. */
  diagnose?(): Promise<string>;
  close(): Promise<void>;
}
