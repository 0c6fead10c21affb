import type { Sealer } from '../crypto/seal.js';
import { describeError, IntegrityError, NotFoundError } from '../errors.js';
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

// How many of the database's newest backups startup tries before giving up on the database.
const STARTUP_CANDIDATES = 20;

/**
 * restoreAtStartup picks the chain to run with, by the rule in docs/ARCHITECTURE.md: the database's newest backup and
 * the local store are candidates; only a candidate that decrypts and verifies in full counts; the one that contains
 * the other wins (a stale database never rolls back newer local blocks); on a true fork the local branch is kept in
 * the database and the database's chain wins by priority, loudly. A database backup that fails verification is
 * skipped for the next newest. It returns null only when no source holds anything; when the database holds backups
 * and none verifies (a wrong key, say) and the local store is empty, it throws rather than start a new ledger.
 */
export async function restoreAtStartup(ctx: {
  store: LocalStore;
  sealer: Sealer;
  db: BackupTier | null;
  log: Logger;
}): Promise<{ chain: ReplayedChain; from: RestoredFrom } | null> {
  const { store, sealer, db, log } = ctx;
  const local = store.height >= 0 ? { height: store.height, hash: store.headHash! } : null;
  let records: BackupRecord[] = [];
  let rejected = 0;
  if (db) {
    try {
      await db.init();
      for (const r of await db.listBackups(store.ledgerId ?? undefined, { limit: STARTUP_CANDIDATES })) {
        try {
          checkRecord(sealer, r);
          records.push(r);
        } catch (err) {
          rejected++;
          log.error({ source: 'db', backupId: r.id, err: describeError(err) }, `Database backup ${r.id} skipped: ${describeError(err)}`);
        }
      }
      // Only the newest ledger's backups compete (with an empty local store, the database may hold several ledgers).
      records = records.filter((r) => r.ledgerId === (store.ledgerId ?? records[0]?.ledgerId));
      log.info({ source: 'db' }, records[0]
        ? `Priority 1: ${db.label} holds backup ${records[0].id} (${records[0].height + 1} blocks)`
        : `Priority 1: ${db.label} holds no usable backup of this ledger`);
    } catch (err) {
      log.warn({ source: 'db', err: describeError(err) }, `Priority 1: PostgreSQL skipped: ${describeError(err)}`);
    }
  }
  log.info({ source: 'local' }, local ? `Priority 2: local store ${store.dir} holds ${local.height + 1} blocks` : `Priority 2: local store ${store.dir} is empty`);

  const replayLocal = async (): Promise<ReplayedChain | null> => {
    if (!local) return null;
    try {
      return await replayChain(store.read(), sealer, { where: `local store ${store.dir}` });
    } catch (err) {
      if (!(err instanceof IntegrityError) || records.length === 0) throw err;
      log.error({ source: 'local', err: err.message }, `Local store failed verification, falling back to the database: ${err.message}`);
      return null;
    }
  };
  // Newest first, the first database backup whose whole chain verifies (and, if `mustContain`, holds that block).
  const fromDb = async (mustContain: { height: number; hash: string } | null): Promise<ReplayedChain | null> => {
    for (const record of records) {
      try {
        if (mustContain && (await db!.hashAt(record, mustContain.height)) !== mustContain.hash) continue;
        return await restoreInto(store, db!, record, sealer);
      } catch (err) {
        if (!(err instanceof IntegrityError) && !(err instanceof NotFoundError)) throw err;
        log.error({ source: 'db', backupId: record.id, err: describeError(err) }, `Database backup ${record.id} failed, not used: ${describeError(err)}`);
      }
    }
    return null;
  };
  const refuse = (): never => {
    throw new IntegrityError(`${db!.label} holds backups of this ledger but none of the newest ${STARTUP_CANDIDATES} decrypts and verifies; refusing to start a new ledger over them`, {
      hint: 'Check LEDGER_ENCRYPTION_KEY; `pawledger verify --from db --id ID` shows why a backup fails',
    });
  };

  const newest = records[0];
  if (!newest) {
    const chain = await replayLocal();
    if (chain) return { chain, from: 'local' };
    return rejected > 0 ? refuse() : null;
  }
  // The local store already contains the database's newest backup: it is at least as fresh.
  if (local && newest.height <= local.height && (await store.hashAt(newest.height)) === newest.headHash) {
    const chain = await replayLocal();
    if (chain) return { chain, from: 'local' };
    const restored = await fromDb(null);
    return restored ? { chain: restored, from: 'db' } : refuse();
  }
  if (!local || (await db!.hashAt(newest, local.height)) === local.hash) {
    const restored = await fromDb(local);
    if (restored) return { chain: restored, from: 'db' };
    const chain = await replayLocal();
    return chain ? { chain, from: 'local' } : refuse();
  }
  // A true fork: keep the local branch in the database (as a branch with its own record), then take the database's.
  const localChain = await replayLocal();
  if (localChain) {
    log.error(
      { source: 'db', backupId: newest.id, localHeight: local.height, dbHeight: newest.height },
      `FORK: the database's backup ${newest.id} (block ${newest.height}) and the local store (block ${local.height}) hold diverging chains; ` +
        'keeping the local branch in the database and taking the database\'s chain by priority',
    );
    await preserveLocalBranch(ctx, localChain);
  }
  const restored = await fromDb(null);
  if (restored) return { chain: restored, from: 'db' };
  return localChain ? { chain: localChain, from: 'local' } : refuse();
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
