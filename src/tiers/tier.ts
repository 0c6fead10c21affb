import type { SealedCheckpoint } from '../crypto/checkpoints.js';
import type { ChainPage, SealedPack } from '../crypto/packs.js';
import type { BackupRecord, NewBackup } from '../crypto/records.js';
import type { Sealer } from '../crypto/seal.js';
import type { StoredBlock } from '../crypto/stored-block.js';

/** KeyCounts counts sealed objects by the id of the key that sealed them (8 hex digits), e.g. { "1a2b3c4d": 1200 }. */
export type KeyCounts = Record<string, number>;

/** ResealStep is what one bounded step of a key rotation did in a tier (BackupTier.reseal). */
export interface ResealStep {
  /** resealed counts the objects this step rewrote under the active key. */
  resealed: number;
  /** remaining counts the objects of the ledger still under another key after this step (0: the tier is done). */
  remaining: number;
}

/** Diagnosis is one line of the doctor's report about a tier: how it stands, and what to do when not ok. */
export interface Diagnosis {
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

/** StoredCheckpoint is a checkpoint a tier holds: the block it stands after, and its parts read on demand, in order. */
export interface StoredCheckpoint {
  height: number;
  hash: string;
  parts(): AsyncIterable<Buffer>;
}

/**
 * BackupTier is the contract every backup tier (the local store, PostgreSQL, IPFS) fulfils. It moves sealed bytes
 * only: sealing, verification and the choice of what to store live in the service, written once.
 *
 * - append() is idempotent: blocks the tier already holds (by hash) are skipped. Blocks must form a chain that
 *   continues the block `parentHash` (null for block 0), which the tier must already hold, else NotFoundError.
 *   Appending after a block that already has a successor starts a new branch; no stored block is ever overwritten.
 *   A tier that keeps a single chain (the local store) refuses a fork, or a second ledger, with ConflictError.
 * - append() with a record stores the record only once its blocks are durable: after a crash the blocks may be
 *   there without the record, never the record without its blocks (PostgreSQL does both in one transaction).
 * - listBackups() returns newest first. getBackup() of an unknown id throws NotFoundError.
 * - readChainPages() yields blocks 0..record.height in order, along the branch that ends at record.headHash, as pages
 *   (crypto/packs.ts ChainPage): blocks one by one, or packs (or slices of packs) where the tier holds them compacted.
 *   It throws NotFoundError if the tier no longer holds them. It does not verify: the caller does.
 * - putPack() replaces blocks by the pack that holds them (compaction), or adds a pack's blocks the tier lacks (a
 *   catch-up), never both losing and keeping nothing: the pack is durable before any copy it replaces is dropped, and
 *   readers accept either form at every moment. See putPack.
 * - Retention is two steps. deleteBackups() deletes records only; it skips unknown ids and protected records (a
 *   record must be unprotected first), and returns how many it deleted. collectGarbage() then frees what no
 *   remaining record of the ledger reaches, and never a block of a remaining record's chain: it is idempotent, safe
 *   to run again after a crash, and must not run beside an append to the same ledger (the service serializes them).
 * - Failures are typed at the edge: UnavailableError (retry later), ConfigError (fix configuration), NotFoundError.
 */
export interface BackupTier {
  /** name is the tier's short name in logs and status ('local', 'db', 'ipfs'). */
  readonly name: string;
  /** label describes where the tier keeps data, secrets redacted. */
  readonly label: string;
  /** init connects and prepares storage (migrations); it may be called again after a failure. */
  init(): Promise<void>;
  /** hasBlock tells whether the tier holds the block at this height with this hash. */
  hasBlock(ledgerId: string, height: number, hash: string): Promise<boolean>;
  append(
    ledgerId: string,
    parentHash: string | null,
    blocks: readonly StoredBlock[],
    record?: NewBackup,
    /** root is the chain root at the last block, for a tier that names a head with no record given (a manifest). */
    root?: string,
  ): Promise<{ bytesWritten: number; record?: BackupRecord }>;
  putBackup(record: NewBackup): Promise<BackupRecord>;
  listBackups(ledgerId?: string, options?: { limit?: number }): Promise<BackupRecord[]>;
  getBackup(id: string): Promise<BackupRecord>;
  /** readChainPages yields the record's chain in pages (see above); with `start`, from that height on. */
  readChainPages(record: BackupRecord, start?: number): AsyncIterable<ChainPage>;
  /**
   * putPack stores a pack (crypto/packs.ts) whose first block follows the block `parentHash` (null: the pack starts at
   * block 0), which the tier must hold (else NotFoundError). Blocks of the pack the tier holds one by one (same height
   * and hash) are replaced by it, once it is durable; blocks it lacks are added, continuing the chain as append does
   * (a new branch where the parent already has another successor). Idempotent: a pack already stored is skipped.
   * A crash at any point leaves every block readable, from the pack or from its old copy. `root` is the chain root
   * at the pack's last block, for a tier whose backups name their head (a pack tier's manifest, when the pack ends
   * its chain).
   */
  putPack?(
    ledgerId: string,
    parentHash: string | null,
    pack: SealedPack,
    root?: string,
  ): Promise<{ bytesWritten: number }>;
  /**
   * hasPack tells whether the tier holds, as a pack, the pack of this ledger that ends at block `to` with hash `hash`
   * (so a catch-up sends only the packs it lacks, and a restart re-sends none).
   */
  hasPack?(ledgerId: string, to: number, hash: string): Promise<boolean>;
  /**
   * putCheckpoint stores a sealed checkpoint of the world state after block cp.height, which the tier must hold (else
   * NotFoundError). Idempotent. A tier may drop older checkpoints of the same chain, keeping at least the newest two.
   */
  putCheckpoint?(ledgerId: string, cp: SealedCheckpoint): Promise<{ bytesWritten: number }>;
  /** checkpointFor returns the newest checkpoint the tier holds on the record's chain (at or below its head), or null. */
  checkpointFor?(record: BackupRecord): Promise<StoredCheckpoint | null>;
  /** hashAt returns the hash of the block at `height` on the record's chain, or null (past its head, or not held). */
  hashAt(record: BackupRecord, height: number): Promise<string | null>;
  /** deleteBackups deletes these records (not their blocks) and returns how many; unknown and protected ids are skipped. */
  deleteBackups(ids: readonly string[]): Promise<number>;
  /** setProtected marks a record protected (retention never deletes it) or not; an unknown id throws NotFoundError. */
  setProtected(id: string, on: boolean): Promise<void>;
  /**
   * collectGarbage frees the stored objects of `ledgerId` that no remaining record reaches: in the database, blocks
   * of abandoned branches (in bounded batches); on IPFS, the manifests of deleted records and packs no remaining
   * manifest names (already gone is fine); the local store keeps one chain and has nothing to collect. `blocks`
   * counts the objects freed (block rows; IPFS pins), `bytes` their stored size.
   */
  collectGarbage(ledgerId: string): Promise<{ blocks: number; bytes: number }>;
  /**
   * keepsBranches is true for a tier that keeps every branch (the database): startup keeps a diverging local chain
   * there before it takes another. A tier without it keeps one chain per ledger.
   */
  readonly keepsBranches?: boolean;
  /**
   * repair, where a tier offers it, rewrites its copies of these blocks (a chain that verified) where they differ:
   * a block altered in place keeps its hash, so catching up alone would never replace it. It returns how many.
   */
  repair?(ledgerId: string, blocks: AsyncIterable<StoredBlock>): Promise<number>;
  /**
   * probe, where a tier offers it, proves cheaply and on a connection of its own that the tier answers now (the
   * database: SELECT 1 on a fresh connection; a pack tier: its store's check). A tier that stopped answering is
   * probed, not fed catch-ups, until it answers again.
   */
  probe?(): Promise<void>;
  /**
   * uncached, where a tier remembers what it read or wrote (manifests, packs), is the same tier over the same storage
   * with nothing remembered, sharing its connections: a restore drill proves the storage, not this process's memory.
   */
  uncached?(): BackupTier;
  /**
   * keyCounts counts every sealed object of `ledgerId` the tier holds (blocks, packs, checkpoint parts, backup
   * records, manifests), by the id of the key that sealed it, from the headers alone (no decryption). Objects that no
   * longer take part (freed by collectGarbage) are not counted; it is what key rotation still has to rewrite.
   */
  keyCounts?(ledgerId: string): Promise<KeyCounts>;
  /**
   * reseal is one bounded step of a key rotation: it rewrites at most `limit` objects of `ledgerId` still sealed under
   * a key other than sealer.keyId, each opened with the keyring and sealed again under the active key, bound to the
   * same context (crypto/reseal.ts), and returns what it did. The rewritten copy is durable before the old one is
   * dropped, and readers accept either at every moment, so a crash at any point loses nothing and the next call goes
   * on from what is left (objects already under the active key are skipped from their header). A content-addressed
   * tier (IPFS) writes new objects under new ids, moves its pointers to them, and frees the old ones only once their
   * replacements are durable. It must not run beside an append to the same ledger (the service serializes them). An
   * object that does not open with the keyring throws IntegrityError naming the key id it needs.
   */
  reseal?(ledgerId: string, sealer: Sealer, limit: number): Promise<ResealStep>;
  /** migrate, where a tier has a schema (the database), brings it up to date and returns the steps it applied. */
  migrate?(): Promise<string[]>;
  /**
   * diagnose, for `pawledger doctor`, proves the tier is usable without writing (connected, credentials accepted,
   * schema current) or, with `write`, by writing and deleting a tiny object; it throws the tier's typed error when not.
   */
  diagnose?(options: { write: boolean }): Promise<Diagnosis>;
  close(): Promise<void>;
}
