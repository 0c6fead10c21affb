import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Assurance } from './assurance.js';
import type { LedgerStatus } from './ledger-types.js';
import { postWebhook, type WebhookOptions } from './webhook.js';

/** IncidentKind is what went wrong. */
export type IncidentKind = 'drill_failed' | 'tier_stale' | 'tier_failing' | 'fork' | 'degraded';

/** Incident is one thing an operator must know about, identified by `key` while it lasts. */
export interface Incident {
  key: string;
  kind: IncidentKind;
  tier: string | null;
  summary: string;
}

/**
 * incidentsOf lists the incidents a status shows: a tier whose newest drill failed, a stale tier, a tier failing for
 * longer than `failingMs`, a fork resolved at startup, a degraded ledger.
 */
export function incidentsOf(status: LedgerStatus, failingMs: number, now: number): Incident[] {
  const out: Incident[] = [];
  for (const t of status.assurance.tiers) {
    if (t.lastDrill?.outcome === 'failed')
      out.push({
        key: `drill_failed:${t.tier}`,
        kind: 'drill_failed',
        tier: t.tier,
        summary: `the restore drill of tier ${t.tier} failed: ${t.lastDrill.reason}`,
      });
    if (t.stale)
      out.push({
        key: `tier_stale:${t.tier}`,
        kind: 'tier_stale',
        tier: t.tier,
        summary: `tier ${t.tier} is stale: ${t.lagBlocks} blocks and ${t.lagSeconds} s behind the head`,
      });
    if (t.failingSince && now - Date.parse(t.failingSince) >= failingMs)
      out.push({
        key: `tier_failing:${t.tier}`,
        kind: 'tier_failing',
        tier: t.tier,
        summary: `tier ${t.tier} has been failing since ${t.failingSince}`,
      });
  }
  if (status.fork)
    out.push({ key: 'fork', kind: 'fork', tier: null, summary: `startup resolved a fork: ${status.fork}` });
  if (status.degraded)
    out.push({
      key: 'degraded',
      kind: 'degraded',
      tier: null,
      summary: `the ledger is degraded, writes are refused: ${status.degraded.reason}`,
    });
  return out;
}

/** AlertOptions configure AlertMonitor (LEDGER_ALERT_*). */
export interface AlertOptions {
  url: string;
  /** checkMs is how often incidents are looked for (also right after every drill). */
  checkMs: number;
  /** failingMs is how long a tier may fail before it is an incident. */
  failingMs: number;
  log: Logger;
  webhook?: WebhookOptions;
}

/**
 * AlertMonitor sends one alert when an incident starts and one when it clears, to LEDGER_ALERT_WEBHOOK_URL: a JSON
 * POST with a Slack-compatible `text` and the incident's fields. It looks every checkMs and after each drill, from the
 * status the ledger already holds; sending runs in the background, one alert after another (a clear never overtakes
 * its start), retried with backoff, so it never holds up a save. An alert that cannot be delivered is logged.
 */
export class AlertMonitor {
  readonly #open = new Map<string, { incident: Incident; since: string }>();
  #timer: NodeJS.Timeout | null = null;
  #sending: Promise<void> = Promise.resolve();

  constructor(
    private readonly ledger: { status(): LedgerStatus; readonly assurance: Assurance },
    private readonly options: AlertOptions,
  ) {}

  /** start looks for incidents now and every checkMs, and after each drill; stop() ends it. */
  start(): void {
    if (this.#timer) return;
    this.ledger.assurance.drills.onDrill(() => this.#timer && this.check());
    this.#timer = setInterval(() => this.check(), this.options.checkMs);
    this.#timer.unref();
    this.check();
  }

  /** check compares the incidents now with those already announced, and queues an alert for each change. */
  check(): void {
    let status: LedgerStatus;
    try {
      status = this.ledger.status();
    } catch {
      return;
    }
    const now = new Date();
    const seen = new Set<string>();
    for (const incident of incidentsOf(status, this.options.failingMs, now.getTime())) {
      seen.add(incident.key);
      if (this.#open.has(incident.key)) continue;
      const since = now.toISOString();
      this.#open.set(incident.key, { incident, since });
      this.#queue('firing', incident, since, status);
    }
    for (const [key, { incident, since }] of this.#open) {
      if (seen.has(key)) continue;
      this.#open.delete(key);
      this.#queue('resolved', incident, since, status);
    }
  }

  #queue(state: 'firing' | 'resolved', incident: Incident, since: string, status: LedgerStatus): void {
    const at = new Date().toISOString();
    const text =
      state === 'firing'
        ? `:rotating_light: pawledger ${incident.kind.replace('_', ' ')}: ${incident.summary}`
        : `:white_check_mark: pawledger resolved: ${incident.summary} (since ${since})`;
    const payload = {
      text,
      status: state,
      incident: incident.key,
      kind: incident.kind,
      tier: incident.tier,
      summary: incident.summary,
      ledgerId: status.ledgerId,
      height: status.height,
      since,
      at,
    };
    const log = this.options.log;
    this.#sending = this.#sending.then(async () => {
      try {
        await postWebhook(this.options.url, payload, { ...this.options.webhook, log });
        log.info({ incident: incident.key, status: state }, `Alert sent (${state}): ${incident.summary}`);
      } catch (err) {
        log.error(
          { incident: incident.key, status: state, err: describeError(err) },
          `Alert (${state}) could not be delivered: ${describeError(err)}`,
        );
      }
    });
  }

  /** stop ends the checks and waits for alerts already queued, at most graceMs. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.#sending, new Promise((r) => (t = setTimeout(r, graceMs)))]);
    clearTimeout(t);
  }
}
