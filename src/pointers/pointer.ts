import type { BackupRecord } from '../tiers/tier.js';

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
   * save remembers a backup. `head` is false for a manifest of an older point (a named backup of a prefix): stores
   * with history keep it, but latest() keeps answering the chain's head.
   */
  save(record: BackupRecord, head: boolean): Promise<void>;
  /** list returns remembered backups newest first, where the store keeps history (the database does). */
  list?(ledgerId: string | undefined, limit: number): Promise<BackupRecord[]>;
  /** close finishes pending writes. */
  close?(): Promise<void>;
}
