import type { Config } from '../config.js';
import type { Block, Property, Transaction } from '../ledger/types.js';
import type { Logger } from '../log.js';
import type { ReplayState } from '../engine/background-replay.js';
import type { StartFrom } from '../engine/startup.js';
import type { RotationReport } from '../engine/rotation.js';
import type { ProofsState } from './chain-proofs.js';
import type { WriterStatus } from './lease-keeper.js';
import type { AssuranceStatus } from './assurance.js';

/** OpenLedgerOptions configure openLedger; everything defaults from the environment. */
export interface OpenLedgerOptions {
  config?: Config;
  logger?: Logger;
  /** readOnly opens without the write lock and without repairing a torn tail, for reads beside a running server. */
  readOnly?: boolean;
  /** now supplies timestamps (tests pin it). @default () => new Date() */
  now?: () => Date;
  /**
   * restore starts from a chosen backup of a tier (its newest of the local ledger without an id), or from an export
   * file, instead of choosing; every tier then records it. A damaged local store does not stop it (it is replaced).
   */
  restore?: StartFrom;
  /**
   * deferBackground holds back the work that follows a start (the full replay behind a checkpoint, the proofs
   * accumulator's rebuild) until startBackground(): a server calls it once it listens, so that this work does not
   * compete with its start for the one thread. A save or a record made meanwhile rebuilds the accumulator it needs.
   * @default false
   */
  deferBackground?: boolean;
}

/** SaveResult is what a mutation returns once it is durable. */
export interface SaveResult {
  block: Block;
  property: Property;
}

/** HistoryEntry is one transaction about a property, with the block that holds it. */
export interface HistoryEntry {
  blockIndex: number;
  blockHash: string;
  transaction: Transaction;
}

/** TierStatus is one storage tier's state, as status reports it. */
export interface TierStatus {
  name: string;
  state: 'ok' | 'lagging' | 'down' | 'off';
  height: number;
  /** role is 'local' for the local store, else whether a save waits for the tier ('sync') or not ('async'). */
  role?: 'local' | 'sync' | 'async';
  /** newestBackup is the id of the newest backup this process knows the tier holds. */
  newestBackup?: string;
  detail?: string;
}

/** LedgerStatus is the ledger's summary. */
export interface LedgerStatus {
  ledgerId: string;
  height: number;
  headHash: string;
  totalBlocks: number;
  totalProperties: number;
  keyId: string;
  tiers: TierStatus[];
  /** fork describes a fork between sources that startup resolved in this run, or null. */
  fork: string | null;
  /** writer says who writes the ledger: this instance (by its data folder's LOCK, or the database's writer lease) or another. */
  writer: WriterStatus;
  /**
   * verification says how the running chain was verified: 'full' (replayed from block 0 at start), or restored from
   * a checkpoint with the full replay behind it 'replaying', 'verified', 'degraded' (it failed) or 'stopped'.
   */
  verification: ReplayState;
  /** degraded says why writes are refused (a full replay contradicted the checkpoint), or null. */
  degraded: { reason: string; since: string } | null;
  /**
   * proofs says whether proofs can be made ('ready'; 'building' while the accumulator catches up after a restore; 'off'
   * for a read-only ledger) and the accumulator's root at the head, which proofs of this head lead to (null unless ready).
   */
  proofs: { state: ProofsState; root: string | null };
  /** assurance is each tier's freshness and newest restore drill (service/assurance.ts). */
  assurance: AssuranceStatus;
  /**
   * keys is the keyring's state: the active and previous key ids, each place's objects by key id as last counted,
   * a rotation's progress, and the previous keys no object needs any more (engine/rotation.ts).
   */
  keys: RotationReport;
}

/** VerifyReport is the result of re-reading and checking the whole stored chain. */
export type VerifyReport = { ok: true; totalBlocks: number; headHash: string } | { ok: false; reason: string };
