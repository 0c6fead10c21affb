import type { AssuranceConfig } from '../config.js';
import type { DrillJournal, DrillRecord } from '../engine/drill.js';
import type { Replicator } from '../engine/replicator.js';
import { DatabaseDrillJournal } from '../db/drills.js';
import { FileDrillJournal } from '../store/drill-file.js';
import { databaseClient, type OpenedTiers } from '../tiers/registry.js';
import type { LedgerCore } from '../engine/core.js';
import { Drills } from './drills.js';
import { eventMetrics } from './metrics.js';
import type { Registry } from 'prom-client';

/** TierAssurance is how well one tier's backups are known to hold: its freshness and its newest drill. */
export interface TierAssurance {
  tier: string;
  /** lagBlocks is how many blocks the running head is past the tier's newest backup (the whole chain when none is known). */
  lagBlocks: number;
  /** lagSeconds is how long the tier has lacked the oldest block it lacks (0 when it holds the head). */
  lagSeconds: number;
  /** stale is true past LEDGER_MAX_LAG_BLOCKS or LEDGER_MAX_LAG_SECONDS. */
  stale: boolean;
  /** lastBackupAt is when the tier last took blocks or a record in this run, or null. */
  lastBackupAt: string | null;
  /** failingSince is when the tier started failing (null while it answers). */
  failingSince: string | null;
  lastDrill: DrillRecord | null;
}

/** AssuranceStatus is status's assurance section. */
export interface AssuranceStatus {
  tiers: TierAssurance[];
  maxLagBlocks: number;
  maxLagSeconds: number;
  /** drillIntervalMs is how often serve drills (0: scheduled drills are off). */
  drillIntervalMs: number;
}

/** SaveOutcome is how a save ended: durable ('ok'), refused for its input ('rejected'), or failed ('error'). */
export type SaveOutcome = 'ok' | 'rejected' | 'error';

/**
 * Assurance watches whether the ledger's backups would bring it back: the restore drills (drills.ts), each tier's
 * freshness (how far and how long it lags the head), each tier's time failing, and the facts metrics report (saves,
 * the startup restore). It reads what the process already knows, never the disk or the network.
 */
export class Assurance {
  readonly drills: Drills;
  /** registry holds this ledger's Prometheus metrics (metrics.ts; GET /metrics completes and serves it). */
  readonly registry: Registry;
  /** startup is where the running chain came from at open, and how long choosing and restoring it took. */
  startup: { from: string; seconds: number } | null = null;
  readonly #behindSince = new Map<string, number>();
  readonly #failingSince = new Map<string, number>();
  readonly #saveListeners: ((seconds: number, outcome: SaveOutcome) => void)[] = [];

  constructor(
    private readonly core: LedgerCore,
    private readonly config: AssuranceConfig,
    options: { tiers: OpenedTiers; dataDir: string; stallMs: number },
  ) {
    this.drills = new Drills(core, {
      journal: drillJournal(options.tiers, options.dataDir),
      intervalMs: config.drillIntervalMs,
      firstMs: config.drillFirstMs,
      keep: config.drillKeep,
      stallMs: options.stallMs,
    });
    this.registry = eventMetrics(this);
  }

  /** onSave calls `fn` with every save's duration and outcome. */
  onSave(fn: (seconds: number, outcome: SaveOutcome) => void): void {
    this.#saveListeners.push(fn);
  }

  /** saved is told of every save once it settles. */
  saved(seconds: number, outcome: SaveOutcome): void {
    for (const fn of this.#saveListeners) fn(seconds, outcome);
    if (outcome === 'ok') this.#observe(this.core.now().getTime());
  }

  // Note, per tier, when it first lacked a block it still lacks, and when it started failing.
  #observe(now: number): void {
    const head = this.core.chain().head.index;
    for (const r of this.core.replicators) {
      const name = r.entry.name;
      if (lagOf(r, head) === 0) this.#behindSince.delete(name);
      else if (!this.#behindSince.has(name)) this.#behindSince.set(name, now);
      if (r.lastError === undefined) this.#failingSince.delete(name);
      else if (!this.#failingSince.has(name)) this.#failingSince.set(name, now);
    }
  }

  /** counters are each tier's totals in this process: bytes sent and failed calls. */
  counters(): { tier: string; bytesSent: number; failures: number }[] {
    return this.core.replicators.map((r) => ({ tier: r.entry.name, bytesSent: r.bytesSent, failures: r.failures }));
  }

  /** status is the assurance section of status: per tier, freshness and the newest drill. */
  status(): AssuranceStatus {
    const now = this.core.now().getTime();
    this.#observe(now);
    const head = this.core.chain().head.index;
    const { maxLagBlocks, maxLagSeconds } = this.config;
    const drills = this.drills.latestKnown;
    const tiers = this.core.replicators.map((r): TierAssurance => {
      const name = r.entry.name;
      const lagBlocks = lagOf(r, head);
      const since = this.#behindSince.get(name);
      const lagSeconds = lagBlocks === 0 || since === undefined ? 0 : Math.max(0, Math.floor((now - since) / 1000));
      const failing = this.#failingSince.get(name);
      return {
        tier: name,
        lagBlocks,
        lagSeconds,
        stale: (maxLagBlocks > 0 && lagBlocks > maxLagBlocks) || (maxLagSeconds > 0 && lagSeconds > maxLagSeconds),
        lastBackupAt: r.lastSuccessAt?.toISOString() ?? null,
        failingSince: failing === undefined ? null : new Date(failing).toISOString(),
        lastDrill: drills.get(name) ?? null,
      };
    });
    return { tiers, maxLagBlocks, maxLagSeconds, drillIntervalMs: this.config.drillIntervalMs };
  }
}

// How many blocks the head is past the tier's newest backup of this ledger (the whole chain when none is known).
function lagOf(r: Replicator, head: number): number {
  const b = r.lastBackup;
  return Math.max(0, head - (b ? b.height : -1));
}

/**
 * drillJournal is where drill verdicts are kept: the database tier's pawledger_drills when the database is on (read
 * once the tier is initialized), else drills.json in the data folder.
 */
export function drillJournal(tiers: OpenedTiers | null, dataDir: string): DrillJournal {
  const db = tiers ? databaseClient(tiers) : null;
  return db ? new DatabaseDrillJournal(db) : new FileDrillJournal(dataDir);
}
