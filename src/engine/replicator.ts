import type { BackupRecord, NewBackup } from '../crypto/records.js';
import type { ChainPage, SealedPack } from '../crypto/packs.js';
import type { StoredBlock } from '../crypto/stored-block.js';
import type { StoredCheckpoint } from '../tiers/tier.js';
import { describeError, NotWriterError, TimeoutError, UnavailableError } from '../errors.js';
import type { Logger } from '../log.js';
import type { TierEntry } from '../tiers/registry.js';
import { withDeadline } from '../util/deadline.js';
import type { Mutex } from '../util/mutex.js';
import { Backoff } from '../util/retry.js';
import { LogSampler, type LogSamplerOptions } from '../util/log-sampler.js';

/** PackSpan is where one of the local store's packs lies: its first and last height, and its last block's hash. */
export interface PackSpan {
  from: number;
  to: number;
  hash: string;
}

/** ReplicaSource is what a replicator reads from the ledger's working copy (the local store). */
export interface ReplicaSource {
  readonly ledgerId: string;
  readonly headHeight: number;
  hashAt(height: number): Promise<string | null>;
  /** readPages yields the chain from..to as the local store holds it: loose blocks and packs. */
  readPages(from: number, to: number): AsyncIterable<ChainPage>;
  /** packs are the local store's packs, oldest first (none before compaction). */
  packs?(): readonly PackSpan[];
  /** checkpoint is the local store's newest checkpoint on its chain, or null. */
  checkpoint?(): Promise<StoredCheckpoint | null>;
  /** autoRecord seals an automatic backup record for the block at `height` (the head by default). */
  autoRecord(height?: number): Promise<NewBackup>;
  /** rootAt is the chain root at `height` (once the accumulator is level), for a pack's manifest. */
  rootAt?(height: number): Promise<string | undefined>;
}

/** ReplicaState is a tier's health as status shows it. */
export type ReplicaState = 'ok' | 'lagging';

/** ReplicatorOptions tune a replicator. */
export interface ReplicatorOptions {
  log: Logger;
  /** serial is the ledger's serial section: a sync tier is declared level there, where no save can interleave. */
  serial: Mutex;
  /** retryMs is the first wait before a failed tier is tried again; it doubles up to maxRetryMs. */
  retryMs: number;
  /** maxRetryMs caps the wait between tries. @default 30000 */
  maxRetryMs?: number;
  /** debounceMs is how long an async tier waits for more saves before it catches up (a burst is one upload). */
  debounceMs: number;
  /**
   * deadlineMs is how long a save waits for a sync tier (and a probe for any tier) before the tier counts as not
   * answering (LEDGER_TIER_TIMEOUT_MS). @default 2000
   */
  deadlineMs?: number;
  /** callMs bounds one call of a catch-up (a batch, a lookup): a stuck mount must not hold it forever. @default 30000 */
  callMs?: number;
  /** canWrite is false on an instance that must write no tier (a standby under the writer lease). */
  canWrite?: () => boolean;
  /** logSaves samples the per-backup lines under load (util/log-sampler.ts). */
  logSaves?: LogSamplerOptions;
}

// One catch-up statement carries at most this many blocks or bytes: bounded memory whatever the backlog.
const BATCH_BLOCKS = 2000;
const BATCH_BYTES = 16 * 1024 * 1024;
// A sync tier that has saves waiting for it is probed at least this often: it is caught up soon after it answers.
const SYNC_PROBE_MAX_MS = 2000;
// A sync tier's catch-up sends at most this many blocks inside the serial section to become level beside saves.
const LAST_STEP_BLOCKS = 256;

/**
 * Replicator keeps one tier level with the local store, written once for every tier. A sync tier gets each save's
 * blocks and an automatic backup record at once (afterSave, inside the serial section), waiting at most deadlineMs;
 * an async tier is asked to catch up a moment later, and a burst of saves becomes one catch-up. Either way a tier
 * that fails never fails a save and, once it has failed, a save never waits on it again: it is marked lagging, probed
 * in the background (on a connection of its own, at least every 2 s for a sync tier), and caught up once a probe
 * succeeds. A catch-up finds the newest local block the tier holds (a binary search: a tier holds a prefix of the
 * chain, or of a branch that shares one) and sends everything after it, then a record of the head, so nothing is
 * lost however long the tier was away, and after a rollback the tier's newest backup moves back with the chain. It
 * runs beside saves; only declaring a sync tier level again (so that saves send to it) happens in the serial
 * section, where no save can slip between. What to send is always derived from what the tier lacks, never queued in
 * memory: a restart loses nothing. One catch-up runs at a time; hold() keeps them out while the store is swapped.
 */
export class Replicator {
  state: ReplicaState = 'lagging';
  /** height is the last height the tier is known to hold (-1 when unknown). */
  height = -1;
  lastError: string | undefined;
  /** lastFailure is the error behind lastError, for callers that must pass its type on. */
  lastFailure: unknown;
  lastBackup: BackupRecord | undefined;
  /** bytesSent counts the bytes this tier took in this process (blocks, packs, records), for metrics. */
  bytesSent = 0;
  /** failures counts the failed calls to this tier in this process, for metrics. */
  failures = 0;
  /** lastSuccessAt is when the tier last took blocks or a record. */
  lastSuccessAt: Date | null = null;
  /** answering is false from a failure until a probe or a catch-up succeeds: nothing but probes is sent meanwhile. */
  answering = true;
  readonly #backoff: Backoff;
  readonly #sentLog: LogSampler;
  readonly #deadlineMs: number;
  readonly #callMs: number;
  #initialized = false;
  #probing: Promise<boolean> | null = null;
  #probeFailedAt = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<boolean> | null = null;
  #held: Promise<unknown> | null = null;
  #again = false;
  #stopped = false;
  // Callers of catchUp() and hold() hold the serial section; while they wait for a background catch-up, they lend it
  // the section (#lending > 0), or that catch-up, ending with a step in the section, and they would wait for each other.
  #lending = 0;
  readonly #onLend = new Set<() => void>();
  // The newest local pack, and checkpoint, known to be in the tier (-1: not known yet; found out at the next catch-up).
  #packedTo = -1;
  #checkpointSent = -1;

  constructor(
    readonly entry: TierEntry,
    private readonly source: ReplicaSource,
    private readonly options: ReplicatorOptions,
  ) {
    this.#backoff = new Backoff(options.retryMs, options.maxRetryMs ?? 30_000);
    this.#deadlineMs = options.deadlineMs ?? 2000;
    this.#callMs = options.callMs ?? 30_000;
    this.#sentLog = new LogSampler(
      options.log,
      (n) => `Ledger backed up to ${entry.describe}: ${n} more backups`,
      options.logSaves,
    );
  }

  get tier() {
    return this.entry.tier;
  }

  /** level is true when the tier is known to hold the head and a record of it. */
  get level(): boolean {
    return this.state === 'ok' && this.height === this.source.headHeight;
  }

  /**
   * afterSave hands the tier the blocks of a save (being appended locally at the same time) and their automatic
   * record. A sync tier gets them now (the caller is in the serial section), waiting at most deadlineMs; it never
   * throws: a failure marks the tier lagging and it catches up in the background. An async tier is asked to catch up
   * after debounceMs (call it once the blocks are the head: a catch-up that ran before would stop at the old head).
   */
  async afterSave(parentHash: string | null, blocks: StoredBlock[], record: NewBackup): Promise<void> {
    if (this.entry.role === 'async') return this.notify();
    if (this.state !== 'ok' || this.#held) return this.#retryLater();
    try {
      const what = `${this.tier.label} (a save's backup)`;
      const { record: stored, bytesWritten } = await withDeadline(
        this.tier.append(this.source.ledgerId, parentHash, blocks, record),
        this.#deadlineMs,
        what,
        'LEDGER_TIER_TIMEOUT_MS',
      );
      this.#sent(blocks.at(-1)!.height, stored!, bytesWritten);
    } catch (err) {
      this.#fail(err);
    }
  }

  /**
   * commit sends blocks before they are saved locally (the writer-lease mode: a save is acknowledged only once the
   * database holds it) with their record, waiting at most deadlineMs. A failure marks the tier lagging and is thrown.
   */
  async commit(parentHash: string | null, blocks: StoredBlock[], record: NewBackup): Promise<void> {
    try {
      const { record: stored, bytesWritten } = await withDeadline(
        this.tier.append(this.source.ledgerId, parentHash, blocks, record),
        this.#deadlineMs,
        `${this.tier.label} (a save)`,
        'LEDGER_TIER_TIMEOUT_MS',
      );
      this.#sent(blocks.at(-1)!.height, stored!, bytesWritten);
    } catch (err) {
      this.#fail(err, false);
      this.#retryLater();
      throw err;
    }
  }

  /** notify asks for a catch-up soon; asks that come while one runs make one more after it. */
  notify(delayMs = this.entry.role === 'async' ? this.options.debounceMs : 0): void {
    if (this.#stopped) return;
    if (this.#running || this.#held) {
      this.#again = true;
      return;
    }
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#background();
    }, delayMs);
    this.#timer.unref();
  }

  /**
   * catchUp brings the tier level with the local store now (waiting for one in flight first) and resolves true when
   * it is level. With `record`, a backup record of the head (a restore's), the tier ends with that record unless it
   * already holds a record of the head. Callers hold the serial section (no save interleaves), so a sync tier is
   * declared level at once.
   */
  async catchUp(record?: NewBackup): Promise<boolean> {
    while (this.#running || this.#held) await this.#lendWhile(this.#running ?? this.#held!.catch(() => {}));
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    return this.#run({ record, inSerial: true });
  }

  /**
   * hold runs fn with no catch-up in flight and none starting until it ends (a restore swapping the local store,
   * retention deleting what a catch-up could build on); catch-ups asked for meanwhile start after it. On a sync tier,
   * call it in the serial section (as catchUp).
   */
  async hold<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#held) await this.#held.catch(() => {});
    const held = (async () => {
      while (this.#running) await this.#lendWhile(this.#running);
      return fn();
    })();
    this.#held = held;
    try {
      return await held;
    } finally {
      this.#held = null;
      if (this.#again) {
        this.#again = false;
        this.notify(0);
      }
    }
  }

  // Wait for p, lending the caller's serial section meanwhile to a background catch-up that needs it (see #inSerial).
  async #lendWhile<T>(p: Promise<T>): Promise<T> {
    this.#lending++;
    for (const lend of this.#onLend) lend();
    try {
      return await p;
    } finally {
      this.#lending--;
    }
  }

  // Run fn in the serial section from a background catch-up: queued for it, or at once in the section of a caller
  // that holds it and waits for this catch-up (catchUp, hold), whichever comes first. fn runs once either way.
  async #inSerial(fn: () => Promise<void>): Promise<void> {
    let once: Promise<void> | undefined;
    const go = () => (once ??= fn());
    if (this.#lending > 0) return go();
    let lend = () => {};
    const lent = new Promise<void>((resolve) => (lend = resolve));
    this.#onLend.add(lend);
    try {
      await Promise.race([this.options.serial.run(go), lent.then(go)]);
    } finally {
      this.#onLend.delete(lend);
    }
  }

  // A background catch-up (a retry, a debounced upload): beside saves, for sync tiers too.
  async #background(): Promise<void> {
    if (this.#running || this.#held) {
      this.#again = true;
      return;
    }
    await this.#run({ inSerial: false });
  }

  #run(how: { record?: NewBackup | undefined; inSerial: boolean }): Promise<boolean> {
    const running = this.#drain(how).finally(() => {
      if (this.#running === running) this.#running = null;
    });
    this.#running = running;
    return running;
  }

  async #drain(how: { record?: NewBackup | undefined; inSerial: boolean }): Promise<boolean> {
    // An instance that must not write (a standby) sends nothing; the writer's replication covers it.
    if (this.options.canWrite?.() === false) return false;
    // A tier that stopped answering is probed first: a catch-up would wait out every one of its calls.
    if (!this.answering && !(await this.probeNow())) {
      this.#retryLater();
      return false;
    }
    let ok: boolean;
    let record = how.record;
    do {
      this.#again = false;
      ok = await this.#once(record, how.inSerial);
      record = undefined;
      // A hold() waiting (a swap of the store, a rotation step) goes first: saves that never stop would otherwise keep
      // this loop going, and the hold waiting, for ever. It notifies again when it ends.
    } while (ok && this.#again && !this.#stopped && !this.#held);
    if (!ok) this.#retryLater();
    return ok && this.level;
  }

  /**
   * probeNow asks the tier whether it answers, sharing one probe among everyone who asks while it runs, and taking a
   * call that timed out within the last deadline as the answer: a caller waits at most the deadline, whatever queue it
   * stands in. It resolves true (it answers: catch-ups may go on) or false.
   */
  probeNow(): Promise<boolean> {
    if (this.answering) return Promise.resolve(true);
    if (!this.#probing && performance.now() - this.#probeFailedAt < this.#deadlineMs) return Promise.resolve(false);
    this.#probing ??= this.#probe().finally(() => (this.#probing = null));
    return this.#probing;
  }

  async #probe(): Promise<boolean> {
    const started = performance.now();
    try {
      const what = `${this.tier.label} (probe)`;
      await withDeadline(this.tier.probe?.() ?? this.tier.init(), this.#deadlineMs, what, 'LEDGER_TIER_TIMEOUT_MS');
      this.answering = true;
      this.options.log.info({ tier: this.entry.name }, `${this.#describe()} answers again: catching up`);
      return true;
    } catch (err) {
      this.lastError = describeError(err);
      this.lastFailure = err;
      // A probe that took long did not answer, whatever error it ended with: asking again costs as much.
      if (err instanceof TimeoutError || performance.now() - started >= this.#deadlineMs / 2)
        this.#probeFailedAt = performance.now();
      return false;
    }
  }

  // Bounds one call of a catch-up, so a tier that stops answering mid-way fails it rather than holds it forever.
  #call<T>(p: Promise<T>, what: string): Promise<T> {
    return withDeadline(p, this.#callMs, `${this.tier.label} (${what})`, 'LEDGER_SOURCE_TIMEOUT_MS');
  }

  async #once(final: NewBackup | undefined, inSerial: boolean): Promise<boolean> {
    try {
      if (!this.#initialized) {
        await this.#call(this.tier.init(), 'init');
        this.#initialized = true;
      }
      const { ledgerId } = this.source;
      const head = this.source.headHeight;
      const common = await this.#newestHeld(head);
      const latest = (await this.#call(this.tier.listBackups(ledgerId, { limit: 1 }), 'listing'))[0];
      if (common === head && latest?.height === head && latest.headHash === (await this.source.hashAt(head))) {
        this.lastBackup = latest;
      } else {
        const wasLagging = this.state !== 'ok';
        let parent = common >= 0 ? await this.source.hashAt(common) : null;
        let sent = 0;
        let batch: StoredBlock[] = [];
        let bytes = 0;
        const flush = async () => {
          if (batch.length === 0) return;
          const last = batch.at(-1)!;
          await this.#call(
            this.tier.append(ledgerId, parent, batch, undefined, await this.source.rootAt?.(last.height)),
            `sending blocks ${batch[0]!.height}-${last.height}`,
          );
          sent += batch.length;
          parent = last.hash;
          // Status shows the lag shrinking while a long catch-up runs.
          this.height = last.height;
          batch = [];
          bytes = 0;
        };
        for await (const page of this.source.readPages(common + 1, head)) {
          if ('pack' in page) {
            // A pack the local store holds goes whole (the tier skips the blocks of it it holds already), after every
            // earlier local pack: the packs a tier holds stay one run from block 0, which #syncPacks relies on.
            await flush();
            await this.#syncPacks(page.pack.from - 1);
            await this.#sendPack(page.pack);
            sent += page.to - page.from + 1;
            parent = page.pack.hashes[page.to - page.pack.from]!;
            this.height = page.to;
            continue;
          }
          for (const b of page.blocks) {
            batch.push(b);
            bytes += b.sealed.length;
            if (batch.length >= BATCH_BLOCKS || bytes >= BATCH_BYTES) await flush();
          }
        }
        const sealed = final ?? (await this.source.autoRecord(head));
        const { record, bytesWritten } = await this.#call(
          this.tier.append(ledgerId, parent, batch, sealed),
          'the record',
        );
        sent += batch.length;
        if (wasLagging || sent > 0) {
          this.options.log.info(
            { tier: this.entry.name, blocks: sent, height: head },
            `${this.#describe()} caught up: sent ${sent} missed blocks, now at block ${head}`,
          );
        }
        this.#sent(head, record!, bytesWritten);
      }
      await this.#syncPacks(head);
      await this.#syncCheckpoint(head);
      this.height = head;
      this.lastError = undefined;
      this.lastFailure = undefined;
      this.answering = true;
      this.#backoff.reset();
      // Saves made while this ran are not in the tier yet. An async tier simply goes again; a sync tier is declared
      // level (so saves send to it again) only where no save can slip between the check and the flag.
      if (this.entry.role === 'async' || inSerial) this.state = 'ok';
      else
        await this.#inSerial(async () => {
          if (this.source.headHeight === head) this.state = 'ok';
          // Saves that never pause would keep a sync tier one step behind for ever: the few made meanwhile are sent
          // here, where none can slip in, and the tier is level after it (a long way behind, it goes round again).
          else if (this.source.headHeight - head <= LAST_STEP_BLOCKS) await this.#once(undefined, true);
          else this.#again = true;
        });
      if (this.entry.role === 'async' && this.source.headHeight !== head) this.#again = true;
      return true;
    } catch (err) {
      this.#fail(err, false);
      return false;
    }
  }

  // Send one local pack to the tier (which replaces its loose copies of those blocks, or adds the ones it lacks).
  async #sendPack(pack: SealedPack): Promise<void> {
    if (!this.tier.putPack) throw new Error(`${this.tier.label} cannot take packs`);
    const parent = pack.from === 0 ? null : await this.source.hashAt(pack.from - 1);
    await this.#call(
      this.tier.putPack(this.source.ledgerId, parent, pack, await this.source.rootAt?.(pack.to)),
      `sending the pack of blocks ${pack.from}-${pack.to}`,
    );
    // Only a pack that continues the run of packs the tier holds from block 0 moves #packedTo on: a catch-up may send
    // a later pack first (the tier lacked its blocks), and the packs before it must still go (#syncPacks).
    if (pack.from <= this.#packedTo + 1) this.#packedTo = Math.max(this.#packedTo, pack.to);
  }

  // Compaction, carried to the tier: every local pack (up to the head it holds) it does not hold as a pack yet.
  async #syncPacks(head: number): Promise<void> {
    const packs = this.source.packs?.() ?? [];
    if (!this.tier.putPack || packs.length === 0) return;
    if (this.#packedTo < 0) this.#packedTo = await this.#newestPackHeld(packs);
    for (const span of packs) {
      if (span.to <= this.#packedTo || span.to > head) continue;
      for await (const page of this.source.readPages(span.from, span.to))
        if ('pack' in page && page.pack.to === span.to) await this.#sendPack(page.pack);
    }
  }

  // The newest local pack the tier holds as a pack (a binary search: packs are made, and sent, oldest first).
  async #newestPackHeld(packs: readonly PackSpan[]): Promise<number> {
    const hasPack = this.tier.hasPack?.bind(this.tier);
    if (!hasPack) return -1;
    const has = (i: number) =>
      this.#call(hasPack(this.source.ledgerId, packs[i]!.to, packs[i]!.hash), `looking up the pack to ${packs[i]!.to}`);
    let lo = -1;
    let hi = packs.length;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (await has(mid)) lo = mid;
      else hi = mid;
    }
    return lo < 0 ? -1 : packs[lo]!.to;
  }

  // The local store's newest checkpoint, carried to the tier once it holds the checkpoint's block.
  async #syncCheckpoint(head: number): Promise<void> {
    const cp = this.tier.putCheckpoint ? await this.source.checkpoint?.() : null;
    if (!cp || cp.height <= this.#checkpointSent || cp.height > head) return;
    if (this.#checkpointSent < 0 && this.lastBackup && this.tier.checkpointFor) {
      const held = await this.#call(this.tier.checkpointFor(this.lastBackup), 'looking up its checkpoint');
      if (held?.height === cp.height && held.hash === cp.hash) {
        this.#checkpointSent = cp.height;
        return;
      }
    }
    const parts: Buffer[] = [];
    for await (const p of cp.parts()) parts.push(p);
    await this.#call(
      this.tier.putCheckpoint!(this.source.ledgerId, { height: cp.height, hash: cp.hash, parts }),
      `sending the checkpoint at block ${cp.height}`,
    );
    this.#checkpointSent = cp.height;
  }

  // The newest local height whose block the tier holds: a binary search, since a tier holds a prefix of the chain.
  async #newestHeld(head: number): Promise<number> {
    const has = async (h: number) =>
      this.#call(this.tier.hasBlock(this.source.ledgerId, h, (await this.source.hashAt(h))!), `looking up block ${h}`);
    // Read once: a save sent to a sync tier meanwhile moves this.height on, past `head` and perhaps the lookups.
    const known = this.height;
    if (known >= 0 && known <= head && (await has(known))) {
      if (known === head || !(await has(known + 1))) return known;
    }
    if (await has(head)) return head;
    let lo = -1;
    let hi = head;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (await has(mid)) lo = mid;
      else hi = mid;
    }
    return lo;
  }

  #describe(): string {
    return this.entry.describe.charAt(0).toUpperCase() + this.entry.describe.slice(1);
  }

  #sent(height: number, record: BackupRecord, bytesWritten: number): void {
    this.height = height;
    this.lastBackup = record;
    this.lastSuccessAt = new Date();
    this.bytesSent += bytesWritten;
    this.#sentLog.line(
      {
        tier: this.entry.name,
        backupId: record.id,
        backupName: record.name,
        sizeBytes: record.sizeBytes,
        blocks: record.height + 1,
        bytesWritten,
      },
      `Ledger backed up to ${this.entry.describe}: Backup ID ${record.id}, Name "${record.name}", Size ${record.sizeBytes} bytes, Blocks ${record.height + 1}`,
      { height: record.height, bytes: bytesWritten },
    );
  }

  #fail(err: unknown, schedule = true): void {
    const wasOk = this.state === 'ok';
    this.state = 'lagging';
    this.failures++;
    this.lastError = describeError(err);
    this.lastFailure = err;
    // A tier that did not answer (unreachable, timed out) is probed before anything else is sent to it.
    if (err instanceof UnavailableError && !(err instanceof NotWriterError)) {
      this.answering = false;
      // It just timed out: as good as a failed probe, for anyone about to ask again (asking costs the deadline). A
      // refused or reset connection is cheap to ask again, and is.
      if (err instanceof TimeoutError) this.#probeFailedAt = performance.now();
    }
    if (wasOk || this.#backoff.first) {
      this.options.log.warn(
        { tier: this.entry.name, lag: this.source.headHeight - this.height, err: this.lastError },
        `${this.#describe()} backup failed, saves continue and it will catch up: ${this.lastError}`,
      );
    }
    if (schedule) this.#retryLater();
  }

  #retryLater(): void {
    if (
      this.#timer ||
      this.#stopped ||
      this.options.canWrite?.() === false ||
      this.lastFailure instanceof NotWriterError
    )
      return;
    // A sync tier with saves waiting for it is tried again within a couple of seconds however long it was away.
    const wait = this.#backoff.next();
    this.#timer = setTimeout(
      () => {
        this.#timer = null;
        void this.#background();
      },
      this.entry.role === 'sync' ? Math.min(wait, SYNC_PROBE_MAX_MS) : wait,
    );
    this.#timer.unref();
  }

  /** noteLevel tells the replicator the tier holds the chain up to `height` (a commit whose reply was lost, found there). */
  noteLevel(height: number): void {
    this.height = height;
    this.state = 'ok';
    this.answering = true;
    this.lastError = undefined;
  }

  /** noteBackup tells the replicator about a record written outside it (a standby following): the tier is level. */
  noteBackup(record: BackupRecord): void {
    this.lastBackup = record;
    this.height = record.height;
    this.state = 'ok';
    this.answering = true;
    this.lastError = undefined;
  }

  /**
   * stop cancels scheduled catch-ups and gives one in flight up to `graceMs` to finish. One cut short loses nothing:
   * the next start derives the work again from what the tier lacks.
   */
  async stop(graceMs = 5000): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (!this.#running) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#running, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
  }
}
