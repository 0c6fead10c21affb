import type { LedgerCore } from '../engine/core.js';
import { runDrill, type DrillJournal, type DrillRecord } from '../engine/drill.js';
import { describeError, NotFoundError } from '../errors.js';
import { Mutex } from '../util/mutex.js';

/** DrillReport is what a run of drills answers: ok when every tier's drill passed, and each drill's record. */
export interface DrillReport {
  ok: boolean;
  drills: DrillRecord[];
}

/** DrillsOptions configure Drills (from LEDGER_DRILL_*). */
export interface DrillsOptions {
  journal: DrillJournal;
  /** intervalMs is how often serve drills every tier (LEDGER_DRILL_INTERVAL); 0 turns scheduled drills off. */
  intervalMs: number;
  /** firstMs is how long after start the first scheduled drill runs (LEDGER_DRILL_FIRST). */
  firstMs: number;
  /** keep is how many drill records are kept (LEDGER_DRILL_KEEP). */
  keep: number;
  /** stallMs fails a drill whose tier sends nothing for this long (LEDGER_SOURCE_TIMEOUT_MS). */
  stallMs: number;
}

/**
 * Drills runs restore drills (engine/drill.ts) on the ledger's tiers, one drill at a time in this process whoever
 * asks (the schedule, `pawledger drill`, POST /admin/drill), records each in the journal and remembers each tier's
 * newest verdict for status, metrics and alerts. A journal that cannot be written is logged; the verdict stands.
 */
export class Drills {
  readonly #one = new Mutex();
  readonly #latest = new Map<string, DrillRecord>();
  readonly #listeners: ((record: DrillRecord) => void)[] = [];
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  #loaded: Promise<void> | null = null;

  constructor(
    private readonly core: LedgerCore,
    private readonly options: DrillsOptions,
  ) {}

  /** onDrill calls `fn` with every drill's record once it is known. */
  onDrill(fn: (record: DrillRecord) => void): void {
    this.#listeners.push(fn);
  }

  /** latest is each tier's newest drill (this run's, or the journal's from before), by tier name. */
  async latest(): Promise<ReadonlyMap<string, DrillRecord>> {
    await this.#load();
    return this.#latest;
  }

  /** latestKnown is latest() without reading the journal: what this process has seen so far. */
  get latestKnown(): ReadonlyMap<string, DrillRecord> {
    return this.#latest;
  }

  /** history lists the newest kept drill records, newest first (of one tier when named). */
  history(limit: number, tier?: string): Promise<DrillRecord[]> {
    return this.options.journal.list(this.core.chain().ledgerId, limit, tier);
  }

  /**
   * run drills one tier (by name), or every configured tier in restore order, one after the other; it resolves with
   * every verdict, ok only if all passed. A tier name no tier has is a ValidationError; a tier that is off, NotFound.
   */
  async run(tier?: string): Promise<DrillReport> {
    const replicators = tier ? [this.core.replicator(tier)] : this.core.replicators;
    if (replicators.length === 0)
      throw new NotFoundError('no tier is configured besides the local store: there is no backup to drill', {
        hint: 'Set DATABASE_URL, an IPFS provider or LEDGER_BACKUP_DIR',
      });
    await this.#load();
    const drills: DrillRecord[] = [];
    for (const r of replicators) drills.push(await this.#one.run(() => this.#drill(r)));
    return { ok: drills.every((d) => d.outcome === 'ok'), drills };
  }

  async #drill(r: LedgerCore['replicators'][number]): Promise<DrillRecord> {
    const { log, store, sealer } = this.core;
    const ledgerId = this.core.chain().ledgerId;
    log.debug({ tier: r.entry.name }, `Restore drill of ${r.tier.label} started`);
    const record = await runDrill(
      {
        tier: r.tier,
        name: r.entry.name,
        ledgerId,
        hashAt: (h) => store.hashAt(h),
        expected: r.lastBackup?.ledgerId === ledgerId ? r.lastBackup : undefined,
      },
      sealer,
      { stallMs: this.options.stallMs, now: () => this.core.now() },
    );
    const fields = { tier: record.tier, backupId: record.backupId, height: record.height, ms: record.durationMs };
    if (record.outcome === 'ok')
      log.info(
        fields,
        `Restore drill of ${r.tier.label} passed: backup ${record.backupId} (block ${record.height}) restored and replayed in full in ${record.durationMs} ms`,
      );
    else log.error({ ...fields, reason: record.reason }, `RESTORE DRILL FAILED for ${r.tier.label}: ${record.reason}`);
    this.#latest.set(record.tier, record);
    await this.options.journal
      .add(record, this.options.keep)
      .catch((err: unknown) =>
        log.warn({ err: describeError(err) }, `The drill's result could not be recorded: ${describeError(err)}`),
      );
    for (const fn of this.#listeners) fn(record);
    return record;
  }

  // The journal's newest verdict per tier, read once, so status after a restart still shows the last drill.
  #load(): Promise<void> {
    this.#loaded ??= (async () => {
      const ledgerId = this.core.chain().ledgerId;
      for (const r of this.core.replicators) {
        const [newest] = await this.options.journal.list(ledgerId, 1, r.entry.name).catch(() => []);
        if (newest && !this.#latest.has(newest.tier)) this.#latest.set(newest.tier, newest);
      }
    })();
    return this.#loaded;
  }

  /** start drills every tier firstMs from now, then every intervalMs (nothing when it is 0); stop() ends it. */
  start(): boolean {
    const { intervalMs, firstMs } = this.options;
    if (intervalMs === 0 || this.#timer || this.#stopped) return false;
    void this.#load();
    const tick = (wait: number) => {
      this.#timer = setTimeout(async () => {
        await this.run().catch((err: unknown) =>
          this.core.log.warn({ err: describeError(err) }, `Scheduled restore drill: ${describeError(err)}`),
        );
        if (!this.#stopped) tick(intervalMs);
      }, wait);
      this.#timer.unref();
    };
    tick(firstMs);
    return true;
  }

  /** stop cancels scheduled drills and waits for one in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#one.run(async () => {});
  }
}
