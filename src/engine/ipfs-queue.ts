import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RecordFields } from '../crypto/records.js';
import type { StoredBlock } from '../crypto/stored-block.js';
import type { IpfsTier } from '../tiers/packs/pack-tier.js';
import type { BackupRecord, NewBackup } from '../crypto/records.js';

/** IpfsSource is what the upload queue reads from the ledger's working copy. */
export interface IpfsSource {
  readonly ledgerId: string;
  readonly headHeight: number;
  hashAt(height: number): Promise<string | null>;
  read(from: number, to: number): AsyncIterable<StoredBlock>;
  /** seal makes a backup record's seal for the given fields. */
  seal(fields: RecordFields): NewBackup;
}

const MAX_RETRY_MS = 60_000;
// One upload carries at most this many bytes of blocks: bounded memory whatever the backlog.
const UPLOAD_BYTES = 16 * 1024 * 1024;

/**
 * IpfsQueue uploads the ledger to IPFS in the background. Saves call notify(); at most one upload runs at a time,
 * and saves that arrive meanwhile become one upload after it (a burst is one backup). What to upload is always
 * derived from what IPFS lacks (the newest manifest against the local chain), so after a restart nothing queued is
 * lost, and a failing IPFS never blocks or fails a save: it retries with backoff and shows as lagging.
 */
export class IpfsQueue {
  state: 'ok' | 'lagging' = 'lagging';
  height = -1;
  lastError: string | undefined;
  lastBackup: BackupRecord | undefined;
  #running: Promise<void> | null = null;
  #again = false;
  #timer: NodeJS.Timeout | null = null;
  #delay: number;
  #stopped = false;
  #held: Promise<unknown> | null = null;

  constructor(
    readonly tier: IpfsTier,
    private readonly source: IpfsSource,
    private readonly options: { log: Logger; retryMs: number; debounceMs: number; canWrite?: () => boolean },
  ) {
    this.#delay = options.retryMs;
  }

  /** notify asks for an upload soon (coalescing with any already asked for). */
  notify(delayMs = this.options.debounceMs): void {
    if (this.#stopped) return;
    if (this.#running || this.#held) {
      this.#again = true;
      return;
    }
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (!this.#running && !this.#held) void this.#run();
      else this.#again = true;
    }, delayMs);
    this.#timer.unref();
  }

  /** flush waits for any upload in flight, then runs one that covers every save so far; true when IPFS is level. */
  async flush(): Promise<boolean> {
    while (this.#running || this.#held) await (this.#running ?? this.#held!.catch(() => {}));
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#run();
    return this.state === 'ok' && this.height === this.source.headHeight;
  }

  /**
   * hold runs fn with no upload in flight and none starting until it ends (retention unpins packs an upload could
   * otherwise build on); uploads asked for meanwhile start after it.
   */
  async hold<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#held) await this.#held.catch(() => {});
    const held = (async () => {
      while (this.#running) await this.#running;
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

  #run(): Promise<void> {
    const running = this.#drain().finally(() => {
      if (this.#running === running) this.#running = null;
    });
    this.#running = running;
    return running;
  }

  async #drain(): Promise<void> {
    // An instance that is not the writer (it lost the writer lease) uploads nothing; the writer's uploads cover it.
    if (this.options.canWrite?.() === false) return;
    do {
      this.#again = false;
      try {
        await this.#uploadMissing();
        this.state = 'ok';
        this.lastError = undefined;
        this.#delay = this.options.retryMs;
      } catch (err) {
        const first = this.state === 'ok' || this.lastError === undefined;
        this.state = 'lagging';
        this.lastError = describeError(err);
        if (first) this.options.log.warn({ tier: 'ipfs', err: this.lastError }, `IPFS backup failed; saves continue and it will retry: ${this.lastError}`);
        const delay = this.#delay * (0.5 + Math.random());
        this.#delay = Math.min(this.#delay * 2, MAX_RETRY_MS);
        this.notify(delay);
        return;
      }
    } while (this.#again && !this.#stopped);
  }

  async #uploadMissing(): Promise<void> {
    const { ledgerId } = this.source;
    const head = this.source.headHeight;
    const headHash = (await this.source.hashAt(head))!;
    const latest = await this.tier.latest(ledgerId);
    if (latest && latest.manifest.height === head && latest.manifest.headHash === headHash) {
      this.height = head;
      return;
    }
    // Resume after the newest point IPFS shares with the local chain: its head, else a pack boundary (after a rollback).
    let from = 0;
    let parent: string | null = null;
    let sizeBefore = 0;
    if (latest) {
      const m = latest.manifest;
      if (m.height <= head && (await this.source.hashAt(m.height)) === m.headHash) {
        from = m.height + 1;
        parent = m.headHash;
        sizeBefore = m.sizeBytes;
      } else {
        for (const p of [...m.packs].reverse()) {
          // Strictly below the head: at least one block is re-sent, so the new manifest becomes the head (a rollback
          // onto a pack boundary must still move the pointers back, or the next start would undo it).
          if (p.to < head && (await this.source.hashAt(p.to)) === p.lastHash) {
            from = p.to + 1;
            parent = p.lastHash;
            for await (const b of this.source.read(0, p.to)) sizeBefore += b.sealed.length;
            break;
          }
        }
      }
    }
    let batch: StoredBlock[] = [];
    let bytes = 0;
    const send = async (final: boolean) => {
      const last = batch.at(-1)!;
      sizeBefore += batch.reduce((n, b) => n + b.sealed.length, 0);
      const record = this.source.seal({
        ledgerId, name: `Auto-backup ${new Date().toISOString().slice(0, 19).replace('T', ' ')}`, kind: 'auto', createdAt: new Date(),
        createdBy: null, height: last.height, headHash: last.hash, sizeBytes: sizeBefore,
      });
      const r = await this.tier.append(ledgerId, parent, batch, record);
      parent = last.hash;
      this.height = last.height;
      this.lastBackup = r.record;
      if (final) {
        this.options.log.info({ tier: 'ipfs', cid: r.record.id, height: last.height, bytesWritten: r.bytesWritten },
          `Ledger backed up to IPFS: CID ${r.record.id}, Blocks ${last.height + 1}, uploaded ${r.bytesWritten} bytes`);
      }
      batch = [];
      bytes = 0;
    };
    for await (const b of this.source.read(from, head)) {
      batch.push(b);
      bytes += b.sealed.length;
      if (bytes >= UPLOAD_BYTES) await send(false);
    }
    if (batch.length > 0) await send(true);
  }

  /**
   * stop cancels scheduled uploads and gives one in flight up to `graceMs` to finish. One cut short loses nothing:
   * the next start derives the work again from what IPFS lacks.
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
