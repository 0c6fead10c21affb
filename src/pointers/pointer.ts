import type { BackupRecord } from '../crypto/records.js';

/** CidPointer remembers one IPFS backup: its manifest's CID (the record's id) and, where kept, its record. */
export interface CidPointer {
  cid: string;
  /** record is the full backup record when the store keeps it (the database and the file do, Render does not). */
  record?: BackupRecord;
}

/**
 * PointerStore is one place the newest IPFS manifest CID is kept, so it outlives the local disk: the database,
 * a local file, a Render env var. latest() returns null when the store holds nothing.
 */
export interface PointerStore {
  readonly name: string;
  latest(ledgerId?: string): Promise<CidPointer | null>;
  /**
   * save remembers a backup. `head` is false for a backup of an older point (a named backup of a prefix): stores
   * with history keep it, but latest() keeps answering the chain's head.
   */
  save(record: BackupRecord, head: boolean): Promise<void>;
  /** list returns remembered backups newest first, where the store keeps history (the database does). */
  list?(ledgerId: string | undefined, limit: number): Promise<BackupRecord[]>;
  /** flush resolves once every save so far is written or has failed (a store that writes in the background). */
  flush?(): Promise<void>;
  /** close finishes pending writes. */
  close?(): Promise<void>;
}

/**
 * PointerHistory is a pointer store that keeps every IPFS backup (the database): the IPFS tier's records, which
 * retention marks, protects and forgets there. A marked (pruned) record is no longer listed; it is forgotten once
 * garbage collection has unpinned what it alone named.
 */
export interface PointerHistory extends PointerStore {
  list(ledgerId: string | undefined, limit: number): Promise<BackupRecord[]>;
  /** get returns the live record of a CID, or null. */
  get(cid: string): Promise<BackupRecord | null>;
  /** markPruned marks the live, unprotected records of these CIDs and returns how many it marked. */
  markPruned(cids: readonly string[]): Promise<number>;
  /** setProtected sets a live record's protected flag; false when no live record has this CID. */
  setProtected(cid: string, on: boolean): Promise<boolean>;
  /** pruned lists the CIDs of a ledger's marked records. */
  pruned(ledgerId: string): Promise<string[]>;
  /** forget deletes the marked records of these CIDs. */
  forget(cids: readonly string[]): Promise<void>;
}

/** hasHistory tells a pointer store with history (PointerHistory) from one that remembers only the newest. */
export function hasHistory(store: PointerStore): store is PointerHistory {
  return typeof (store as Partial<PointerHistory>).markPruned === 'function';
}
