// Types of proof-verifier.js, the dependency-free verifier module (written in JavaScript so that browsers load the
// very file Node runs; GET /proof-verifier.js serves it).
import type { Transaction } from './types.js';

/** PROOF_FORMAT names an inclusion proof's format and version. */
export declare const PROOF_FORMAT: 'pawledger-proof/2';
/** CONSISTENCY_FORMAT names a consistency proof's format and version. */
export declare const CONSISTENCY_FORMAT: 'pawledger-consistency/2';

/** ProofHead is the head a proof is made against: its height, its hash, the accumulator's root there, the head's path. */
export interface ProofHead {
  height: number;
  hash: string;
  root: string;
  path: string[];
}

/** ProofBlock is one block of a proof: its header, its transactions (all about the property) and its paths. */
export interface ProofBlock {
  index: number;
  timestamp: string;
  previousHash: string;
  merkleRoot: string;
  hash: string;
  transactions: Transaction[];
  /** txPaths are each transaction's Merkle path to merkleRoot. */
  txPaths: string[][];
  /** path is the block's path in the accumulator to head.root. */
  path: string[];
}

/** PropertyProof is an inclusion proof of a property's transactions (docs/FORMAT.md, "Proofs"). */
export interface PropertyProof {
  format: typeof PROOF_FORMAT;
  propertyId: string;
  head: ProofHead;
  blocks: ProofBlock[];
}

/** ConsistencyProof shows that the chain at `from` is a prefix of the chain at `to`. */
export interface ConsistencyProof {
  format: typeof CONSISTENCY_FORMAT;
  from: { height: number; root: string };
  to: { height: number; root: string };
  path: string[];
}

/** ProofVerdict is what verifying a proof found. */
export type ProofVerdict =
  | {
      ok: true;
      propertyId: string;
      /** head is the height and root the proof was checked against (a consistency proof's `to`, when given). */
      head: { height: number; root: string };
      blocks: number;
      transactions: Transaction[];
    }
  | { ok: false; reason: string };

/** ConsistencyVerdict is what verifying a consistency proof found. */
export type ConsistencyVerdict =
  | { ok: true; from: { height: number; root: string }; to: { height: number; root: string } }
  | { ok: false; reason: string };

/** VerifyOptions: the root the verifier trusts, and a consistency proof from the proof's head to it. */
export interface VerifyOptions {
  root?: string;
  consistency?: unknown;
}

export declare function canonicalJson(value: unknown): string;
export declare function leafHash(bytes: Uint8Array): Promise<string>;
export declare function nodeHash(left: string, right: string): Promise<string>;
export declare function verifyInclusion(
  index: number,
  size: number,
  leaf: string,
  path: readonly string[],
  root: string,
): Promise<boolean>;
export declare function verifyConsistency(
  size1: number,
  size2: number,
  root1: string,
  root2: string,
  path: readonly string[],
): Promise<boolean>;
/** chainRoot is a chain's root: SHA-256(0x02 || size u64 big-endian || tree root), hex; it binds the chain's size. */
export declare function chainRoot(size: number, treeRoot: string): Promise<string>;
/** verifyChainInclusion is verifyInclusion against a chain root, which binds `size` too. */
export declare function verifyChainInclusion(
  index: number,
  size: number,
  leaf: string,
  path: readonly string[],
  root: string,
): Promise<boolean>;
/** verifyChainConsistency checks a consistency path between two chain roots (its first node the first tree's root when size1 is a power of two). */
export declare function verifyChainConsistency(
  size1: number,
  size2: number,
  root1: string,
  root2: string,
  path: readonly string[],
): Promise<boolean>;
export declare function verifyProof(proof: unknown, options?: VerifyOptions): Promise<ProofVerdict>;
export declare function verifyConsistencyProof(proof: unknown): Promise<ConsistencyVerdict>;
export declare function parseProofText(text: string): unknown;
export declare function verifyProofText(
  text: string,
  options?: { root?: string; consistency?: string | unknown },
): Promise<ProofVerdict>;
