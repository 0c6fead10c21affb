import { checkPolicy, describePolicy, planRetention, type RetentionPolicy } from './retention.js';
import { verifyBackup } from './restore.js';
import { describeError, IntegrityError, NotFoundError, PawledgerError, UnavailableError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BackupTier } from '../tiers/tier.js';
import type { BackupKind, BackupRecord } from '../crypto/records.js';
import type { LedgerCore } from './core.js';
import type { Replicator } from './replicator.js';
import { Mutex } from '../util/mutex.js';

/** PruneTarget is the name of the tier a prune works on, or 'all' for every tier that is on. */
export type PruneTarget = string;

/** PrunedBackup describes one backup in a prune report. */
export interface PrunedBackup {
  id: string;
  name: string;
  kind: BackupKind;
  createdAt: string;
  height: number;
}

/** TierPruneReport is what a prune did (or, dry, would do) on one tier: every backup, and why it stays or goes. */
export interface TierPruneReport {
  tier: string;
  /** newestValid is the id of the newest backup that verifies (never removed), or null when the tier holds none. */
  newestValid: string | null;
  keep: (PrunedBackup & { reasons: string[] })[];
  remove: (PrunedBackup & { reason: string })[];
  /** removed is how many records were deleted: 0 in a dry run. */
  removed: number;
  /** collected is what garbage collection freed: nothing in a dry run. */
  collected: { blocks: number; bytes: number };
  /** error says why this tier was left as it was, when pruning every tier (one tier failing does not stop the others). */
  error?: string;
}

/** PruneReport is the outcome of a prune. */
export interface PruneReport {
  /** policy in LEDGER_RETENTION's syntax. */
  policy: string;
  dryRun: boolean;
  tiers: TierPruneReport[];
}

// How many of a tier's newest backups are tried, newest first, for one that verifies before a prune gives up.
const VERIFY_CANDIDATES = 20;

function describe(r: BackupRecord): PrunedBackup {
  return { id: r.id, name: r.name, kind: r.kind, createdAt: r.createdAt.toISOString(), height: r.height };
}

/**
 * Pruner applies a retention policy to the ledger's backups on a tier, written once for every tier. The policy is
 * planned outside any lock (listing, and verifying the newest backup, can take a while and saves go on meanwhile):
 * records made after the listing are never in the plan, so they stay. Deleting and collecting garbage then run where
 * nothing writes to that tier: a tier a save waits for inside the ledger's serial section (brought level first, so
 * the running chain is a kept record's chain), a background tier while its replicator is held. The newest backup
 * that verifies, protected backups and the newest backup of the running head always stay. One prune runs at a time.
 */
export class Pruner {
  readonly #one = new Mutex();

  constructor(private readonly core: LedgerCore) {}

  /** prune applies `policy` to `target` (every tier that is on for 'all'); with dryRun it only reports. */
  async prune(target: PruneTarget, policy: RetentionPolicy, options: { dryRun?: boolean } = {}): Promise<PruneReport> {
    const checked = checkPolicy(policy);
    const dryRun = options.dryRun ?? false;
    const replicators = target === 'all' ? [...this.core.replicators] : [this.core.replicator(target)];
    if (!dryRun) this.core.assertWriter();
    return this.#one.run(async () => {
      const tiers: TierPruneReport[] = [];
      for (const r of replicators) {
        try {
          tiers.push(await this.#pruneTier(r, checked, dryRun));
        } catch (err) {
          if (target !== 'all') throw err;
          this.core.log.error(
            { tier: r.entry.name, err: describeError(err) },
            `Retention on the ${r.entry.name} tier failed, nothing more removed there: ${describeError(err)}`,
          );
          tiers.push({
            tier: r.entry.name,
            newestValid: null,
            keep: [],
            remove: [],
            removed: 0,
            collected: { blocks: 0, bytes: 0 },
            error: describeError(err),
          });
        }
      }
      return { policy: describePolicy(checked), dryRun, tiers };
    });
  }

  // Run fn where nothing writes to the tier: in the serial section for a tier saves wait for, else with it held.
  #quiet<T>(r: Replicator, fn: () => Promise<T>): Promise<T> {
    return r.entry.role === 'sync' ? this.core.exclusive(fn) : r.hold(fn);
  }

  async #pruneTier(r: Replicator, policy: RetentionPolicy, dryRun: boolean): Promise<TierPruneReport> {
    const { tier, entry } = r;
    if (!dryRun && entry.role === 'sync') {
      // Level first: the newest record is then the running head's, so the running chain is a kept record's chain.
      await this.core.exclusive(async () => {
        if (r.level || (await r.catchUp())) return;
        const failure = r.lastFailure;
        throw failure instanceof PawledgerError
          ? failure
          : new UnavailableError(`${tier.label} is unreachable: ${r.lastError}`, { cause: failure });
      });
    }
    const ledgerId = this.core.chain().ledgerId;
    const records = await tier.listBackups(ledgerId, { limit: 1_000_000 });
    const newestValid = await this.#newestValid(tier, records);
    const head = this.core.chain().head;
    const atHead = records.find((rec) => rec.height === head.index && rec.headHash === head.hash);
    const plan = planRetention(records, policy, this.core.now(), {
      newestValidId: newestValid?.id ?? null,
      ...(atHead ? { alsoKeep: new Map([[atHead.id, 'running head']]) } : {}),
    });
    const byId = new Map(records.map((rec) => [rec.id, rec]));
    const report: TierPruneReport = {
      tier: entry.name,
      newestValid: newestValid?.id ?? null,
      keep: plan.keep.map((k) => ({ ...describe(byId.get(k.id)!), reasons: k.reasons })),
      remove: plan.remove.map((k) => ({ ...describe(byId.get(k.id)!), reason: k.reason })),
      removed: 0,
      collected: { blocks: 0, bytes: 0 },
    };
    const counts = { tier: entry.name, total: records.length, keep: report.keep.length, remove: report.remove.length };
    if (dryRun) {
      this.core.log.info(
        { ...counts, dryRun },
        `Retention dry run on ${tier.label}: would remove ${report.remove.length} of ${records.length} backups, keep ${report.keep.length}`,
      );
      return report;
    }
    // Even with nothing to remove, garbage left by an earlier prune (or a crash in one) is collected.
    await this.#quiet(r, async () => {
      report.removed = await tier.deleteBackups(plan.remove.map((rec) => rec.id));
      report.collected = await tier.collectGarbage(ledgerId);
    });
    this.core.log.info(
      {
        ...counts,
        removed: report.removed,
        collectedBlocks: report.collected.blocks,
        collectedBytes: report.collected.bytes,
      },
      `Retention on ${tier.label}: removed ${report.removed} of ${records.length} backups, kept ${report.keep.length}; freed ${report.collected.blocks} stored objects (${report.collected.bytes} bytes)`,
    );
    return report;
  }

  // The newest backup (in the tier's order) that verifies end to end. Backups that exist but none of which verifies
  // stop the prune: deleting around an unusable newest backup could leave nothing restorable.
  async #newestValid(tier: BackupTier, records: BackupRecord[]): Promise<BackupRecord | null> {
    const candidates = records.slice(0, VERIFY_CANDIDATES);
    for (const r of candidates) {
      try {
        await verifyBackup(tier, r, this.core.sealer);
        return r;
      } catch (err) {
        if (!(err instanceof IntegrityError) && !(err instanceof NotFoundError)) throw err;
        this.core.log.warn(
          { tier: tier.name, backupId: r.id, err: describeError(err) },
          `Retention: ${tier.label} backup ${r.id} does not verify: ${describeError(err)}`,
        );
      }
    }
    if (records.length === 0) return null;
    throw new IntegrityError(
      `none of the ${candidates.length} newest backups of this ledger on ${tier.label} verifies: refusing to prune there`,
      {
        hint: `\`pawledger verify --from ${tier.name} --id ID\` shows why; make a new backup that verifies first`,
      },
    );
  }
}

/**
 * RetentionSchedule runs a prune now and then (LEDGER_RETENTION every LEDGER_RETENTION_INTERVAL_MS) while the server
 * runs: first soon after start, since a host that redeploys often may never reach a long interval. Its timer does
 * not keep the process alive; a failed run is logged and the next one runs on time.
 */
export class RetentionSchedule {
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #stopped = false;

  constructor(
    private readonly run: () => Promise<PruneReport>,
    private readonly options: { policy: string; intervalMs: number; firstMs: number; log: Logger },
  ) {}

  start(): void {
    this.options.log.info(
      { policy: this.options.policy, intervalMs: this.options.intervalMs },
      `Retention: pruning with ${this.options.policy} every ${Math.round(this.options.intervalMs / 1000)} s`,
    );
    this.#schedule(this.options.firstMs);
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#running = this.#once().finally(() => {
        this.#running = null;
        this.#schedule(this.options.intervalMs);
      });
    }, ms);
    this.#timer.unref();
  }

  async #once(): Promise<void> {
    const { log, policy } = this.options;
    try {
      const r = await this.run();
      const parts = r.tiers.map((t) =>
        t.error
          ? `${t.tier} failed (${t.error})`
          : `${t.tier} removed ${t.removed}, kept ${t.keep.length}, freed ${t.collected.blocks} objects`,
      );
      log.info(
        {
          policy,
          tiers: r.tiers.map((t) => ({
            tier: t.tier,
            removed: t.removed,
            kept: t.keep.length,
            collectedBlocks: t.collected.blocks,
            collectedBytes: t.collected.bytes,
            error: t.error,
          })),
        },
        `Scheduled prune (${policy}): ${parts.join('; ') || 'no remote tier'}`,
      );
    } catch (err) {
      log.warn({ policy, err: describeError(err) }, `Scheduled prune (${policy}) failed: ${describeError(err)}`);
    }
  }

  /** stop cancels the next run and waits for one in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }
}
