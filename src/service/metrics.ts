import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Assurance } from './assurance.js';
import type { Ledger } from './ledger.js';

const complete = new WeakSet<Registry>();

/**
 * eventMetrics makes a ledger's registry with the metrics fed by events (saves, drills), from the moment the ledger
 * opens, so that the first scrape already counts every save; Assurance calls it once.
 */
export function eventMetrics(assurance: Assurance): Registry {
  const registers = [new Registry()];
  const saveSeconds = new Histogram({
    name: 'pawledger_save_duration_seconds',
    help: 'Time from a save being submitted to its answer (durable, refused or failed).',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const saves = new Counter({
    name: 'pawledger_saves_total',
    help: 'Saves by outcome: ok (durable), rejected (invalid input or a rule broken), error (not saved).',
    labelNames: ['outcome'],
    registers,
  });
  for (const outcome of ['ok', 'rejected', 'error']) saves.inc({ outcome }, 0);
  assurance.onSave((seconds, outcome) => {
    saveSeconds.observe(seconds);
    saves.inc({ outcome });
  });
  const drills = new Counter({
    name: 'pawledger_drills_total',
    help: 'Restore drills run in this process, by tier and outcome.',
    labelNames: ['tier', 'outcome'],
    registers,
  });
  assurance.drills.onDrill((d) => drills.inc({ tier: d.tier, outcome: d.outcome }));
  return registers[0]!;
}

/**
 * metricsOf is the ledger's Prometheus registry: the default process metrics and pawledger's own, named by Prometheus
 * conventions (`pawledger_` prefix, base units, `_seconds`, `_bytes`, `_total`). Gauges are read, when scraped, from
 * what the ledger already knows (no disk, no network); counters and the save histogram are fed by events. Labels are
 * tier names, outcomes and roles only: a bounded set, and nothing secret.
 */
export function metricsOf(ledger: Ledger): Registry {
  const registry = ledger.assurance.registry;
  if (!complete.has(registry)) {
    complete.add(registry);
    scraped(ledger, [registry]);
  }
  return registry;
}

// The metrics read at scrape time, added to the registry on the first scrape.
function scraped(ledger: Ledger, registers: Registry[]): void {
  const { assurance } = ledger;
  collectDefaultMetrics({ register: registers[0]! });
  // prom-client names three gauges `_total`, which Prometheus keeps for counters (promtool refuses them); their
  // per-type breakdowns (nodejs_active_handles{type}, ...) stay, and sum to the same.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
    registers[0]!.removeSingleMetric(name);

  gauge(registers, 'pawledger_chain_height', 'Height of the running chain head (blocks after genesis).', [], (set) =>
    set({}, ledger.head.index),
  );
  gauge(registers, 'pawledger_degraded', '1 while writes are refused because a full replay failed.', [], (set) =>
    set({}, ledger.status().degraded ? 1 : 0),
  );
  gauge(
    registers,
    'pawledger_writer_role',
    '1 for the role this instance has (writer or standby).',
    ['role'],
    (set) => {
      const role = ledger.status().writer.role;
      for (const r of ['writer', 'standby']) set({ role: r }, role === r ? 1 : 0);
    },
  );
  gauge(
    registers,
    'pawledger_startup_restore_duration_seconds',
    'How long startup took to choose, restore and verify the running chain.',
    [],
    (set) => set({}, assurance.startup?.seconds ?? 0),
  );
  gauge(
    registers,
    'pawledger_startup_restore_source',
    '1 for the source the running chain came from at startup (a tier, local, file or genesis).',
    ['source'],
    (set) => {
      if (assurance.startup) set({ source: assurance.startup.from }, 1);
    },
  );

  const tiers = () => assurance.status().tiers;
  gauge(
    registers,
    'pawledger_tier_lag_blocks',
    "Blocks the head is past the tier's newest backup.",
    ['tier'],
    (set) => {
      for (const t of tiers()) set({ tier: t.tier }, t.lagBlocks);
    },
  );
  gauge(
    registers,
    'pawledger_tier_lag_seconds',
    'How long the tier has lacked its oldest missing block.',
    ['tier'],
    (set) => {
      for (const t of tiers()) set({ tier: t.tier }, t.lagSeconds);
    },
  );
  gauge(
    registers,
    'pawledger_tier_stale',
    '1 when the tier lags past LEDGER_MAX_LAG_BLOCKS or _SECONDS.',
    ['tier'],
    (set) => {
      for (const t of tiers()) set({ tier: t.tier }, t.stale ? 1 : 0);
    },
  );
  gauge(
    registers,
    'pawledger_tier_last_backup_timestamp_seconds',
    'When the tier last took blocks or a backup record (Unix time; absent before the first in this process).',
    ['tier'],
    (set) => {
      for (const t of tiers()) if (t.lastBackupAt) set({ tier: t.tier }, Date.parse(t.lastBackupAt) / 1000);
    },
  );
  counter(registers, 'pawledger_tier_sent_bytes_total', 'Bytes sent to the tier in this process.', (set) => {
    for (const c of assurance.counters()) set(c.tier, c.bytesSent);
  });
  counter(registers, 'pawledger_tier_errors_total', 'Failed calls to the tier in this process.', (set) => {
    for (const c of assurance.counters()) set(c.tier, c.failures);
  });
  const lastDrill = (
    name: string,
    help: string,
    value: (d: NonNullable<ReturnType<typeof tiers>[0]['lastDrill']>) => number,
  ) =>
    gauge(registers, name, help, ['tier'], (set) => {
      for (const t of tiers()) if (t.lastDrill) set({ tier: t.tier }, value(t.lastDrill));
    });
  lastDrill(
    'pawledger_drill_last_timestamp_seconds',
    "When the tier's newest restore drill started (Unix time).",
    (d) => Date.parse(d.startedAt) / 1000,
  );
  lastDrill(
    'pawledger_drill_last_duration_seconds',
    "How long the tier's newest restore drill took.",
    (d) => d.durationMs / 1000,
  );
  lastDrill('pawledger_drill_last_success', "1 when the tier's newest restore drill passed, 0 when it failed.", (d) =>
    d.outcome === 'ok' ? 1 : 0,
  );

  // Key rotation: what each place holds under which key, as last counted (key ids are public, 4 bytes, a short list).
  gauge(
    registers,
    'pawledger_sealed_objects',
    'Sealed objects each place holds (local store, tiers), by the id of the key that sealed them, as last counted.',
    ['tier', 'key_id'],
    (set) => {
      for (const t of ledger.status().keys.tiers)
        for (const [keyId, n] of Object.entries(t.keys)) set({ tier: t.tier, key_id: keyId }, n);
    },
  );
  gauge(
    registers,
    'pawledger_key_rotation_remaining_objects',
    'Objects each place still holds under a previous key (LEDGER_PREVIOUS_KEYS): 0 when its rotation is done.',
    ['tier'],
    (set) => {
      for (const t of ledger.status().keys.tiers) if (t.remaining >= 0) set({ tier: t.tier }, t.remaining);
    },
  );
}

type Labels = Record<string, string>;

// A gauge whose values are read at scrape time.
function gauge(
  registers: Registry[],
  name: string,
  help: string,
  labelNames: string[],
  read: (set: (labels: Labels, value: number) => void) => void,
): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers,
    collect() {
      this.reset();
      read((labels, value) => this.set(labels, value));
    },
  });
}

// A per-tier counter whose totals are kept elsewhere (the replicators) and copied at scrape time.
function counter(
  registers: Registry[],
  name: string,
  help: string,
  read: (set: (tier: string, total: number) => void) => void,
): void {
  new Counter({
    name,
    help,
    labelNames: ['tier'],
    registers,
    collect() {
      this.reset();
      read((tier, total) => this.inc({ tier }, total));
    },
  });
}
