import { mkdir } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { loadConfig, type Config } from '../config.js';
import { resolveKey } from './key-source.js';
import { Sealer } from '../crypto/seal.js';
import { IpfsQueue } from '../engine/ipfs-queue.js';
import { startingChain } from '../engine/startup.js';
import { Replicator } from '../engine/replicator.js';
import { describePolicy, parseRetention, type RetentionPolicy } from '../engine/retention.js';
import { UnavailableError } from '../errors.js';
import { makeBlock } from '../ledger/block.js';
import { parseRegister, parseTransfer, parseUpdate } from '../ledger/transactions.js';
import type { Block, Property, Transaction } from '../ledger/types.js';
import { silentLogger, type Logger } from '../log.js';
import { LocalStore } from '../store/local-store.js';
import { lockDir, type DirLock } from '../store/lock.js';
import type { IpfsTier } from '../tiers/packs/pack-tier.js';
import { openTiers } from '../tiers/open.js';
import type { PostgresTier } from '../tiers/postgres.js';
import type { BackupRecord, NewBackup } from '../crypto/records.js';
import { BackupOps, type BackupResult, type LedgerCore, type RestorePlan, type TierName } from './backup-ops.js';
import { exportChain, importChain } from './file-ops.js';
import { autoBackupName, sealRecord, type RecordFields } from '../crypto/records.js';
import { Batcher, type Settled } from '../util/batcher.js';
import type { HistoryEntry, LedgerStatus, OpenLedgerOptions, SaveResult, TierStatus, VerifyReport } from './ledger-types.js';
import { LeaseKeeper, lockWriterStatus, type WriterStatus } from './lease-keeper.js';
import { LeasedWrites } from './leased-writes.js';
import { ChainReader, subjectOf } from './chain-reads.js';
import { Mutex } from '../util/mutex.js';
import { RetentionSchedule, type PruneReport, type PruneTarget } from '../engine/prune.js';
import type { ReplayedChain } from '../engine/replay.js';
import { sealBlock } from '../crypto/sealed-blocks.js';

export type { HistoryEntry, LedgerStatus, OpenLedgerOptions, SaveResult, TierStatus, VerifyReport } from './ledger-types.js';

/**
 * Ledger is pawledger's service object: the property ledger over its local store, replicated to the database tier.
 * The CLI, the HTTP server and library users all go through it. Saves are group-committed: each becomes a block,
 * sealed, appended and fsync'd locally, then sent with an automatic backup record to the database before its promise
 * resolves (a database that fails does not fail the save: it lags and catches up). Saves, catch-ups and restores
 * run one at a time in a serial section.
 */
export class Ledger {
  readonly log: Logger;
  readonly #store: LocalStore;
  readonly #sealer: Sealer;
  readonly #lock: DirLock | null;
  readonly #now: () => Date;
  readonly #db: PostgresTier | null;
  readonly #ipfs: IpfsTier | null;
  readonly #replicators: Replicator[] = [];
  readonly #queue: IpfsQueue | null = null;
  readonly #serial = new Mutex();
  readonly #saves: Batcher<Transaction, SaveResult>;
  readonly #core: LedgerCore;
  readonly #ops: BackupOps;
  readonly #keeper: LeaseKeeper | null;
  readonly #openedAt = new Date();
  readonly #reader: ChainReader;
  #chain: ReplayedChain;
  #failed: Error | null = null;
  /** leased is the save path with the writer lease on (database first), else null. */
  readonly #leased: LeasedWrites | null = null;
  #fork: string | null = null;
  readonly #retentionConfig: { policy: RetentionPolicy | null; intervalMs: number };
  #retention: RetentionSchedule | null = null;
  /** restorePlan says what open did when asked to start from a chosen backup (options.restore), else null. */
  restorePlan: RestorePlan | null = null;

  private constructor(init: {
    store: LocalStore; sealer: Sealer; lock: DirLock | null; log: Logger; now: () => Date; chain: ReplayedChain;
    db: PostgresTier | null; ipfs: IpfsTier | null; config: Config; keeper: LeaseKeeper | null;
  }) {
    this.#keeper = init.keeper;
    this.#store = init.store;
    this.#sealer = init.sealer;
    this.#lock = init.lock;
    this.log = init.log;
    this.#now = init.now;
    this.#db = init.db;
    this.#ipfs = init.ipfs;
    this.#chain = init.chain;
    this.#retentionConfig = { policy: init.config.retention, intervalMs: init.config.retentionIntervalMs };
    this.#saves = new Batcher((txs) => this.#serial.run(() => this.#commit(txs)));
    const { log, config } = init;
    if (init.db) {
      const describe = init.db.label.startsWith('PGlite') ? 'embedded database' : 'database';
      const canWrite = () => this.#writable();
      this.#replicators.push(new Replicator(init.db, this.#replicaSource(), { log, serial: this.#serial, retryMs: config.retryMs, describe, canWrite }));
    }
    if (init.ipfs) {
      // Not a spread of #replicaSource(): that would freeze its getters (ledgerId, headHeight) at their current values.
      const source = Object.assign(this.#replicaSource(), { seal: (fields: RecordFields) => sealRecord(this.#sealer, fields) });
      this.#queue = new IpfsQueue(init.ipfs, source, { log, retryMs: config.retryMs, debounceMs: config.ipfsDebounceMs, canWrite: () => this.#writable() });
    }
    const ledger = this;
    this.#core = {
      sealer: this.#sealer,
      store: this.#store,
      log,
      chain: () => ledger.#chain,
      setChain: (c) => (ledger.#chain = c),
      exclusive: async (fn) => {
        await ledger.#saves.idle();
        return ledger.#serial.run(fn);
      },
      record: (name, kind, createdBy) => ledger.#record(name, kind, createdBy),
      assertWriter: () => {
        if (!ledger.#writable()) throw ledger.#keeper!.refusal();
      },
      now: () => ledger.#now(),
      tiers: {
        db: init.db ? { tier: init.db, replicator: this.#replicators[0]! } : null,
        ipfs: init.ipfs ? { tier: init.ipfs, queue: this.#queue! } : null,
      },
    };
    this.#ops = new BackupOps(this.#core);
    this.#reader = new ChainReader(this.#store, this.#sealer, () => this.#chain);
    if (init.keeper) this.#leased = new LeasedWrites(this.#core, init.keeper, this.#replicators[0]!);
  }

  /**
   * open restores the ledger: from the freshest valid of the database's newest backup, IPFS's newest backup and the
   * local store, or a new genesis block when none holds one. A chain that does not decrypt or verify is never used,
   * and never silently replaced by a genesis block. Tiers that lag are caught up (the database before open resolves,
   * IPFS in the background).
   */
  static async open(options: OpenLedgerOptions = {}): Promise<Ledger> {
    const config = options.config ?? loadConfig();
    const log = options.logger ?? silentLogger();
    const now = options.now ?? (() => new Date());
    const dir = resolvePath(config.dataDir);
    if (!options.readOnly) await mkdir(dir, { recursive: true, mode: 0o700 });
    const lock = options.readOnly ? null : await lockDir(dir, `the ledger in ${dir}`);
    let tiers: { db: PostgresTier | null; ipfs: IpfsTier | null } = { db: null, ipfs: null };
    let keeper: LeaseKeeper | null = null;
    try {
      const sealer = new Sealer(await resolveKey(config, log, { generate: !options.readOnly }));
      if (!options.readOnly) tiers = openTiers(config, sealer, log);
      // With the writer lease on, take it (or learn who holds it) before restoring: a standby writes to no tier.
      keeper = config.lease && tiers.db ? new LeaseKeeper(tiers.db, { ttlMs: config.leaseTtlMs, followMs: config.followMs, log }) : null;
      await keeper?.claim();
      // A chosen restore writes its marker to the database; a standby could not, and would follow the writer back.
      if (options.restore && keeper && keeper.role !== 'writer') throw keeper.refusal();
      // A damaged store is opened empty, to be replaced by a verified copy from another tier (startup says so).
      const readOnly = options.readOnly ?? false;
      const { store, report } = await LocalStore.open(dir, { segmentBytes: config.segmentBytes, readOnly, onDamage: readOnly ? 'throw' : 'report' });
      if (report.tornBytes > 0) {
        // The head marker proved the cut record was never acknowledged (open refuses a store that lost one).
        log.info({ tornBytes: report.tornBytes }, `Local store: cut a torn final record (${report.tornBytes} bytes) left by a crash; that save was never acknowledged`);
      }
      const start = await startingChain({ store, sealer, tiers, log, config, now, readOnly: options.readOnly ?? false, ...(options.restore ? { restore: options.restore } : {}) });
      const chain = start.chain;
      const ledger = new Ledger({ store, sealer, lock, log, now, chain, ...tiers, config, keeper });
      ledger.restorePlan = start.plan;
      ledger.#fork = start.fork;
      if (ledger.#writable()) await ledger.#serial.run(() => ledger.#healTiers());
      keeper?.start({ serial: (fn) => ledger.#serial.run(fn), follow: () => ledger.#leased!.follow(), promoted: () => ledger.#healTiers() });
      return ledger;
    } catch (err) {
      await keeper?.release();
      await tiers.db?.close().catch(() => {});
      await tiers.ipfs?.close().catch(() => {});
      await lock?.release();
      throw err;
    }
  }

  // Bring every remote tier level with the local chain (at open, and when this instance takes the writer lease over).
  async #healTiers(): Promise<void> {
    for (const r of this.#replicators) {
      if (await r.catchUp()) this.log.info({ tier: r.tier.name }, `${r.tier.label} detected: auto-backup on every save enabled`);
    }
    this.#queue?.notify(0);
  }

  // May this instance write the tiers? Always, unless the writer lease is on and another instance holds it.
  #writable(): boolean {
    return !this.#keeper || this.#keeper.role === 'writer';
  }

  /** ledgerId is the hash of the genesis block: the ledger's identity in every tier. */
  get ledgerId(): string {
    return this.#chain.ledgerId;
  }

  /** head is the last saved block. */
  get head(): Block {
    return this.#chain.head;
  }

  /** register adds a new property. Input is checked field by field (ValidationError names the field). */
  async register(input: unknown): Promise<SaveResult> {
    return this.#saves.submit(parseRegister(input, this.#now().toISOString()));
  }

  /** update changes an existing property's name, address or attributes. */
  async update(id: string, input: unknown): Promise<SaveResult> {
    return this.#saves.submit(parseUpdate(id, input, this.#now().toISOString()));
  }

  /** transfer moves a property from its current owner (`from`) to `to`. */
  async transfer(id: string, input: unknown): Promise<SaveResult> {
    return this.#saves.submit(parseTransfer(id, input, this.#now().toISOString()));
  }

  // One flush of the group commit: each transaction that passes becomes a block; all go in one append and fsync.
  async #commit(txs: Transaction[]): Promise<Settled<SaveResult>[]> {
    if (this.#failed) throw this.#failed;
    await this.#leased?.beforeSave();
    const chain = this.#chain;
    const results: (Settled<SaveResult> | { ok: true; index: number })[] = [];
    const accepted: Transaction[] = [];
    const encoded = [];
    let previous = chain.head;
    for (const tx of txs) {
      try {
        chain.state.check([...accepted, tx]);
      } catch (error) {
        results.push({ ok: false, error });
        continue;
      }
      accepted.push(tx);
      const enc = makeBlock(previous, [tx], this.#now().toISOString());
      results.push({ ok: true, index: encoded.length });
      encoded.push(enc);
      previous = enc.block;
    }
    if (encoded.length === 0) return results as Settled<SaveResult>[];
    const sealed = encoded.map((e) => sealBlock(this.#sealer, chain.ledgerId, e));
    const parentHash = chain.head.hash;
    const saved: SaveResult[] = [];
    if (this.#leased) {
      const sizeBytes = sealed.reduce((n, b) => n + b.sealed.length, chain.sizeBytes);
      await this.#leased.commit(parentHash, sealed, this.#record(autoBackupName(this.#now()), 'auto', null, { head: previous, sizeBytes }));
    }
    try {
      const { bytesWritten } = await this.#store.append(chain.ledgerId, sealed);
      for (const [i, e] of encoded.entries()) {
        chain.state.apply(e.block);
        chain.sizeBytes += sealed[i]!.sealed.length;
        // Taken now, not after the batch: a later block in the same batch may change this property again.
        saved.push({ block: e.block, property: chain.state.get(subjectOf(e.block.transactions[0]!))!.property });
      }
      chain.head = previous;
      this.log.info({ height: previous.index, blocks: encoded.length, bytes: bytesWritten },
        `Ledger saved to local store: block ${previous.index} (${encoded.length} new, ${bytesWritten} bytes, fsync'd)`);
    } catch (cause) {
      // After a failed write or fsync the file's state is unknown: refuse further saves until a restart re-reads it.
      const committed = this.#keeper ? ' (the database holds this save)' : '';
      this.#failed = new UnavailableError(`the local store failed a write${committed}; restart pawledger to re-check it`, { cause });
      this.log.error({ err: cause }, `Local store write failed${committed}: saves are refused until restart`);
      // An instance that cannot save must not keep the writer lease from one that can.
      await this.#keeper?.release();
      throw this.#failed;
    }
    if (!this.#keeper) for (const r of this.#replicators) await r.replicate(parentHash, sealed);
    this.#queue?.notify();
    return results.map((r) => (r.ok && 'index' in r ? { ok: true, value: saved[r.index]! } : r)) as Settled<SaveResult>[];
  }

  #replicaSource() {
    const ledger = this;
    return {
      get ledgerId() { return ledger.#chain.ledgerId; },
      get headHeight() { return ledger.#chain.head.index; },
      hashAt: (h: number) => ledger.#store.hashAt(h),
      read: (from: number, to: number) => ledger.#store.read(from, to),
      autoRecord: (): NewBackup => ledger.#record(autoBackupName(ledger.#now()), 'auto', null),
    };
  }

  // A sealed backup record of the running head, or of `at` (a head not applied yet: the lease saves to the DB first).
  #record(name: string, kind: 'auto' | 'manual', createdBy: number | null, at: { head: Block; sizeBytes: number } = this.#chain): NewBackup {
    const { head, sizeBytes } = at;
    const { ledgerId } = this.#chain;
    return sealRecord(this.#sealer, { ledgerId, name, kind, createdAt: this.#now(), createdBy, height: head.index, headHash: head.hash, sizeBytes });
  }

  /** properties lists every property's current state, sorted by id. */
  properties(): Property[] {
    return this.#chain.state.list();
  }

  /** property returns a property's current state and its history, oldest first. */
  async property(id: string): Promise<{ property: Property; history: HistoryEntry[] }> {
    const history = await this.#reader.history(id);
    return { property: this.#chain.state.get(id)!.property, history };
  }

  /** chain returns up to `limit` blocks (at most 1000) starting at height `from`. */
  async chain(from = 0, limit = 100): Promise<Block[]> {
    return this.#reader.blocks(from, limit);
  }

  /** verify re-reads the whole stored chain and checks every block; it reports the first bad one and why. */
  async verify(): Promise<VerifyReport> {
    return this.#reader.verify();
  }

  /** status summarizes the ledger and its tiers without touching the disk or the network. */
  status(): LedgerStatus {
    const { ledgerId, head, state } = this.#chain;
    const tiers: TierStatus[] = [{ name: 'local', state: this.#failed ? 'down' : 'ok', height: this.#store.height, detail: this.#store.dir }];
    for (const r of this.#replicators) {
      tiers.push({ name: r.tier.name, state: r.state, height: r.height, detail: r.lastError ? `${r.tier.label}: ${r.lastError}` : r.tier.label });
    }
    const q = this.#queue;
    if (q) {
      const detail = [q.tier.label, q.lastBackup ? `newest CID ${q.lastBackup.id}` : '', q.lastError ?? ''].filter(Boolean).join(': ');
      tiers.push({ name: 'ipfs', state: q.state === 'ok' && q.height === head.index ? 'ok' : 'lagging', height: q.height, detail });
    }
    return { ledgerId, height: head.index, headHash: head.hash, totalBlocks: state.totalBlocks, totalProperties: state.totalProperties, keyId: this.#sealer.keyId, tiers, fork: this.#fork, writer: this.#writerStatus() };
  }

  #writerStatus(): WriterStatus {
    return this.#keeper?.status() ?? lockWriterStatus(this.#lock !== null, this.#openedAt);
  }

  /** backupToDatabase records a named backup of the current head in the database (the seed's name for it). */
  backupToDatabase(options: { name: string; adminId?: number | null; protect?: boolean }): Promise<BackupResult> {
    return this.#ops.backup('db', options);
  }

  /** restoreFromDatabase restores the newest database backup of this ledger, or backupId (see BackupOps.restore). */
  restoreFromDatabase(options: { backupId?: string; dryRun?: boolean } = {}): Promise<RestorePlan> {
    return this.#ops.restore('db', { ...(options.backupId ? { id: options.backupId } : {}), dryRun: options.dryRun ?? false });
  }

  /** backupToIpfs uploads what IPFS lacks and a manifest, and returns the manifest's CID: the restore handle. */
  async backupToIpfs(options: { name?: string; adminId?: number | null; protect?: boolean } = {}): Promise<string> {
    return (await this.#ops.backup('ipfs', { name: options.name ?? `Manual IPFS backup ${this.#now().toISOString().slice(0, 19).replace('T', ' ')}`, adminId: options.adminId ?? null, protect: options.protect ?? false })).id;
  }

  /** restoreFromIpfs restores the backup whose manifest has this CID. */
  restoreFromIpfs(cid: string, options: { dryRun?: boolean } = {}): Promise<RestorePlan> {
    return this.#ops.restore('ipfs', { id: cid, dryRun: options.dryRun ?? false });
  }

  /** listBackups lists a tier's backups (the database's by default), newest first: every ledger's unless allLedgers is false. */
  listBackups(options: { tier?: TierName; limit?: number; allLedgers?: boolean } = {}): Promise<BackupRecord[]> {
    return this.#ops.list(options.tier ?? 'db', options.limit ?? 100, options.allLedgers === false ? this.#chain.ledgerId : undefined);
  }

  /** verifyBackup checks a backup end to end (seal, every block, head hash) without restoring it. */
  verifyBackup(options: { tier?: TierName; backupId?: string } = {}): Promise<VerifyReport & { backupId?: string }> {
    return this.#ops.verify(options.tier ?? 'db', options.backupId);
  }

  /**
   * pruneBackups removes the backups a retention policy does not keep (an object, or LEDGER_RETENTION's syntax such
   * as "keep-last=50,keep-daily=30"), on every tier that is on unless `tier` names one, then frees the blocks no
   * remaining backup reaches. The newest backup that verifies and protected backups always stay; dryRun only reports.
   */
  pruneBackups(policy: RetentionPolicy | string, options: { tier?: PruneTarget; dryRun?: boolean } = {}): Promise<PruneReport> {
    const p = typeof policy === 'string' ? parseRetention(policy, 'the retention policy') : policy;
    return this.#ops.prune(options.tier ?? 'all', p, { dryRun: options.dryRun ?? false });
  }

  /** protectBackup marks a backup protected from pruning (the database's by default), or with on false, not. */
  protectBackup(id: string, options: { tier?: TierName; on?: boolean } = {}): Promise<void> {
    return this.#ops.protect(options.tier ?? 'db', id, options.on ?? true);
  }

  /**
   * startRetention starts pruning by LEDGER_RETENTION every LEDGER_RETENTION_INTERVAL_MS (the server calls it once
   * it listens); close() stops it. It returns false, and does nothing, without a policy.
   */
  startRetention(): boolean {
    const { policy, intervalMs } = this.#retentionConfig;
    if (!policy || this.#retention || this.#failed) return false;
    // A standby prunes nothing: only the lease holder writes the tiers.
    this.#retention = new RetentionSchedule(() => this.#ops.prune('all', policy, { dryRun: !this.#writable() }), {
      policy: describePolicy(policy), intervalMs, firstMs: Math.min(intervalMs, 60_000), log: this.log,
    });
    this.#retention.start();
    return true;
  }

  /**
   * exportTo writes the whole chain as one sealed file, atomically. An existing file is replaced only with `force`,
   * and nothing that is not a regular file ever is (ConflictError, ValidationError).
   */
  exportTo(path: string, options: { force?: boolean } = {}): Promise<{ bytes: number; totalBlocks: number }> {
    return exportChain(this.#core, path, options.force ?? false);
  }

  /** importFrom verifies an export file in full and makes it the ledger (refused unless it extends it, or force). */
  importFrom(path: string, options: { force?: boolean } = {}): Promise<{ totalBlocks: number }> {
    return importChain(this.#core, path, options.force ?? false);
  }

  /** close finishes in-flight saves, stops catch-ups, closes files and connections and releases the write lock. */
  async close(): Promise<void> {
    // Renewals go on until the lease is released below, after the last save; a standby stops following now.
    this.#keeper?.stopFollowing();
    await this.#retention?.stop();
    await this.#saves.idle();
    // A closed ledger holds no lock, so a later save could race another process that took it: refuse them.
    this.#failed ??= new UnavailableError('the ledger is closed');
    // Pending IPFS work is not flushed here: it is derived from what IPFS lacks at the next start.
    await this.#queue?.stop();
    await this.#serial.run(async () => {
      for (const r of this.#replicators) r.stop();
      await this.#keeper?.release();
      await this.#db?.close().catch(() => {});
      await this.#ipfs?.close().catch(() => {});
      await this.#store.close();
      await this.#lock?.release();
    });
  }
}
