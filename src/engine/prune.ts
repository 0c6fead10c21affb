import { checkPolicy, describePolicy, planRetention, type RetentionPolicy } from './retention.js';
import { verifyBackup } from './restore.js';
import { describeError, IntegrityError, NotFoundError, PawledgerError, UnavailableError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BackupTier } from '../tiers/tier.js';
import type { BackupRecord } from '../crypto/records.js';
import type { LedgerCore, TierName } from '../service/backup-ops.js';
import { Mutex } from '../util/mutex.js';

/** PruneTarget is the tier a prune works on, or every tier that is on. */
export type PruneTarget = TierName | 'all';

/** PrunedBackup describes one backup in a prune report. */
export interface PrunedBackup {
  id: string;
  name: string;
  kind: 'auto' | 'manual';
  createdAt: string;
  height: number;
}

/** TierPruneReport is what a prune did (or, dry, would do) on one tier: every backup, and why it stays or goes. */
export interface TierPruneReport {
  tier: TierName;
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
 * nothing writes to that tier: the database inside the ledger's serial section, IPFS while its upload queue is held.
 * The newest backup that verifies, protected backups and the newest backup of the running head always stay.
 * One prune runs at a time.
 */
export class Pruner {
  readonly #one = new Mutex();

  constructor(private readonly core: LedgerCore, private readonly tierOf: (name: TierName) => BackupTier) {}

  /** prune applies `policy` to `target` (every tier that is on for 'all'); with dryRun it only reports. */
  async prune(target: PruneTarget, policy: RetentionPolicy, options: { dryRun?: boolean } = {}): Promise<PruneReport> {
    const checked = checkPolicy(policy);
    const dryRun = options.dryRun ?? false;
    const names: TierName[] = target === 'all' ? (['db', 'ipfs'] as const).filter((n) => this.core.tiers[n] !== null) : [target];
    if (target !== 'all') this.tierOf(target);
    if (!dryRun) this.core.assertWriter();
    return this.#one.run(async () => {
      const tiers: TierPruneReport[] = [];
      for (const name of names) {
        try {
          tiers.push(await this.#pruneTier(name, checked, dryRun));
        } catch (err) {
          if (target !== 'all') throw err;
          this.core.log.error({ tier: name, err: describeError(err) }, `Retention on the ${name} tier failed, nothing more removed there: ${describeError(err)}`);
          tiers.push({ tier: name, newestValid: null, keep: [], remove: [], removed: 0, collected: { blocks: 0, bytes: 0 }, error: describeError(err) });
        }
      }
      return { policy: describePolicy(checked), dryRun, tiers };
    });
  }

  async #pruneTier(name: TierName, policy: RetentionPolicy, dryRun: boolean): Promise<TierPruneReport> {
    const tier = this.tierOf(name);
    const { db, ipfs } = this.core.tiers;
    if (!dryRun && name === 'db') {
      // Level first: the newest record is then the running head's, so the running chain is a kept record's chain.
      await this.core.exclusive(async () => {
        if (db!.replicator.state === 'ok' || (await db!.replicator.catchUp())) return;
        const failure = db!.replicator.lastFailure;
        throw failure instanceof PawledgerError ? failure : new UnavailableError(`the database is unreachable: ${db!.replicator.lastError}`, { cause: failure });
      });
    }
    const ledgerId = this.core.chain().ledgerId;
    const records = await tier.listBackups(ledgerId, { limit: 1_000_000 });
    const newestValid = await this.#newestValid(tier, records);
    const head = this.core.chain().head;
    const atHead = records.find((r) => r.height === head.index && r.headHash === head.hash);
    const plan = planRetention(records, policy, this.core.now(), {
      newestValidId: newestValid?.id ?? null,
      ...(atHead ? { alsoKeep: new Map([[atHead.id, 'running head']]) } : {}),
    });
    const byId = new Map(records.map((r) => [r.id, r]));
    const report: TierPruneReport = {
      tier: name,
      newestValid: newestValid?.id ?? null,
      keep: plan.keep.map((k) => ({ ...describe(byId.get(k.id)!), reasons: k.reasons })),
      remove: plan.remove.map((k) => ({ ...describe(byId.get(k.id)!), reason: k.reason })),
      removed: 0,
      collected: { blocks: 0, bytes: 0 },
    };
    const counts = { tier: name, total: records.length, keep: report.keep.length, remove: report.remove.length };
    if (dryRun) {
      this.core.log.info({ ...counts, dryRun }, `Retention dry run on ${tier.label}: would remove ${report.remove.length} of ${records.length} backups, keep ${report.keep.length}`);
      return report;
    }
    // Even with nothing to remove, garbage left by an earlier prune (or a crash in one) is collected.
    const apply = async () => {
      report.removed = await tier.deleteBackups(plan.remove.map((r) => r.id));
      report.collected = await tier.collectGarbage(ledgerId);
    };
    await (name === 'db' ? this.core.exclusive(apply) : ipfs!.queue.hold(apply));
    this.core.log.info({ ...counts, removed: report.removed, collectedBlocks: report.collected.blocks, collectedBytes: report.collected.bytes },
      `Retention on ${tier.label}: removed ${report.removed} of ${records.length} backups, kept ${report.keep.length}; freed ${report.collected.blocks} stored objects (${report.collected.bytes} bytes)`);
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
        this.core.log.warn({ tier: tier.name, backupId: r.id, err: describeError(err) }, `Retention: ${tier.label} backup ${r.id} does not verify: ${describeError(err)}`);
      }
    }
    if (records.length === 0) return null;
    throw new IntegrityError(`none of the ${candidates.length} newest backups of this ledger on ${tier.label} verifies: refusing to prune there`, {
      hint: `\`pawledger verify --from ${tier.name} --id ID\` shows why; make a new backup that verifies first`,
    });
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
    this.options.log.info({ policy: this.options.policy, intervalMs: this.options.intervalMs }, `Retention: pruning with ${this.options.policy} every ${Math.round(this.options.intervalMs / 1000)} s`);
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
      const parts = r.tiers.map((t) => (t.error ? `${t.tier} failed (${t.error})` : `${t.tier} removed ${t.removed}, kept ${t.keep.length}, freed ${t.collected.blocks} objects`));
      log.info({ policy, tiers: r.tiers.map((t) => ({ tier: t.tier, removed: t.removed, kept: t.keep.length, collectedBlocks: t.collected.blocks, collectedBytes: t.collected.bytes, error: t.error })) },
        `Scheduled prune (${policy}): ${parts.join('; ') || 'no remote tier'}`);
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
