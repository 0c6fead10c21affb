import type { BackupKind, NewBackup } from '../crypto/records.js';
import type { Sealer } from '../crypto/seal.js';
import type { Logger } from '../log.js';
import type { LocalStore } from '../store/local-store.js';
import type { ReplayedChain } from './replay.js';
import type { Replicator } from './replicator.js';

/**
 * LedgerCore is the part of the Ledger that the engine (restore, retention, following, import) works on; the Ledger
 * hands it over at construction. `replicators` are the configured tiers in restore priority order.
 */
export interface LedgerCore {
  readonly sealer: Sealer;
  readonly store: LocalStore;
  readonly log: Logger;
  chain(): ReplayedChain;
  setChain(chain: ReplayedChain): void;
  /** exclusive waits for queued saves, then runs fn alone in the serial section. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** record seals a backup record of the current head, its chain root included (once the accumulator is level). */
  record(name: string, kind: BackupKind, createdBy: number | null): Promise<NewBackup>;
  /** assertWriter throws NotWriterError on a standby (another instance holds the writer lease): it writes no tier. */
  assertWriter(): void;
  /** now is the ledger's clock (retention measures ages with it). */
  now(): Date;
  readonly replicators: readonly Replicator[];
  /** replicator is the replicator of the tier `name`: ValidationError for a name no tier has, NotFoundError when off. */
  replicator(name: string): Replicator;
}
