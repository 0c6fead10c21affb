import { describeError, IntegrityError } from '../errors.js';
import type { Logger } from '../log.js';
import type { KeyCounts, ResealStep } from '../tiers/tier.js';
import { progressTask } from '../util/progress.js';
import { Backoff } from '../util/retry.js';

// A key id is 4 bytes in hex; counts may hold other labels (bytes that are not a sealed object), never rotated.
const KEY_ID = /^[0-9a-f]{8}$/;
// How long a step waits for a place that is not ready before it skips it.
const READY_WAIT_MS = 3000;

/** RotationTarget is one place that holds sealed objects (the local store, a tier), as rotation sees it. */
export interface RotationTarget {
  readonly name: string;
  /**
   * notReady says why the place cannot take work now (a tier that lags or does not answer), null when it can. A place
   * not ready for a few seconds is skipped and tried again later.
   */
  notReady(): string | null;
  keyCounts(): Promise<KeyCounts>;
  /** reseal is one bounded step (BackupTier.reseal), kept apart from saves and catch-ups by the target itself. */
  reseal(limit: number): Promise<ResealStep>;
}

/** TierKeys is what rotation knows of one place: its objects by key id, and how it last went. */
export interface TierKeys {
  tier: string;
  /** keys counts its sealed objects by key id, as last counted (empty before the first count). */
  keys: KeyCounts;
  /** remaining counts the objects still under a key other than the active one (-1: not counted yet). */
  remaining: number;
  /** resealed counts the objects rewritten under the active key by this process. */
  resealed: number;
  /** error is why the last count or step failed, or why the place was skipped; absent when it went well. */
  error?: string;
}

/** RotationReport is where a rotation stands: the active key, each place's counts, and whether it is done. */
export interface RotationReport {
  activeKeyId: string;
  previousKeyIds: string[];
  /** state: 'idle' (not started in this process), 'running', 'done' (nothing left under an old key), 'incomplete'. */
  state: 'idle' | 'running' | 'done' | 'incomplete';
  tiers: TierKeys[];
  /**
   * droppable are the previous key ids that no counted object needs any more: LEDGER_PREVIOUS_KEYS can lose them.
   * Only when every place was counted without error.
   */
  droppable: string[];
  durationMs: number;
}

/**
 * droppableKeys are the previous key ids under which no place holds anything, once every place was counted without
 * error (a place not counted might still need any of them).
 */
export function droppableKeys(tiers: readonly TierKeys[], previousKeyIds: readonly string[]): string[] {
  const counted = tiers.length > 0 && tiers.every((t) => !t.error && t.remaining >= 0);
  return counted ? previousKeyIds.filter((id) => tiers.every((t) => !(t.keys[id] ?? 0))) : [];
}

/** remainingOf counts the objects of `keys` under a key other than the active one: what rotation has left there. */
export function remainingOf(keys: KeyCounts, activeKeyId: string): number {
  return Object.entries(keys)
    .filter(([id]) => id !== activeKeyId && KEY_ID.test(id))
    .reduce((n, [, c]) => n + c, 0);
}

/** RotatorOptions tune a rotation. */
export interface RotatorOptions {
  /** batch is how many objects one step rewrites (LEDGER_ROTATE_BATCH): what a save may wait behind. */
  batch: number;
  /**
   * retryMs is how long the background rotation first waits before trying a place that failed or was skipped again;
   * the wait doubles at each try after that, up to a minute.
   */
  retryMs: number;
}

/**
 * Rotator re-seals every object still under an old key, in every place that holds some (key rotation, issue #17):
 * the local store first (what catch-ups send on from), then each tier, in bounded steps of `batch` objects, each step
 * kept apart from saves by its target (service/key-rotation.ts), so saves interleave between steps and wait behind
 * one step at most. Progress
 * lives in the objects themselves (a step skips what is already under the active key), so a rotation killed at any
 * point goes on where it was when it runs again. One rotation runs at a time: callers share it. A pass ends when
 * every place reports nothing left; a place that lags or fails is skipped and tried again (in the background) later.
 */
export class Rotator {
  readonly #places = new Map<string, TierKeys>();
  #running: Promise<RotationReport> | null = null;
  #state: RotationReport['state'] = 'idle';
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  #startedAt = 0;
  #durationMs = 0;

  constructor(
    private readonly deps: {
      log: Logger;
      activeKeyId: string;
      previousKeyIds: readonly string[];
      targets: () => RotationTarget[];
    },
    private readonly options: RotatorOptions,
  ) {}

  /** report is where the rotation stands, from what this process last counted (no I/O). */
  report(): RotationReport {
    const tiers = this.deps.targets().map((t) => this.#place(t.name));
    return {
      activeKeyId: this.deps.activeKeyId,
      previousKeyIds: [...this.deps.previousKeyIds],
      state: this.#state,
      tiers: tiers.map((t) => ({ ...t, keys: { ...t.keys } })),
      droppable: droppableKeys(tiers, this.deps.previousKeyIds),
      durationMs: this.#running ? performance.now() - this.#startedAt : this.#durationMs,
    };
  }

  /** count counts every place's objects by key id now (no re-sealing) and returns the report. */
  async count(): Promise<RotationReport> {
    for (const target of this.deps.targets()) await this.#count(target);
    if (this.#state === 'idle' && this.#allCounted()) this.#state = this.#left() === 0 ? 'done' : 'idle';
    return this.report();
  }

  /**
   * run rotates now and resolves when a pass left nothing under an old key, or when a place could not finish (state
   * 'incomplete', with its error in the report). onProgress is called after every step.
   */
  run(onProgress?: (report: RotationReport) => void): Promise<RotationReport> {
    if (!this.#running) {
      this.#startedAt = performance.now();
      this.#state = 'running';
      this.#running = this.#rotate(onProgress).finally(() => {
        this.#durationMs = performance.now() - this.#startedAt;
        this.#running = null;
      });
    }
    return this.#running;
  }

  /**
   * start rotates in the background when the keyring holds previous keys: now, and again after a growing wait (retryMs at first) while a
   * place is left incomplete (a tier that was down). It returns whether it started.
   */
  start(): boolean {
    if (this.deps.previousKeyIds.length === 0 || this.#stopped) return false;
    const backoff = new Backoff(this.options.retryMs, Math.max(this.options.retryMs, 60_000));
    const loop = async () => {
      this.#timer = null;
      if (this.#stopped) return;
      const report = await this.run().catch((err) => {
        this.deps.log.error({ err }, `Key rotation failed: ${describeError(err)}`);
        return null;
      });
      if (!this.#stopped && report?.state !== 'done') {
        // A place that keeps failing is tried again less and less often (up to a minute), as every retry here does.
        this.#timer = setTimeout(loop, backoff.next());
        this.#timer.unref();
      }
    };
    this.#timer = setTimeout(loop, 0);
    this.#timer.unref();
    return true;
  }

  /** stop ends the background rotation after the step in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running?.catch(() => {});
  }

  async #rotate(onProgress?: (report: RotationReport) => void): Promise<RotationReport> {
    const { log, activeKeyId } = this.deps;
    const before = this.#resealedTotal();
    log.info(
      { keyId: activeKeyId, previous: this.deps.previousKeyIds },
      `Key rotation: re-sealing every object under a previous key (${this.deps.previousKeyIds.join(', ')}) with key ${activeKeyId}`,
    );
    // Passes until one finds nothing left anywhere: a catch-up during the rotation may carry objects a tier lacked.
    for (let pass = 0; pass < 3 && !this.#stopped; pass++) {
      let touched = 0;
      for (const target of this.deps.targets()) {
        if (this.#stopped) break;
        touched += await this.#rotateOne(target, pass === 0, onProgress);
      }
      if (touched === 0) break;
    }
    const left = this.#left();
    const failed = this.deps.targets().filter((t) => this.#place(t.name).error);
    this.#state = left === 0 && failed.length === 0 ? 'done' : 'incomplete';
    const report = this.report();
    const resealed = this.#resealedTotal() - before;
    if (this.#state === 'done') {
      const drop = report.droppable.length ? `; LEDGER_PREVIOUS_KEYS can drop ${report.droppable.join(', ')}` : '';
      log.info(
        { resealed, ms: Math.round(report.durationMs) },
        `Key rotation done: ${resealed} objects re-sealed with key ${activeKeyId} in ${Math.round(report.durationMs)} ms, none left under a previous key${drop}`,
      );
    } else {
      const why = failed.map((t) => `${t.name}: ${this.#place(t.name).error}`).join('; ');
      log.warn(
        { resealed, left },
        `Key rotation incomplete: ${resealed} objects re-sealed, ${left} still under a previous key${why ? ` (${why})` : ''}; it goes on later`,
      );
    }
    return report;
  }

  // Steps through one place until it reports nothing left; returns how many objects it rewrote.
  async #rotateOne(
    target: RotationTarget,
    waitReady: boolean,
    onProgress?: (report: RotationReport) => void,
  ): Promise<number> {
    const place = this.#place(target.name);
    // A tier behind for a moment (a catch-up in flight, a slow statement) is waited for a little, in a rotation's first
    // pass, before it is skipped.
    let why = target.notReady();
    const until = performance.now() + (waitReady ? READY_WAIT_MS : 0);
    while (why && !this.#stopped && performance.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
      why = target.notReady();
    }
    if (why) {
      place.error = `skipped: ${why}; it is tried again later`;
      return 0;
    }
    delete place.error;
    let touched = 0;
    let task: ReturnType<typeof progressTask> | null = null;
    try {
      await this.#count(target, true);
      if (place.remaining === 0) return 0;
      // Progress counts objects (blocks, packs, checkpoint parts, records, manifests) as a restore counts blocks.
      const total = place.remaining;
      task = progressTask(`re-seal ${target.name}`, total);
      for (;;) {
        if (this.#stopped) return touched;
        const step = await target.reseal(this.options.batch);
        place.resealed += step.resealed;
        place.remaining = step.remaining;
        touched += step.resealed;
        // A pack tier rewrites a pack as one object where the count saw each block in it: once nothing is left, the
        // bar ends full rather than stopping part-way on a finished place.
        task.update(step.remaining === 0 ? Math.max(total, touched) : Math.min(touched, total));
        onProgress?.(this.report());
        if (step.remaining === 0 || step.resealed === 0) break;
        // Let saves and reads in between steps.
        await new Promise((r) => setImmediate(r));
      }
      await this.#count(target, true);
    } catch (err) {
      place.error = describeError(err);
      const what =
        err instanceof IntegrityError
          ? 'an object there does not open with the keyring'
          : 'the tier failed; it is tried again later';
      this.deps.log.error({ err, tier: target.name }, `Key rotation of ${target.name}: ${what}: ${place.error}`);
    } finally {
      task?.end();
    }
    return touched;
  }

  async #count(target: RotationTarget, rethrow = false): Promise<void> {
    const place = this.#place(target.name);
    try {
      place.keys = await target.keyCounts();
      place.remaining = remainingOf(place.keys, this.deps.activeKeyId);
      delete place.error;
    } catch (err) {
      place.error = describeError(err);
      if (rethrow) throw err;
    }
  }

  #place(name: string): TierKeys {
    let p = this.#places.get(name);
    if (!p) {
      p = { tier: name, keys: {}, remaining: -1, resealed: 0 };
      this.#places.set(name, p);
    }
    return p;
  }

  #allCounted(): boolean {
    return this.deps.targets().every((t) => this.#place(t.name).remaining >= 0);
  }

  #left(): number {
    return this.deps.targets().reduce((n, t) => n + Math.max(0, this.#place(t.name).remaining), 0);
  }

  #resealedTotal(): number {
    return [...this.#places.values()].reduce((n, p) => n + p.resealed, 0);
  }
}
