import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Mutex } from '../util/mutex.js';
import type { StoredBlock } from '../crypto/stored-block.js';
import type { BackupTier } from '../tiers/tier.js';
import type { BackupRecord, NewBackup } from '../crypto/records.js';

/** ReplicaSource is what a replicator reads from the ledger's working copy. */
export interface ReplicaSource {
  readonly ledgerId: string;
  readonly headHeight: number;
  hashAt(height: number): Promise<string | null>;
  read(from: number, to: number): AsyncIterable<StoredBlock>;
  /** autoRecord seals an automatic backup record for the current head. */
  autoRecord(): NewBackup;
}

/** ReplicaState is a tier's health as status shows it. */
export type ReplicaState = 'ok' | 'lagging';

const MAX_RETRY_MS = 30_000;
const CATCH_UP_BATCH = 2000;

/**
 * Replicator keeps one backup tier in step with the local store. On each save, replicate() sends the new blocks and
 * an automatic backup record; if the tier fails, the save still stands (it is durable locally) and the tier is
 * marked lagging. A timer then retries catchUp() with exponential backoff: it finds the newest local block the tier
 * holds and sends everything after it, so no block is lost however long the tier was away.
 * Every call that touches the tier runs inside the ledger's serial section, never beside a save.
 */
export class Replicator {
  state: ReplicaState = 'lagging';
  /** height is the last height the tier is known to hold (-1 when unknown). */
  height = -1;
  lastError: string | undefined;
  /** lastFailure is the error behind lastError, for callers that must pass its type on. */
  lastFailure: unknown;
  lastBackup: BackupRecord | undefined;
  #initialized = false;
  #timer: NodeJS.Timeout | null = null;
  #delay: number;
  #stopped = false;

  constructor(
    readonly tier: BackupTier,
    private readonly source: ReplicaSource,
    private readonly options: { log: Logger; serial: Mutex; retryMs: number; describe: string; canWrite?: () => boolean },
  ) {
    this.#delay = options.retryMs;
  }

  /** replicate sends blocks just saved locally (inside the serial section). It never throws. */
  async replicate(parentHash: string | null, blocks: StoredBlock[]): Promise<void> {
    if (this.state !== 'ok') return this.#schedule();
    try {
      const { record, bytesWritten } = await this.tier.append(this.source.ledgerId, parentHash, blocks, this.source.autoRecord());
      this.height = blocks.at(-1)!.height;
      this.#logBackup(record!, bytesWritten);
    } catch (err) {
      this.#fail(err);
    }
  }

  /**
   * commit sends blocks before they are saved locally (the writer-lease mode: a save is acknowledged only once the
   * database holds it) with their automatic backup record. A failure marks the tier lagging and is thrown.
   */
  async commit(parentHash: string | null, blocks: StoredBlock[], record: NewBackup): Promise<void> {
    try {
      const { record: stored, bytesWritten } = await this.tier.append(this.source.ledgerId, parentHash, blocks, record);
      this.height = blocks.at(-1)!.height;
      this.#logBackup(stored!, bytesWritten);
    } catch (err) {
      this.state = 'lagging';
      this.lastError = describeError(err);
      this.lastFailure = err;
      throw err;
    }
  }

  /** catchUp brings the tier level with the local store; it resolves true when the tier is level. */
  async catchUp(): Promise<boolean> {
    try {
      if (!this.#initialized) {
        await this.tier.init();
        this.#initialized = true;
      }
      const head = this.source.headHeight;
      const common = await this.#newestHeld(head);
      const latest = (await this.tier.listBackups(this.source.ledgerId, { limit: 1 }))[0];
      if (common === head && latest?.height === head && latest.headHash === (await this.source.hashAt(head))) {
        this.lastBackup = latest;
      } else {
        const parent = common >= 0 ? await this.source.hashAt(common) : null;
        let sent = 0;
        let batch: StoredBlock[] = [];
        let batchParent = parent;
        for await (const b of this.source.read(common + 1, head)) {
          batch.push(b);
          if (batch.length >= CATCH_UP_BATCH) {
            await this.tier.append(this.source.ledgerId, batchParent, batch);
            sent += batch.length;
            batchParent = batch.at(-1)!.hash;
            batch = [];
          }
        }
        const { record, bytesWritten } = await this.tier.append(this.source.ledgerId, batchParent, batch, this.source.autoRecord());
        sent += batch.length;
        if (this.state !== 'ok' || sent > 0) {
          this.options.log.info({ tier: this.tier.name, blocks: sent, height: head }, `${this.options.describe} caught up: sent ${sent} missed blocks, now at block ${head}`);
        }
        this.#logBackup(record!, bytesWritten);
      }
      this.height = head;
      this.state = 'ok';
      this.lastError = undefined;
      this.lastFailure = undefined;
      this.#delay = this.options.retryMs;
      return true;
    } catch (err) {
      this.#fail(err);
      return false;
    }
  }

  // The newest local height whose block the tier holds: a binary search, since a tier holds a prefix of the chain.
  async #newestHeld(head: number): Promise<number> {
    const has = async (h: number) => this.tier.hasBlock(this.source.ledgerId, h, (await this.source.hashAt(h))!);
    if (this.height >= 0 && this.height <= head && (await has(this.height))) {
      if (this.height === head || !(await has(this.height + 1))) return this.height;
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

  #logBackup(record: BackupRecord, bytesWritten: number): void {
    this.lastBackup = record;
    this.options.log.info(
      { tier: this.tier.name, backupId: record.id, backupName: record.name, sizeBytes: record.sizeBytes, blocks: record.height + 1, bytesWritten },
      `Ledger backed up to ${this.options.describe}: Backup ID ${record.id}, Name "${record.name}", Size ${record.sizeBytes} bytes, Blocks ${record.height + 1}`,
    );
  }

  #fail(err: unknown): void {
    const wasOk = this.state === 'ok';
    this.state = 'lagging';
    this.lastError = describeError(err);
    this.lastFailure = err;
    const lag = this.source.headHeight - this.height;
    if (wasOk || this.#delay === this.options.retryMs) {
      this.options.log.warn({ tier: this.tier.name, lag, err: this.lastError },
        `${this.options.describe} backup failed, saves continue locally and it will catch up: ${this.lastError}`);
    }
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer || this.#stopped || this.options.canWrite?.() === false) return;
    const delay = this.#delay * (0.8 + Math.random() * 0.4);
    this.#delay = Math.min(this.#delay * 2, MAX_RETRY_MS);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.options.serial.run(() => this.catchUp());
    }, delay);
    this.#timer.unref();
  }

  /** noteLevel tells the replicator the tier holds the chain up to `height` (a commit whose reply was lost, found there). */
  noteLevel(height: number): void {
    this.height = height;
    this.state = 'ok';
    this.lastError = undefined;
  }

  /** noteBackup tells the replicator about a record written outside it (a restore's marker): the tier is level. */
  noteBackup(record: BackupRecord): void {
    this.lastBackup = record;
    this.height = record.height;
    this.state = 'ok';
    this.lastError = undefined;
  }

  /** stop cancels any scheduled catch-up. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
