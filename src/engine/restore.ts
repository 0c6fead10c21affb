import type { Sealer } from '../crypto/seal.js';
import { describeError, IntegrityError, NotFoundError, NotWriterError, UnavailableError } from '../errors.js';
import { stalling, withDeadline } from '../util/deadline.js';
import type { Logger } from '../log.js';
import { checkRecord, sealRecord } from '../crypto/records.js';
import { Mutex } from '../util/mutex.js';
import { Replicator } from './replicator.js';
import { ChainReplayer, replayChain, verifiedBatches, type ReplayedChain } from './replay.js';
import type { LocalStore } from '../store/local-store.js';
import type { StoredBlock } from '../crypto/stored-block.js';
import type { BackupTier } from '../tiers/tier.js';
import type { BackupRecord } from '../crypto/records.js';

/** RestoredFrom names where the running chain came from. */
export type RestoredFrom = 'db' | 'ipfs' | 'local' | 'genesis';

/**
 * restoreInto fetches a backup's chain from a tier, verifies every block as it streams, and makes it the local
 * store's chain only if the whole chain verifies and ends at the record's head; otherwise the store is unchanged
 * and IntegrityError names the backup and the bad block.
 */
export async function restoreInto(store: LocalStore, tier: BackupTier, record: BackupRecord, sealer: Sealer, stallMs?: number): Promise<ReplayedChain> {
  checkRecord(sealer, record);
  const where = `${tier.name} backup ${record.id}`;
  const replayer = new ChainReplayer(sealer, where, record.ledgerId);
  const expect = { height: record.height, hash: record.headHash };
  const chain: AsyncIterable<StoredBlock | StoredBlock[]> = tier.readChainPages ? tier.readChainPages(record) : tier.readChain(record);
  const source = stallMs ? stalling(chain, stallMs, `${tier.label} (restoring backup ${record.id})`) : chain;
  await store.replace(record.ledgerId, verifiedBatches(source, replayer, expect));
  return replayer.finish(expect)!;
}

/** verifyBackup checks a backup end to end (record seal, every block, head hash) without changing anything. */
export async function verifyBackup(tier: BackupTier, record: BackupRecord, sealer: Sealer): Promise<ReplayedChain> {
  checkRecord(sealer, record);
  const replayed = await replayChain(tier.readChainPages ? tier.readChainPages(record) : tier.readChain(record), sealer, {
    where: `${tier.name} backup ${record.id}`, ledgerId: record.ledgerId, expectHead: { height: record.height, hash: record.headHash },
  });
  return replayed!;
}

/** ChosenRestore is the outcome of restoring (or, dry, planning to restore) one chosen backup. */
export interface ChosenRestore {
  record: BackupRecord;
  /** rollback is true when the backup does not contain the local head: blocks after it leave the running chain. */
  rollback: boolean;
  localHeight: number;
  chain: ReplayedChain | null;
}

/**
 * restoreChosen restores one backup an operator chose (the newest of the local ledger when no id is given) into the
 * local store, replacing whatever it held; with dryRun it only reports what would happen.
 */
export async function restoreChosen(ctx: { store: LocalStore; sealer: Sealer; tier: BackupTier }, id: string | undefined, dryRun: boolean): Promise<ChosenRestore> {
  const { store, sealer, tier } = ctx;
  const record = id ? await tier.getBackup(id) : await latestBackup(tier, store.ledgerId);
  if (!record) throw new NotFoundError(`${tier.label} holds no backup${store.ledgerId ? ' of this ledger' : ''}`, { hint: 'List them with `pawledger backups list`' });
  checkRecord(sealer, record);
  const rollback = store.height >= 0 && !(record.ledgerId === store.ledgerId && (await tier.hashAt(record, store.height)) === store.headHash);
  const chain = dryRun ? null : await restoreInto(store, tier, record, sealer);
  return { record, rollback, localHeight: store.height, chain };
}

/** latestBackup returns a tier's newest backup of the ledger (of any ledger when ledgerId is null), or null. */
export async function latestBackup(tier: BackupTier, ledgerId: string | null): Promise<BackupRecord | null> {
  return (await tier.listBackups(ledgerId ?? undefined, { limit: 1 }))[0] ?? null;
}

// How many of a tier's newest backups startup tries before giving up on that tier.
const STARTUP_CANDIDATES = 20;

/** Candidate is one source's offer at startup: a remote tier's valid-looking backups (newest first), or the local store. */
interface Candidate {
  source: string;
  tier: BackupTier | null;
  records: BackupRecord[];
  height: number;
  hash: string;
}

/**
 * restoreAtStartup picks the chain to run with, by the rule in docs/ARCHITECTURE.md. Candidates, in priority order:
 * each remote tier's newest backup (the database, then IPFS) and the local store. Only a candidate that decrypts and
 * verifies in full counts; a backup that fails is skipped for that tier's next newest. The winner is the candidate
 * whose chain contains every other's head (a stale tier never rolls back newer blocks held elsewhere); on a true fork
 * the local branch is first kept in the database, then the highest priority wins, loudly. It returns null only when
 * no source holds anything; when some tier holds backups but none verifies (a wrong key, say) and nothing else
 * does, it throws rather than start a new ledger.
 */
export async function restoreAtStartup(ctx: {
  store: LocalStore;
  sealer: Sealer;
  tiers: BackupTier[];
  log: Logger;
  /** timeoutMs cuts off a source that does not answer, or stops sending blocks, for that long. @default 30000 */
  timeoutMs?: number;
}): Promise<{ chain: ReplayedChain; from: RestoredFrom; damaged: BackupRecord[]; fork: string | null } | null> {
  const { store, sealer, log } = ctx;
  const timeoutMs = ctx.timeoutMs ?? 30_000;
  const candidates: Candidate[] = [];
  // Backups whose record was sound but whose chain failed to verify: a tier holding altered block bytes.
  const damaged: BackupRecord[] = [];
  let rejected = 0;
  let unanswered: unknown = null;
  for (const [i, tier] of ctx.tiers.entries()) {
    try {
      const listed = await withDeadline((async () => {
        await tier.init();
        return tier.listBackups(store.ledgerId ?? undefined, { limit: STARTUP_CANDIDATES });
      })(), timeoutMs, tier.label);
      const records: BackupRecord[] = [];
      for (const r of listed) {
        try {
          checkRecord(sealer, r);
          if (records.length === 0 || r.ledgerId === records[0]!.ledgerId) records.push(r);
        } catch (err) {
          rejected++;
          log.error({ source: tier.name, backupId: r.id, err: describeError(err) }, `${tier.label} backup ${r.id} skipped: ${describeError(err)}`);
        }
      }
      const newest = records[0];
      log.info({ source: tier.name }, newest
        ? `Priority ${i + 1}: ${tier.label} holds backup ${newest.id} (${newest.height + 1} blocks)`
        : `Priority ${i + 1}: ${tier.label} holds no usable backup of this ledger`);
      if (newest) candidates.push({ source: tier.name, tier, records, height: newest.height, hash: newest.headHash });
    } catch (err) {
      unanswered ??= err;
      log.warn({ source: tier.name, err: describeError(err) }, `Priority ${i + 1}: ${tier.label} skipped: ${describeError(err)}`);
    }
  }
  const priority = ctx.tiers.length + 1;
  if (store.height >= 0) {
    log.info({ source: 'local' }, `Priority ${priority}: local store ${store.dir} holds ${store.height + 1} blocks`);
    candidates.push({ source: 'local', tier: null, records: [], height: store.height, hash: store.headHash! });
  } else if (store.damage) {
    log.error({ source: 'local', damage: store.damage }, `Priority ${priority}: local store ${store.dir} is damaged, not used: ${store.damage}`);
  } else {
    log.info({ source: 'local' }, `Priority ${priority}: local store ${store.dir} is empty`);
  }
  // Different ledgers do not compete: the local store's ledger, else the highest-priority tier's.
  const ledgerId = store.ledgerId ?? candidates[0]?.records[0]?.ledgerId;
  let live = candidates.filter((c) => c.tier === null || c.records[0]!.ledgerId === ledgerId);

  const holds = async (c: Candidate, other: Candidate): Promise<boolean> => {
    if (other.height > c.height) return false;
    if (c.tier === null) return (await store.hashAt(other.height)) === other.hash;
    return (await withDeadline(c.tier.hashAt(c.records[0]!, other.height), timeoutMs, c.tier.label)) === other.hash;
  };
  let forkKept = false;
  let fork: string | null = null;
  while (live.length > 0) {
    let best: Candidate | undefined;
    // The local store first: when it holds every other head it is the freshest and needs no transfer.
    for (const c of [...live.filter((x) => x.tier === null), ...live.filter((x) => x.tier !== null)]) {
      let all = true;
      for (const o of live) if (o !== c && !(await holds(c, o).catch(() => false))) all = false;
      if (all) {
        best = c;
        break;
      }
    }
    const local = live.find((c) => c.tier === null);
    if (!best) {
      const db = ctx.tiers.find((t) => t.name === 'db');
      // Without a database to keep it in, the local branch holds acknowledged saves: keep running on it.
      best = local && !db ? local : live[0]!;
      fork = `the sources held diverging chains at startup (${live.map((c) => `${c.source} at block ${c.height}`).join(', ')}); took ${best.source}'s${local && db ? ', the local branch is kept in the database as a "Fork: local branch" backup' : best === local ? ' (no database to keep the local branch in, and it holds acknowledged saves)' : ''}`;
      log.error({ source: best.source, heights: live.map((c) => `${c.source}:${c.height}`) }, `FORK: ${fork}`);
      if (local && db && !forkKept) {
        const localChain = await replayChain(store.readPages(), sealer, { where: `local store ${store.dir}` }).catch(() => null);
        if (localChain) await preserveLocalBranch({ store, sealer, db, log }, localChain);
        forkKept = true;
      }
    }
    try {
      if (best.tier === null) {
        const chain = await replayChain(store.readPages(), sealer, { where: `local store ${store.dir}` });
        return { chain: chain!, from: 'local', damaged, fork };
      }
      const record = best.records[0]!;
      const chain = await restoreInto(store, best.tier, record, sealer, timeoutMs);
      return { chain, from: best.tier.name === 'db' ? 'db' : 'ipfs', damaged, fork };
    } catch (err) {
      // A source that fails to deliver (unreachable, cut off) is skipped like a bad one when another can serve.
      if (!(err instanceof IntegrityError) && !(err instanceof NotFoundError) && !(err instanceof UnavailableError && live.length > 1)) throw err;
      const others = live.length > 1;
      if (!others && best.records.length <= 1) {
        if (best.tier === null && rejected === 0) throw err;
      }
      log.error({ source: best.source, err: describeError(err) }, `${best.source === 'local' ? 'Local store' : `${best.tier!.label} backup ${best.records[0]!.id}`} failed, not used: ${describeError(err)}`);
      rejected++;
      if (best.tier && err instanceof IntegrityError) damaged.push(best.records[0]!);
      // Try that tier's next newest backup, or drop the source.
      best.records.shift();
      if (best.tier === null || best.records.length === 0) live = live.filter((c) => c !== best);
      else Object.assign(best, { height: best.records[0]!.height, hash: best.records[0]!.headHash });
    }
  }
  if (store.damage) throw damagedWithoutCopy(store, unanswered);
  if (rejected > 0) {
    throw new IntegrityError('backups of this ledger exist but none decrypts and verifies; refusing to start a new ledger over them', {
      hint: 'Check LEDGER_ENCRYPTION_KEY; `pawledger verify --from db --id ID` shows why a backup fails',
    });
  }
  // A tier that did not answer may hold the ledger: a new genesis would orphan it (and the next wiped-disk restart
  // would pick the new ledger). Stop with the tier's own error (UnavailableError, ConfigError) and its hint.
  if (unanswered) throw unanswered;
  return null;
}

// The refusal to start when the local store is damaged and no tier gave a copy that verifies: nothing was changed.
function damagedWithoutCopy(store: LocalStore, unanswered: unknown): IntegrityError {
  const waiting = unanswered ? ` (${describeError(unanswered)})` : '';
  return new IntegrityError(`the local store ${store.dir} is damaged (${store.damage}) and no other tier gave a copy of the ledger that verifies${waiting}; nothing was changed`, {
    hint: unanswered
      ? 'Start again once that tier answers: pawledger restores from it and moves the damaged files aside'
      : `Restore a copy (\`pawledger restore --from db --id ID\`, \`restore --cid CID\`, or \`pawledger import FILE\` from an export), which moves the damaged files aside; \`pawledger doctor\` names the damage`,
  });
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
  if (!ok && replicator.lastFailure instanceof NotWriterError) {
    // A standby writes nothing. If the database already holds the local branch (a rollback left it there), nothing is
    // lost; if it does not, only the lease holder could keep it, and taking the database's chain would drop it.
    if (await ctx.db!.hasBlock(chain.ledgerId, chain.head.index, chain.head.hash)) {
      log.warn({ height: chain.head.index }, `The local branch (block ${chain.head.index}) is already in the database as a branch; a standby does not record it`);
      return;
    }
    throw new NotWriterError(`the local store holds a branch (block ${chain.head.index}) the database lacks, and only the writer lease's holder may keep it there`, {
      hint: 'Stop the instance that holds the writer lease, then start this one: it takes the lease and keeps the branch as a "Fork: local branch" backup',
    });
  }
  if (!ok) throw new IntegrityError(`could not keep the local branch in the database before taking the database's chain: ${replicator.lastError}`);
}
