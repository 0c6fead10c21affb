import type { IpfsQueue } from '../engine/ipfs-queue.js';
import type { Replicator } from '../engine/replicator.js';
import type { RetentionPolicy } from '../engine/retention.js';
import { latestBackup, restoreInto, verifyBackup } from '../engine/restore.js';
import type { Sealer } from '../crypto/seal.js';
import { IntegrityError, NotFoundError, PawledgerError, UnavailableError } from '../errors.js';
import type { Logger } from '../log.js';
import type { LocalStore } from '../store/local-store.js';
import type { BackupTier } from '../tiers/tier.js';
import type { BackupRecord, NewBackup } from '../crypto/records.js';
import { checkRecord } from '../crypto/records.js';
import { Pruner, type PruneReport, type PruneTarget } from '../engine/prune.js';
import type { ReplayedChain } from '../engine/replay.js';

/** TierName names a remote tier an operator can back up to and restore from. */
export type TierName = 'db' | 'ipfs';

/** BackupResult is what a manual backup returns. */
export interface BackupResult {
  id: string;
  tier: string;
  name: string;
  height: number;
  headHash: string;
  sizeBytes: number;
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

/** LedgerCore is the part of the Ledger that tier operations work on; the Ledger hands it over at construction. */
export interface LedgerCore {
  readonly sealer: Sealer;
  readonly store: LocalStore;
  readonly log: Logger;
  chain(): ReplayedChain;
  setChain(chain: ReplayedChain): void;
  /** quiesce waits for queued saves, then runs fn alone in the serial section. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** record seals a backup record for the current head. */
  record(name: string, kind: 'auto' | 'manual', createdBy: number | null): NewBackup;
  /** assertWriter throws NotWriterError on a standby (another instance holds the writer lease): it writes no tier. */
  assertWriter(): void;
  /** now is the ledger's clock (retention measures ages with it). */
  now(): Date;
  tiers: { db: { tier: BackupTier; replicator: Replicator } | null; ipfs: { tier: BackupTier; queue: IpfsQueue } | null };
}

/**
 * BackupOps are the operator's tier operations, written once for every tier: back up by name, list, restore the
 * newest or a chosen backup (a rollback keeps the newer blocks in the tier), verify without restoring, protect, and
 * prune by a retention policy (prune.ts).
 */
export class BackupOps {
  readonly #pruner: Pruner;

  constructor(private readonly core: LedgerCore) {
    this.#pruner = new Pruner(core, (name) => this.#tier(name));
  }

  #tier(name: TierName): BackupTier {
    const t = this.core.tiers[name]?.tier;
    if (!t) {
      throw new NotFoundError(`the ${name === 'db' ? 'database' : 'IPFS'} tier is off`, {
        hint: name === 'db' ? 'Set DATABASE_URL, or unset LEDGER_DB=off to use the embedded database' : 'Set PINATA_JWT (or PINATA_API_KEY and PINATA_SECRET_KEY), IPFS_API_URL, or IPFS_PROVIDER=embedded',
      });
    }
    return t;
  }

  /** backup records a named backup of the current head, after bringing the tier level with the local store. */
  async backup(name: TierName, options: { name: string; adminId?: number | null; protect?: boolean }): Promise<BackupResult> {
    const tier = this.#tier(name);
    this.core.assertWriter();
    return this.core.exclusive(async () => {
      const { db, ipfs } = this.core.tiers;
      if (name === 'db' && db!.replicator.state !== 'ok' && !(await db!.replicator.catchUp())) {
        // Pass the tier's own error on: a ConfigError (missing tables, say) must not read as "unreachable".
        const failure = db!.replicator.lastFailure;
        throw failure instanceof PawledgerError ? failure : new UnavailableError(`the database backup failed: ${db!.replicator.lastError}`, { cause: failure });
      }
      if (name === 'ipfs' && !(await ipfs!.queue.flush())) throw new UnavailableError(`IPFS is unreachable: ${ipfs!.queue.lastError}`);
      const rec = await tier.putBackup(this.core.record(options.name, 'manual', options.adminId ?? null));
      if (options.protect) await tier.setProtected(rec.id, true);
      this.core.log.info({ tier: name, backupId: rec.id, backupName: rec.name },
        `Manual backup to ${tier.label}: Backup ID ${rec.id}, Name "${rec.name}", Blocks ${rec.height + 1}`);
      return { id: rec.id, tier: rec.tier, name: rec.name, height: rec.height, headHash: rec.headHash, sizeBytes: rec.sizeBytes };
    });
  }

  /** prune applies a retention policy to one tier or all (see Pruner); with dryRun it only reports. */
  prune(target: PruneTarget, policy: RetentionPolicy, options: { dryRun?: boolean } = {}): Promise<PruneReport> {
    return this.#pruner.prune(target, policy, options);
  }

  /** protect marks a backup protected (retention never removes it), or with on false, not. */
  async protect(name: TierName, id: string, on: boolean): Promise<void> {
    this.core.assertWriter();
    await this.#tier(name).setProtected(id, on);
    this.core.log.info({ tier: name, backupId: id, protected: on }, `Backup ${id} on the ${name} tier is ${on ? 'now protected' : 'no longer protected'}`);
  }

  /** list returns a tier's backups (of one ledger, or of every ledger), newest first. */
  async list(name: TierName, limit: number, ledgerId?: string): Promise<BackupRecord[]> {
    return this.#tier(name).listBackups(ledgerId, { limit });
  }

  async #find(tier: BackupTier, id: string | undefined): Promise<BackupRecord> {
    const record = id ? await tier.getBackup(id) : await latestBackup(tier, this.core.chain().ledgerId);
    if (!record) throw new NotFoundError(`${tier.label} holds no backup of this ledger`, { hint: 'List them with `pawledger backups list`' });
    return record;
  }

  /** verify checks a backup end to end (seal, every block, head hash) without restoring it. */
  async verify(name: TierName, id?: string): Promise<{ ok: true; backupId: string; totalBlocks: number; headHash: string } | { ok: false; backupId?: string; reason: string }> {
    const tier = this.#tier(name);
    const record = await this.#find(tier, id);
    try {
      const chain = await verifyBackup(tier, record, this.core.sealer);
      return { ok: true, backupId: record.id, totalBlocks: chain.state.totalBlocks, headHash: chain.head.hash };
    } catch (err) {
      if (err instanceof IntegrityError) return { ok: false, backupId: record.id, reason: err.message };
      throw err;
    }
  }

  /**
   * restore makes a backup (the newest of this ledger, or `id`) the running ledger: its chain is fetched, every block
   * verified, its head checked against the record, then written to the local store. Restoring an older backup is a
   * rollback: the database records the restored head as its newest backup (so a restart comes back to it), later
   * saves start a new branch, and the newer blocks stay, so restoring a newer backup afterwards still works.
   */
  async restore(name: TierName, options: { id?: string; dryRun?: boolean }): Promise<RestorePlan> {
    const tier = this.#tier(name);
    return this.core.exclusive(async () => {
      const record = await this.#find(tier, options.id);
      checkRecord(this.core.sealer, record);
      const current = this.core.chain().head;
      const contains = record.ledgerId === this.core.chain().ledgerId && (await tier.hashAt(record, current.index)) === current.hash;
      const plan: RestorePlan = {
        tier: name, backupId: record.id, name: record.name, height: record.height, headHash: record.headHash,
        currentHeight: current.index, rollback: !contains, dryRun: options.dryRun ?? false,
      };
      if (plan.dryRun) return plan;
      this.core.assertWriter();
      // No IPFS upload may read the local store while restore swaps its generation underneath.
      const swap = () => restoreInto(this.core.store, tier, record, this.core.sealer);
      const queue = this.core.tiers.ipfs?.queue;
      const chain = await (queue ? queue.hold(swap) : swap());
      this.core.setChain(chain);
      this.core.log.info({ tier: name, backupId: record.id, totalBlocks: chain.state.totalBlocks, rollback: plan.rollback },
        `Ledger restored from ${tier.label} backup ${record.id} ("${record.name}"): ${chain.state.totalBlocks} blocks, ${chain.state.totalProperties} properties${plan.rollback ? ' (rollback: later saves start a new branch)' : ''}`);
      const { db, ipfs } = this.core.tiers;
      if (db) {
        const marker = await db.tier.putBackup(this.core.record(`Restored backup ${record.id} (${record.name})`, 'auto', null)).catch(() => null);
        if (marker) db.replicator.noteBackup(marker);
        else await db.replicator.catchUp();
      }
      // IPFS's newest manifest must move back too before the restore is reported done: until it does, a restart
      // would find that manifest holding every other source's head and take it, undoing a rollback.
      if (ipfs && !(await ipfs.queue.flush())) {
        this.core.log.warn({ tier: 'ipfs', err: ipfs.queue.lastError }, `IPFS could not record the restored head yet (${ipfs.queue.lastError}); it retries, and until it succeeds a restart may return to IPFS's newer blocks`);
      }
      return plan;
    });
  }
}
