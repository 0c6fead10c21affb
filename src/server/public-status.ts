import type { LedgerStatus } from '../service/ledger.js';

/** PublicStatus is GET /status without the admin token: the ledger's shape and health, nothing about where it runs. */
export interface PublicStatus {
  ledgerId: string;
  height: number;
  headHash: string;
  totalBlocks: number;
  totalProperties: number;
  /** keyId is the key's public 4-byte id (it says which key, never anything of the key). */
  keyId: string;
  tiers: { name: string; state: string; height: number }[];
  /** fork says that startup resolved a fork between sources, without naming them; null when none. */
  fork: string | null;
  writer: { mode: string; role: string };
  /** verification is how the running chain was verified ('full', or from a checkpoint: 'replaying', 'verified', ...). */
  verification: string;
  /** degraded is true while writes are refused because a full replay contradicted a checkpoint (the reason is admin's). */
  degraded: boolean;
  /** proofs: whether proofs can be made now, and the root at the head they lead to (public: it commits to the chain). */
  proofs: { state: string; root: string | null };
}

/**
 * publicStatus builds the public view of a status from an allow-list of fields: tier details (database host, user
 * and name, folders, provider URLs, CIDs, last errors), the fork's description and the writer's instance names
 * (hostname and pid) are left out because they are not copied, so a field the service adds later stays private
 * until it is added here.
 */
export function publicStatus(s: LedgerStatus): PublicStatus {
  return {
    ledgerId: s.ledgerId,
    height: s.height,
    headHash: s.headHash,
    totalBlocks: s.totalBlocks,
    totalProperties: s.totalProperties,
    keyId: s.keyId,
    tiers: s.tiers.map((t) => ({ name: t.name, state: t.state, height: t.height })),
    fork: s.fork === null ? null : 'the sources held diverging chains at startup; the admin token shows which',
    writer: { mode: s.writer.mode, role: s.writer.role },
    verification: s.verification.state,
    degraded: s.degraded !== null,
    proofs: { state: s.proofs.state, root: s.proofs.root },
  };
}
