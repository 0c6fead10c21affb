import type { Sealer } from '../crypto/seal.js';
import { describeError, IntegrityError, NotFoundError } from '../errors.js';
import { openCheckpoint, type CheckpointSummary, type SealedCheckpoint } from '../crypto/checkpoints.js';
import type { Logger } from '../log.js';
import type { ChainPage } from '../crypto/packs.js';
import { stalling } from '../util/deadline.js';
import { checkRecord } from '../crypto/records.js';
import { ChainReplayer, replayChain, verifiedBatches, type Base, type ReplayedChain } from './replay.js';
import type { LocalStore } from '../store/local-store.js';
import type { BackupTier, StoredCheckpoint } from '../tiers/tier.js';
import type { BackupRecord } from '../crypto/records.js';

/** RestoreOptions tune restoreInto. */
export interface RestoreOptions {
  /** stallMs fails a restore whose source yields nothing for this long. */
  stallMs?: number;
  /** full replays from block 0 even when the tier holds a checkpoint (what a drill or `verify` does). */
  full?: boolean;
  /** log receives a warning when the tier's checkpoint is unusable and the restore replays in full instead. */
  log?: Logger;
  /** pageBlocks is how many loose blocks are opened and replayed between turns of the event loop (a drill's few). */
  pageBlocks?: number;
  /** task names the restore in progress reports (util/progress.ts); by default `restore <tier> backup <id>`. */
  task?: string;
}

/**
 * restoreInto fetches a backup's chain from a tier, verifies it as it streams, and makes it the local store's chain
 * only if it verifies and ends at the record's head; otherwise the store is unchanged and IntegrityError names the
 * backup and the bad block. Where the tier holds a checkpoint on the record's chain, every block is authenticated,
 * hashed and linked, the checkpoint's state is taken at its block (whose hash it must match) and the blocks after it
 * are replayed; the result's `checkpoint` then says so, and the full replay from block 0 is left to the caller
 * (engine/background-replay.ts). A checkpoint that cannot be used (it does not open) is logged and the chain is
 * replayed in full instead.
 */
export async function restoreInto(
  store: LocalStore,
  tier: BackupTier,
  record: BackupRecord,
  sealer: Sealer,
  options: RestoreOptions = {},
): Promise<ReplayedChain> {
  checkRecord(sealer, record);
  const where = `${tier.name} backup ${record.id}`;
  const stored = options.full ? null : await tier.checkpointFor?.(record);
  const base =
    stored && stored.height <= record.height
      ? await checkpointBase(stored, record.ledgerId, sealer, where, options.log)
      : null;
  const replayer = new ChainReplayer(sealer, where, record.ledgerId, base);
  const expect = { height: record.height, hash: record.headHash };
  const chain: AsyncIterable<ChainPage> = tier.readChainPages(record);
  const source = options.stallMs
    ? stalling(chain, options.stallMs, `${tier.label} (restoring backup ${record.id})`)
    : chain;
  // The checkpoint the state came from is kept with the chain, so the next start from the local store uses it too.
  await store.replace(
    record.ledgerId,
    verifiedBatches(source, replayer, expect, {
      ...(options.pageBlocks ? { pageBlocks: options.pageBlocks } : {}),
      ...(options.task ? { task: options.task } : {}),
    }),
    base?.sealed,
  );
  const replayed = replayer.finish(expect)!;
  return base ? { ...replayed, checkpoint: { height: base.height, hash: base.hash, summary: base.summary } } : replayed;
}

/**
 * checkpointBase opens a stored checkpoint (a tier's, or the local store's) as the base a replay starts from: its
 * state, summary and sealed parts. A checkpoint that does not open is logged and null is returned: the caller then
 * replays the chain in full. That its block is on the chain is the replay's check (ChainReplayer), not this one's.
 */
export async function checkpointBase(
  stored: StoredCheckpoint,
  ledgerId: string,
  sealer: Sealer,
  where: string,
  log?: Logger,
): Promise<(Base & { summary: CheckpointSummary; sealed: SealedCheckpoint }) | null> {
  try {
    const parts: Buffer[] = [];
    for await (const part of stored.parts()) parts.push(part);
    const { state, summary } = await openCheckpoint(sealer, ledgerId, stored, parts, where);
    return {
      height: stored.height,
      hash: stored.hash,
      state,
      summary,
      sealed: { height: stored.height, hash: stored.hash, parts },
    };
  } catch (err) {
    if (!(err instanceof IntegrityError)) throw err;
    log?.warn(
      { where, height: stored.height, err: describeError(err) },
      `The checkpoint at block ${stored.height} in ${where} cannot be used (${describeError(err)}): replaying the chain in full instead`,
    );
    return null;
  }
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
