import type { ColdStartResult } from './cold-start.js';
import type { CryptoFloor } from './crypto-floor.js';
import type { FloorResult } from './floors.js';
import type { IpfsCounts } from './ipfs-meter.js';
import type { Measurement } from './pawledger.js';
import type { ResticBackup, ResticRestore } from './restic.js';
import type { RestoreOutcome } from './restore-runner.js';
import type { RestoreTierName } from './restore-source.js';
import type { RotationResult } from './rotation.js';
import type { Storage } from './storage.js';

/** GrowMode is how a ledger was grown: one save at a time (one backup record per save), or 256 saves in flight. */
export type GrowMode = 'sequential' | 'batched';

/** Growth is how one pawledger ledger got to its length before measuring. */
export interface Growth {
  target: number;
  blocks: number;
  seconds: number;
  mode: GrowMode;
  saves: number;
  /** ipfs is what the embedded IPFS folder received while the ledger grew. */
  ipfs: IpfsCounts;
}

/** SaveResult is the per-save measurement at one chain length, with what IPFS received for those saves. */
export interface SaveResult {
  length: number;
  m: Measurement;
  /** ipfs is what IPFS received from the first measured save until it held the last one. */
  ipfs: IpfsCounts;
  /** ipfsLevel is false if IPFS had not caught up within the wait (then ipfs undercounts). */
  ipfsLevel: boolean;
  /** burst is how many saves ran back to back in each visit of a round. */
  burst: number;
}

/** StorageResult is the database's storage after the saves of one ledger. */
export interface StorageResult {
  length: number;
  mode: GrowMode;
  storage: Storage;
}

/** ResticResult is restic backing up one ledger's data folder after saves, and restoring it. */
export interface ResticResult {
  length: number;
  blocks: number;
  folderBytes: number;
  first: ResticBackup;
  incrementals: ResticBackup[];
  restores: ResticRestore[];
  repoBytes: number;
}

/** RestoreOrigin says how the restored chain was made: by saves through a Ledger, or loaded into the tiers directly. */
export type RestoreOrigin = 'saves' | 'synthetic';

/** RestoreResult is the restores of one chain from one tier, one child process each. */
export interface RestoreResult {
  blocks: number;
  origin: RestoreOrigin;
  tier: RestoreTierName;
  runs: RestoreOutcome[];
}

/** RestoreFloor is the floors for restoring one chain from the database. */
export interface RestoreFloor {
  blocks: number;
  origin: RestoreOrigin;
  copyMs: number[];
  decryptMs: number[];
  /** buildMs is how long loading a synthetic chain into the three tiers took. */
  buildMs?: number;
}

/** Report is everything one run measured. */
export interface Report {
  mode: 'quick' | 'full';
  startedAt: string;
  about: string[];
  loadStart: string;
  loadEnd: string;
  loadSamples: string;
  floors: FloorResult[];
  crypto: CryptoFloor[];
  growth: Growth[];
  saves: SaveResult[];
  naive: Measurement[];
  storage: StorageResult[];
  /** restic holds the results, or why there are none (restic missing). */
  restic: ResticResult[] | string;
  restores: RestoreResult[];
  restoreFloors: RestoreFloor[];
  /** coldStarts are the deploys started on an empty disk from a loaded database (absent in reports saved before them). */
  coldStarts?: ColdStartResult[];
  /** rotations are the key rotations (issue #17) of a loaded chain (absent in reports saved before them). */
  rotations?: RotationResult[];
  totalSeconds: number;
}
