import type { Sealer } from '../crypto/seal.js';
import { describeError, IntegrityError } from '../errors.js';
import type { Logger } from '../log.js';
import { checkRecord, sealRecord } from '../service/backup-records.js';
import { Mutex } from '../service/mutex.js';
import { Replicator } from './replicator.js';
import { ChainReplayer, replayChain, verifiedStream, type ReplayedChain } from '../service/replay.js';
import type { LocalStore } from '../store/local-store.js';
import type { BackupRecord, BackupTier } from '../tiers/tier.js';

/** RestoredFrom names where the running chain came from. */
export type RestoredFrom = 'db' | 'local' | 'genesis';

/**
 * restoreInto fetches a backup's chain from a tier, verifies every block as it streams, and makes it the local
 * store's chain only if the whole chain verifies and ends at the record's head; otherwise the store is unchanged
 * and IntegrityError names the backup and the bad block.
 */
export async function restoreInto(store: LocalStore, tier: BackupTier, record: BackupRecord, sealer: Sealer): Promise<ReplayedChain> {
  checkRecord(sealer, record);
  const where = `${tier.name} backup ${record.id}`;
  const replayer = new ChainReplayer(sealer, where, record.ledgerId);
  const expect = { height: record.height, hash: record.headHash };
  await store.replace(record.ledgerId, verifiedStream(tier.readChain(record), replayer, expect));
  return replayer.finish(expect)!;
}

/** verifyBackup checks a backup end to end (record seal, every block, head hash) without changing anything. */
export async function verifyBackup(tier: BackupTier, record: BackupRecord, sealer: Sealer): Promise<ReplayedChain> {
  checkRecord(sealer, record);
  const replayed = await replayChain(tier.readChain(record), sealer, {
    where: `${tier.name} backup ${record.id}`, ledgerId: record.ledgerId, expectHead: { height: record.height, hash: record.headHash },
  });
  return replayed!;
}

/** latestBackup returns a tier's newest backup of the ledger (of any ledger when ledgerId is null), or null. */
export async function latestBackup(tier: BackupTier, ledgerId: string | null): Promise<BackupRecord | null> {
  return (await tier.listBackups(ledgerId ?? undefined, { limit: 1 }))[0] ?? null;
}

/**
 * restoreAtStartup picks the chain to run with, by the rule in docs/ARCHITECTURE.md: the database's newest backup and
 * the local store are candidates; only a candidate that decrypts and verifies in full counts; the one that contains
 * the other wins (a stale database never rolls back newer local blocks); on a true fork the database wins by priority,
 * loudly. It returns null when no source holds a chain. The local store ends up holding the chosen chain; the
 * database is healed afterwards by the replicator's catch-up.
 */
export async function restoreAtStartup(ctx: {
  store: LocalStore;
  sealer: Sealer;
  db: BackupTier | null;
  log: Logger;
}): Promise<{ chain: ReplayedChain; from: RestoredFrom } | null> {
  const { store, sealer, db, log } = ctx;
  const local = store.height >= 0 ? { height: store.height, hash: store.headHash! } : null;
  let record: BackupRecord | null = null;
  if (db) {
    try {
      await db.init();
      record = await latestBackup(db, store.ledgerId);
      if (record) checkRecord(sealer, record);
      log.info({ source: 'db' }, record
        ? `Priority 1: ${db.label} holds backup ${record.id} (${record.height + 1} blocks)`
        : `Priority 1: ${db.label} holds no backup of this ledger`);
    } catch (err) {
      log.warn({ source: 'db', err: describeError(err) }, `Priority 1: PostgreSQL skipped: ${describeError(err)}`);
      record = null;
    }
  }
  log.info({ source: 'local' }, local ? `Priority 2: local store ${store.dir} holds ${local.height + 1} blocks` : `Priority 2: local store ${store.dir} is empty`);

  const replayLocal = async (): Promise<ReplayedChain | null> => {
    if (!local) return null;
    try {
      return await replayChain(store.read(), sealer, { where: `local store ${store.dir}` });
    } catch (err) {
      if (!(err instanceof IntegrityError) || !record) throw err;
      log.error({ source: 'local', err: err.message }, `Local store failed verification, falling back to the database: ${err.message}`);
      return null;
    }
  };
  const fromDb = async (): Promise<ReplayedChain | null> => {
    try {
      return await restoreInto(store, db!, record!, sealer);
    } catch (err) {
      if (!(err instanceof IntegrityError) && !local) throw err;
      log.error({ source: 'db', backupId: record!.id, err: describeError(err) }, `Database backup ${record!.id} failed, not used: ${describeError(err)}`);
      return null;
    }
  };

  if (!record) {
    const chain = await replayLocal();
    return chain ? { chain, from: 'local' } : null;
  }
  // The local store already contains the database's newest backup: it is at least as fresh.
  if (local && record.ledgerId === store.ledgerId && record.height <= local.height && (await store.hashAt(record.height)) === record.headHash) {
    const chain = await replayLocal();
    if (chain) return { chain, from: 'local' };
    const restored = await fromDb();
    return restored ? { chain: restored, from: 'db' } : null;
  }
  const dbExtendsLocal = !local || (record.height > local.height && (await db!.hasBlock(record.ledgerId, local.height, local.hash)));
  if (dbExtendsLocal) {
    const restored = await fromDb();
    if (restored) return { chain: restored, from: 'db' };
    const chain = await replayLocal();
    return chain ? { chain, from: 'local' } : null;
  }
  // A true fork: keep the local branch in the database (as a branch with its own record), then take the database's.
  const localChain = await replayLocal();
  if (localChain) {
    log.error(
      { source: 'db', backupId: record.id, localHeight: local!.height, dbHeight: record.height },
      `FORK: the database's backup ${record.id} (block ${record.height}) and the local store (block ${local!.height}) hold diverging chains; ` +
        'keeping the local branch in the database and taking the database\'s chain by priority',
    );
    await preserveLocalBranch(ctx, localChain);
  }
  const restored = await fromDb();
  if (restored) return { chain: restored, from: 'db' };
  return localChain ? { chain: localChain, from: 'local' } : null;
}

// preserveLocalBranch sends the local blocks the database lacks and records their head as a protected-by-name backup.
async function preserveLocalBranch(ctx: { store: LocalStore; sealer: Sealer; db: BackupTier | null; log: Logger }, chain: ReplayedChain): Promise<void> {
  const { store, sealer, log } = ctx;
  const replicator = new Replicator(ctx.db!, {
    ledgerId: chain.ledgerId,
    headHeight: chain.head.index,
    hashAt: (h) => store.hashAt(h),
    read: (from, to) => store.read(from, to),
    autoRecord: () => sealRecord(sealer, {
      ledgerId: chain.ledgerId, name: `Fork: local branch at block ${chain.head.index}`, kind: 'manual', createdAt: new Date(),
      createdBy: null, height: chain.head.index, headHash: chain.head.hash, sizeBytes: chain.sizeBytes,
    }),
  }, { log, serial: new Mutex(), retryMs: 1000, describe: 'database (fork branch)' });
  const ok = await replicator.catchUp();
  replicator.stop();
  if (!ok) throw new IntegrityError(`could not keep the local branch in the database before taking the database's chain: ${replicator.lastError}`);
}
