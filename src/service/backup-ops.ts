import { checkBackupFields, type BackupRecord } from '../crypto/records.js';
import type { LedgerCore } from '../engine/core.js';
import { Pruner, type PruneReport, type PruneTarget } from '../engine/prune.js';
import { latestBackup, verifyBackup, type RestorePlan } from '../engine/restore.js';
import { restoreRunning, type TierOutcome } from '../engine/restore-service.js';
import type { RetentionPolicy } from '../engine/retention.js';
import { IntegrityError, NotFoundError, PawledgerError, UnavailableError } from '../errors.js';

/** BackupResult is what a manual backup returns. */
export interface BackupResult {
  id: string;
  tier: string;
  name: string;
  height: number;
  headHash: string;
  sizeBytes: number;
  protected: boolean;
}

/** RestoreResult is what a restore did (or, dry, would do), with whether each tier recorded it. */
export type RestoreResult = RestorePlan & { tiers?: TierOutcome[] };

/** VerifyResult is the outcome of checking one backup end to end. */
export type VerifyResult =
  | { ok: true; backupId: string; totalBlocks: number; headHash: string }
  | { ok: false; backupId?: string; reason: string };

/**
 * BackupOps are the operator's tier operations, written once for every tier and taking the tier by name: back up by
 * name, list, restore the newest or a chosen backup (engine/restore-service.ts), verify without restoring, protect,
 * and prune by a retention policy (engine/prune.ts).
 */
export class BackupOps {
  readonly #pruner: Pruner;

  constructor(private readonly core: LedgerCore) {
    this.#pruner = new Pruner(core);
  }

  /** backup records a named backup of the current head in the tier, after bringing the tier level with the local store. */
  async backup(
    tierName: string,
    options: { name: string; adminId?: number | null; protect?: boolean },
  ): Promise<BackupResult> {
    const r = this.core.replicator(tierName);
    // Checked here, not only by the HTTP schemas: a library caller or the command line must not reach a driver with them.
    checkBackupFields(options.name, options.adminId ?? null);
    this.core.assertWriter();
    return this.core.exclusive(async () => {
      if (!r.level && !(await r.catchUp())) {
        // Pass the tier's own error on: a ConfigError (missing tables, say) must not read as "unreachable".
        const failure = r.lastFailure;
        throw failure instanceof PawledgerError
          ? failure
          : new UnavailableError(`the backup to ${r.tier.label} failed: ${r.lastError}`, { cause: failure });
      }
      const rec = await r.tier.putBackup(await this.core.record(options.name, 'manual', options.adminId ?? null));
      if (options.protect) await r.tier.setProtected(rec.id, true);
      this.core.log.info(
        { tier: tierName, backupId: rec.id, backupName: rec.name },
        `Manual backup to ${r.tier.label}: Backup ID ${rec.id}, Name "${rec.name}", Blocks ${rec.height + 1}`,
      );
      return {
        id: rec.id,
        tier: tierName,
        name: rec.name,
        height: rec.height,
        headHash: rec.headHash,
        sizeBytes: rec.sizeBytes,
        protected: options.protect ?? false,
      };
    });
  }

  /** prune applies a retention policy to one tier or all (see Pruner); with dryRun it only reports. */
  prune(target: PruneTarget, policy: RetentionPolicy, options: { dryRun?: boolean } = {}): Promise<PruneReport> {
    return this.#pruner.prune(target, policy, options);
  }

  /** protect marks a backup protected (retention never removes it), or with on false, not. */
  async protect(tierName: string, id: string, on: boolean): Promise<void> {
    const { tier } = this.core.replicator(tierName);
    this.core.assertWriter();
    await tier.setProtected(id, on);
    this.core.log.info(
      { tier: tierName, backupId: id, protected: on },
      `Backup ${id} on the ${tierName} tier is ${on ? 'now protected' : 'no longer protected'}`,
    );
  }

  /** list returns a tier's backups (of one ledger, or of every ledger), newest first. */
  async list(tierName: string, limit: number, ledgerId?: string): Promise<BackupRecord[]> {
    return this.core.replicator(tierName).tier.listBackups(ledgerId, { limit });
  }

  /** verify checks a backup end to end (seal, every block, head hash) without restoring it. */
  async verify(tierName: string, id?: string): Promise<VerifyResult> {
    const { tier } = this.core.replicator(tierName);
    const record = id ? await tier.getBackup(id) : await latestBackup(tier, this.core.chain().ledgerId);
    if (!record)
      throw new NotFoundError(`${tier.label} holds no backup of this ledger`, {
        hint: 'List them with `pawledger backups list`',
      });
    try {
      const chain = await verifyBackup(tier, record, this.core.sealer);
      return { ok: true, backupId: record.id, totalBlocks: chain.state.totalBlocks, headHash: chain.head.hash };
    } catch (err) {
      if (err instanceof IntegrityError) return { ok: false, backupId: record.id, reason: err.message };
      throw err;
    }
  }

  /** restore makes a backup the running ledger, recorded in every tier (restoreRunning); dryRun only plans it. */
  restore(tierName: string, options: { id?: string; dryRun?: boolean }): Promise<RestoreResult> {
    return restoreRunning(this.core, tierName, {
      ...(options.id ? { id: options.id } : {}),
      dryRun: options.dryRun ?? false,
    });
  }
}
