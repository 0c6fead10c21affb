/**
 * pawledger as a library: open the ledger, change and read properties, export and import it.
 *
 *   import { openLedger } from 'pawledger';
 *   const ledger = await openLedger();            // configuration from the environment
 *   await ledger.register({ id: 'p1', name: 'Casa Azul', address: '1 Main St', owner: 'ann' });
 */
import { Ledger, type OpenLedgerOptions } from './service/ledger.js';

/** openLedger restores the ledger (or creates its genesis block) and returns the service object. */
export function openLedger(options: OpenLedgerOptions = {}): Promise<Ledger> {
  return Ledger.open(options);
}

export { Ledger };
export type {
  HistoryEntry,
  LedgerStatus,
  OpenLedgerOptions,
  SaveResult,
  TierStatus,
  VerifyReport,
} from './service/ledger.js';
export type { Attributes, Block, Property, Transaction } from './ledger/types.js';
export { verifyChain } from './ledger/verify.js';
export {
  parseProofText,
  verifyConsistencyProof,
  verifyProof,
  verifyProofText,
  type ConsistencyProof,
  type ConsistencyVerdict,
  type PropertyProof,
  type ProofVerdict,
} from './ledger/proof-verifier.js';
/** manifestCommitment reads what an IPFS (or folder, or bucket) manifest commits to, without the key: ledger, head, root. */
export { manifestCommitment, type ManifestHead } from './tiers/packs/format.js';
export { loadConfig, type Config } from './config.js';
export { generateKey, parseKey } from './crypto/key.js';
export { buildServer } from './server/app.js';
export * from './errors.js';
