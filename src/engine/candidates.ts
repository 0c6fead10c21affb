import { checkRecord, type BackupRecord } from '../crypto/records.js';
import type { Sealer } from '../crypto/seal.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { LocalStore } from '../store/local-store.js';
import type { TierEntry } from '../tiers/registry.js';
import { withDeadline } from '../util/deadline.js';

// How many of a tier's newest backups startup tries before giving up on that tier.
const STARTUP_CANDIDATES = 20;

/**
 * Candidate is one source's offer at startup: a tier's backups that passed their seal check (newest first, of one
 * ledger), or the local store's chain (tier null). `height` and `hash` are the offer's head.
 */
export interface Candidate {
  source: string;
  label: string;
  tier: TierEntry | null;
  records: BackupRecord[];
  height: number;
  hash: string;
}

/** Collected is what the sources offered, and what kept the others from offering. */
export interface Collected {
  candidates: Candidate[];
  /** rejected counts backups that exist but failed their seal (a wrong key, an edited record). */
  rejected: number;
  /** unanswered is the first error of a tier that did not answer (unreachable, timed out), or null. */
  unanswered: unknown;
}

/**
 * collectCandidates asks every tier, in restore priority order, for its newest backups of the ledger (the local
 * store's, else any ledger's), keeps those whose record seal holds, and puts the local store among them at its
 * priority. A tier that does not answer within `timeoutMs` is skipped and remembered; a damaged local store offers
 * nothing (it counts as a candidate that failed). Each source's offer is logged as "Priority N: ...".
 */
export async function collectCandidates(ctx: {
  store: LocalStore;
  sealer: Sealer;
  entries: TierEntry[];
  localPriority: number;
  log: Logger;
  timeoutMs: number;
}): Promise<Collected> {
  const { store, sealer, log } = ctx;
  const candidates: Candidate[] = [];
  let rejected = 0;
  let unanswered: unknown = null;
  const sources: (TierEntry | null)[] = [...ctx.entries];
  sources.splice(ctx.localPriority, 0, null);
  for (const [i, entry] of sources.entries()) {
    const priority = `Priority ${i + 1}`;
    if (entry === null) {
      if (store.height >= 0) {
        log.info({ source: 'local' }, `${priority}: local store ${store.dir} holds ${store.height + 1} blocks`);
        candidates.push({
          source: 'local',
          label: `local store ${store.dir}`,
          tier: null,
          records: [],
          height: store.height,
          hash: store.headHash!,
        });
      } else if (store.damage) {
        log.error(
          { source: 'local', damage: store.damage },
          `${priority}: local store ${store.dir} is damaged, not used: ${store.damage}`,
        );
      } else {
        log.info({ source: 'local' }, `${priority}: local store ${store.dir} is empty`);
      }
      continue;
    }
    const { tier } = entry;
    try {
      const listed = await withDeadline(
        (async () => {
          await tier.init();
          return tier.listBackups(store.ledgerId ?? undefined, { limit: STARTUP_CANDIDATES });
        })(),
        ctx.timeoutMs,
        tier.label,
      );
      const records: BackupRecord[] = [];
      for (const r of listed) {
        try {
          checkRecord(sealer, r);
          if (records.length === 0 || r.ledgerId === records[0]!.ledgerId) records.push(r);
        } catch (err) {
          rejected++;
          log.error(
            { source: entry.name, backupId: r.id, err: describeError(err) },
            `${tier.label} backup ${r.id} skipped: ${describeError(err)}`,
          );
        }
      }
      const newest = records[0];
      log.info(
        { source: entry.name },
        newest
          ? `${priority}: ${tier.label} holds backup ${newest.id} (${newest.height + 1} blocks)`
          : `${priority}: ${tier.label} holds no usable backup of this ledger`,
      );
      if (newest)
        candidates.push({
          source: entry.name,
          label: tier.label,
          tier: entry,
          records,
          height: newest.height,
          hash: newest.headHash,
        });
    } catch (err) {
      unanswered ??= err;
      log.warn(
        { source: entry.name, err: describeError(err) },
        `${priority}: ${tier.label} skipped: ${describeError(err)}`,
      );
    }
  }
  return { candidates, rejected, unanswered };
}

/**
 * staleAfterRollback drops the tiers whose newest backup is older than a restore another tier recorded (a record of
 * kind 'restore'): an operator rolled the ledger back after their newest backup, so their longer chain is the one
 * the rollback left, and must not win back. It returns the candidates that stay, and logs the ones that go.
 */
export function staleAfterRollback(candidates: Candidate[], log: Logger): Candidate[] {
  const restores = candidates.flatMap((c) => c.records.filter((r) => r.kind === 'restore'));
  if (restores.length === 0) return candidates;
  const newest = restores.reduce((a, b) => (b.createdAt > a.createdAt ? b : a));
  return candidates.filter((c) => {
    const stale = c.tier !== null && c.records[0]!.createdAt < newest.createdAt;
    if (stale) {
      log.warn(
        { source: c.source, backupId: c.records[0]!.id, rollback: newest.id },
        `${c.label}'s newest backup ${c.records[0]!.id} is older than the restore recorded as ${newest.tier} backup ${newest.id} (${newest.createdAt.toISOString()}): it is stale and does not count`,
      );
    }
    return !stale;
  });
}

/** nextRecord moves a tier candidate on to its next newest backup after one failed; false when it has none left. */
export function nextRecord(c: Candidate): boolean {
  c.records.shift();
  const next = c.records[0];
  if (!next) return false;
  c.height = next.height;
  c.hash = next.headHash;
  return true;
}
