import type { Sealer } from '../crypto/seal.js';
import { NotFoundError } from '../errors.js';
import type { ChainPage } from '../crypto/packs.js';
import { stalling } from '../util/deadline.js';
import { checkRecord } from '../crypto/records.js';
import { ChainReplayer, replayChain, verifiedBatches, type ReplayedChain } from './replay.js';
import type { LocalStore } from '../store/local-store.js';
import type { BackupTier } from '../tiers/tier.js';
import type { BackupRecord } from '../crypto/records.js';

/**
 * restoreInto fetches a backup's chain from a tier, verifies every block as it streams, and makes it the local
 * store's chain only if the whole chain verifies and ends at the record's head; otherwise the store is unchanged
 * and IntegrityError names the backup and the bad block.
 */
export async function restoreInto(
  store: LocalStore,
  tier: BackupTier,
  record: BackupRecord,
  sealer: Sealer,
  stallMs?: number,
): Promise<ReplayedChain> {
  checkRecord(sealer, record);
  const where = `${tier.name} backup ${record.id}`;
  const replayer = new ChainReplayer(sealer, where, record.ledgerId);
  const expect = { height: record.height, hash: record.headHash };
  const chain: AsyncIterable<ChainPage> = tier.readChainPages(record);
  const source = stallMs ? stalling(chain, stallMs, `${tier.label} (restoring backup ${record.id})`) : chain;
  await store.replace(record.ledgerId, verifiedBatches(source, replayer, expect));
  return replayer.finish(expect)!;
}

/** verifyBackup checks a backup end to end (record seal, every block, head hash) without changing anything. */
export async function verifyBackup(tier: BackupTier, record: BackupRecord, sealer: Sealer): Promise<ReplayedChain> {
  checkRecord(sealer, record);
  const replayed = await replayChain(tier.readChainPages(record), sealer, {
    where: `${tier.name} backup ${record.id}`,
    ledgerId: record.ledgerId,
    expectHead: { height: record.height, hash: record.headHash },
  });
  return replayed!;
}

/** RestorePlan says what a restore did, or with dryRun would do. */
export interface RestorePlan {
  tier: string;
  backupId: string;
  name: string;
  height: number;
  headHash: string;
  currentHeight: number;
  /** rollback is true when the backup does not contain the current head: blocks after it leave the running chain. */
  rollback: boolean;
  dryRun: boolean;
}

/**
 * planRestore finds the backup to restore (`id`, or the tier's newest of `ledgerId`), checks its seal, and says
 * whether restoring it rolls back the chain that ends at `current` (null: nothing to roll back, e.g. an empty or
 * damaged local store).
 */
export async function planRestore(
  tier: BackupTier,
  name: string,
  options: {
    id?: string;
    ledgerId: string | null;
    current: { height: number; hash: string } | null;
    sealer: Sealer;
    dryRun: boolean;
  },
): Promise<{ record: BackupRecord; plan: RestorePlan }> {
  const record = options.id ? await tier.getBackup(options.id) : await latestBackup(tier, options.ledgerId);
  if (!record)
    throw new NotFoundError(`${tier.label} holds no backup${options.ledgerId ? ' of this ledger' : ''}`, {
      hint: 'List them with `pawledger backups list`',
    });
  checkRecord(options.sealer, record);
  const { current } = options;
  const contains =
    current !== null &&
    record.ledgerId === options.ledgerId &&
    (await tier.hashAt(record, current.height)) === current.hash;
  const plan: RestorePlan = {
    tier: name,
    backupId: record.id,
    name: record.name,
    height: record.height,
    headHash: record.headHash,
    currentHeight: current?.height ?? -1,
    rollback: current !== null && !contains,
    dryRun: options.dryRun,
  };
  return { record, plan };
}

/** latestBackup returns a tier's newest backup of the ledger (of any ledger when ledgerId is null), or null. */
export async function latestBackup(tier: BackupTier, ledgerId: string | null): Promise<BackupRecord | null> {
  return (await tier.listBackups(ledgerId ?? undefined, { limit: 1 }))[0] ?? null;
}
