import { pageShareBytes } from '../crypto/packs.js';
import { BackgroundReplay, type ReplayState } from '../engine/background-replay.js';
import { Checkpointer } from '../engine/checkpointer.js';
import { Compactor } from '../engine/compactor.js';
import { mkdir } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { loadConfig, type Config } from '../config.js';
import { autoBackupName, sealRecord, type BackupKind, type BackupRecord, type NewBackup } from '../crypto/records.js';
import type { Sealer } from '../crypto/seal.js';
import { sealBlock } from '../crypto/sealed-blocks.js';
import type { LedgerCore } from '../engine/core.js';
import { RetentionSchedule, type PruneReport, type PruneTarget } from '../engine/prune.js';
import type { ReplayedChain } from '../engine/replay.js';
import { Replicator, type ReplicaSource } from '../engine/replicator.js';
import { afterRestore, restoredName } from '../engine/restore-service.js';
import { describePolicy, parseRetention, type RetentionPolicy } from '../engine/retention.js';
import { startingChain } from '../engine/startup.js';
import { DegradedError, NotFoundError, PawledgerError, UnavailableError, ValidationError } from '../errors.js';
import { makeBlock } from '../ledger/block.js';
import { parseRegister, parseTransfer, parseUpdate } from '../ledger/transactions.js';
import type { ConsistencyProof, PropertyProof } from '../ledger/proof-verifier.js';
import type { Block, Property, Transaction } from '../ledger/types.js';
import { silentLogger, type Logger } from '../log.js';
import { LocalStore } from '../store/local-store.js';
import { lockDir, type DirLock } from '../store/lock.js';
import { offTiers, openTiers, requireTier, type OpenedTiers } from '../tiers/registry.js';
import { Batcher, type Settled } from '../util/batcher.js';
import { Mutex } from '../util/mutex.js';
import { LogSampler } from '../util/log-sampler.js';
import { BackupOps, type BackupResult, type RestoreResult, type VerifyResult } from './backup-ops.js';
import { ChainReader, subjectOf } from './chain-reads.js';
import { ChainProofs, type ProofsState } from './chain-proofs.js';
import { exportChain, importChain, importedName } from './file-ops.js';
import { resolveSealer } from './key-source.js';
import type { HistoryEntry, LedgerStatus, OpenLedgerOptions, SaveResult, VerifyReport } from './ledger-types.js';
import { LeaseKeeper, lockWriterStatus, type WriterStatus } from './lease-keeper.js';
import { LeasedWrites } from './leased-writes.js';
import { tierStatuses } from './status.js';
import { Assurance, type SaveOutcome } from './assurance.js';
import type { DrillReport } from './drills.js';
import type { RotationReport, Rotator } from '../engine/rotation.js';
import { keyRotation } from './key-rotation.js';

export type {
  HistoryEntry,
  LedgerStatus,
  OpenLedgerOptions,
  SaveResult,
  TierStatus,
  VerifyReport,
} from './ledger-types.js';

/**
 * Ledger is pawledger's service object: the property ledger over its local store, replicated to every configured
 * tier. The CLI, the HTTP server and library users all go through it. Saves are group-committed: each becomes a
 * block, sealed, appended and fsync'd locally, then sent with an automatic backup record to each tier a save waits
 * for before its promise resolves (a tier that fails does not fail the save: it lags and catches up); background
 * tiers catch up a moment later. Saves, catch-ups of those tiers and restores run one at a time in a serial section.
 */
export class Ledger {
  readonly log: Logger;
  readonly #store: LocalStore;
  readonly #sealer: Sealer;
  readonly #lock: DirLock | null;
  readonly #now: () => Date;
  readonly #tiers: OpenedTiers;
  readonly #offTiers: { name: string; hint: string }[];
  readonly #replicators: Replicator[];
  readonly #serial = new Mutex();
  readonly #saves: Batcher<Transaction, SaveResult>;
  readonly #core: LedgerCore;
  readonly #ops: BackupOps;
  readonly #keeper: LeaseKeeper | null;
  readonly #openedAt = new Date();
  readonly #reader: ChainReader;
  /** proofs keeps the chain's accumulator and makes proofs (chain-proofs.ts). */
  readonly #proofs: ChainProofs;
  #chain: ReplayedChain;
  #failed: Error | null = null;
  /** leased is the save path with the writer lease on (database first), else null. */
  readonly #leased: LeasedWrites | null = null;
  #fork: string | null = null;
  readonly #retentionConfig: { policy: RetentionPolicy | null; intervalMs: number };
  #retention: RetentionSchedule | null = null;
  /** restorePlan says what open did when asked to start from a chosen backup (options.restore), else null. */
  restorePlan: RestoreResult | null = null;
  /** replay is the full replay behind a checkpoint the running chain was restored from (engine/background-replay.ts). */
  #replay: BackgroundReplay;
  // Opened by startBackground(): the full replay of the chain opened waits for it (see OpenLedgerOptions).
  #beginBackground: () => void = () => {};
  readonly #background = new Promise<void>((resolve) => (this.#beginBackground = resolve));
  #backgroundStarted = false;
  /** degraded says why writes are refused since a full replay contradicted a checkpoint, until an operator acts. */
  #degraded: { reason: string; since: Date } | null = null;
  /** compactor packs settled blocks of the local store after saves (null: LEDGER_PACK_BYTES=0, or read-only). */
  readonly #compactor: Compactor | null;
  /** checkpointer takes checkpoints of the world state after saves (null: LEDGER_CHECKPOINT_BLOCKS=0, or read-only). */
  readonly #checkpointer: Checkpointer | null;
  /** assurance watches the backups: drills, freshness, the facts metrics and alerts report (assurance.ts). */
  readonly assurance: Assurance;
  /** saveLog keeps the per-save lines readable under load (util/log-sampler.ts). */
  readonly #saveLog: LogSampler;
  /** rotator re-seals what is still under a previous key, in every place, between saves (service/key-rotation.ts). */
  readonly #rotator: Rotator;

  private constructor(init: {
    store: LocalStore;
    sealer: Sealer;
    lock: DirLock | null;
    log: Logger;
    now: () => Date;
    chain: ReplayedChain;
    tiers: OpenedTiers;
    config: Config;
    keeper: LeaseKeeper | null;
    /** lastCheckpoint is the height of the newest checkpoint the local store keeps (-1: none). */
    lastCheckpoint: number;
    readOnly: boolean;
  }) {
    this.#keeper = init.keeper;
    this.#store = init.store;
    this.#sealer = init.sealer;
    this.#lock = init.lock;
    this.log = init.log;
    this.#now = init.now;
    this.#tiers = init.tiers;
    this.#offTiers = offTiers(init.config);
    this.#chain = init.chain;
    this.#replay = this.#replayBehind(init.chain);
    this.#retentionConfig = { policy: init.config.retention, intervalMs: init.config.retentionIntervalMs };
    this.#saves = new Batcher((txs) => this.#serial.run(() => this.#commit(txs)));
    const { log, config } = init;
    const source = this.#replicaSource();
    const options = {
      log,
      serial: this.#serial,
      retryMs: config.retryMs,
      debounceMs: config.ipfsDebounceMs,
      canWrite: () => this.#writable(),
      deadlineMs: config.tierTimeoutMs,
      logSaves: config.logSaves,
      callMs: config.sourceTimeoutMs,
    };
    this.#replicators = init.tiers.entries.map(
      (entry) => new Replicator(entry, source, { ...options, maxRetryMs: entry.role === 'sync' ? 30_000 : 60_000 }),
    );
    this.#core = {
      sealer: this.#sealer,
      store: this.#store,
      log,
      chain: () => this.#chain,
      setChain: (c) => this.#setChain(c),
      exclusive: async (fn) => {
        await this.#saves.idle();
        return this.#serial.run(fn);
      },
      record: async (name, kind, createdBy) => {
        // The head it names, and the root at that head (a save may pass it while the accumulator is made level).
        const { head, sizeBytes } = this.#chain;
        return this.#record(name, kind, createdBy, {
          head,
          sizeBytes,
          root: await this.#proofs.levelRootAt(head.index),
        });
      },
      assertWriter: () => {
        if (!this.#writable()) throw this.#keeper!.refusal();
      },
      now: () => this.#now(),
      replicators: this.#replicators,
      replicator: (name) => {
        requireTier(config, name);
        const r = this.#replicators.find((x) => x.entry.name === name);
        if (!r) throw new UnavailableError(`the ${name} tier is not open in this process`);
        return r;
      },
    };
    this.#ops = new BackupOps(this.#core);
    this.#saveLog = new LogSampler(log, (n) => `Ledger saved to local store: ${n} more flushes`, config.logSaves);
    this.assurance = new Assurance(this.#core, config.assurance, {
      tiers: init.tiers,
      dataDir: resolvePath(config.dataDir),
      stallMs: config.sourceTimeoutMs,
    });
    // Packs and checkpoints are made locally, after saves and beside them, then carried to the tiers by the
    // replicators (a catch-up sends the packs and the newest checkpoint a tier lacks).
    const carry = () => {
      for (const r of this.#replicators) r.notify();
    };
    this.#compactor =
      config.packBytes > 0 && !init.readOnly
        ? new Compactor(
            {
              sealer: this.#sealer,
              log,
              store: this.#store,
              exclusive: (fn) => this.#serial.run(fn),
              onPacked: carry,
              averageBlockBytes: () => this.#chain.sizeBytes / (this.#chain.head.index + 1),
            },
            { packBytes: config.packBytes, keepLoose: config.packKeepLoose },
          )
        : null;
    this.#checkpointer =
      config.checkpointBlocks > 0 && !init.readOnly
        ? new Checkpointer(
            { sealer: this.#sealer, log, store: this.#store, chain: () => this.#chain, onTaken: carry },
            { everyBlocks: config.checkpointBlocks },
            init.lastCheckpoint,
          )
        : null;
    this.#reader = new ChainReader(this.#store, this.#sealer, () => this.#chain);
    this.#proofs = new ChainProofs(this.#store, this.#reader, () => this.#chain, log, init.readOnly);
    this.#rotator = keyRotation({
      sealer: this.#sealer,
      store: this.#store,
      replicators: this.#replicators,
      ledgerId: () => this.#chain.ledgerId,
      writable: () => !init.readOnly && this.#failed === null && this.#writable(),
      serial: (fn) => this.#serial.run(fn),
      log,
      batch: config.rotateBatch,
      retryMs: Math.max(config.retryMs, 5000),
    });
    const leaseReplicator = this.#replicators.find((r) => r.tier === init.tiers.lease);
    if (init.keeper && leaseReplicator) this.#leased = new LeasedWrites(this.#core, init.keeper, leaseReplicator);
  }

  /**
   * open restores the ledger (engine/startup.ts): from the freshest valid copy among every tier's newest backups and
   * the local store, or from the backup or file `options.restore` names, or a new genesis block when nothing holds
   * one. A chain that does not decrypt or verify is never used, and never silently replaced by a genesis block. Tiers
   * a save waits for are caught up before open resolves, the others in the background; after a chosen start every
   * tier records it before open resolves.
   */
  static async open(options: OpenLedgerOptions = {}): Promise<Ledger> {
    const config = options.config ?? loadConfig();
    const log = options.logger ?? silentLogger();
    const now = options.now ?? (() => new Date());
    const dir = resolvePath(config.dataDir);
    const readOnly = options.readOnly ?? false;
    if (options.restore && 'tier' in options.restore) requireTier(config, options.restore.tier);
    if (!readOnly) await mkdir(dir, { recursive: true, mode: 0o700 });
    const lock = readOnly ? null : await lockDir(dir, `the ledger in ${dir}`);
    let tiers: OpenedTiers | null = null;
    let keeper: LeaseKeeper | null = null;
    try {
      const sealer = await resolveSealer(config, log, { generate: !readOnly });
      tiers = readOnly
        ? { entries: [], localPriority: 0, lease: null, close: async () => {} }
        : openTiers(config, { sealer, log });
      // With the writer lease on, take it (or learn who holds it) before restoring: a standby writes to no tier.
      keeper =
        config.lease && tiers.lease
          ? new LeaseKeeper(tiers.lease, { ttlMs: config.leaseTtlMs, followMs: config.followMs, log })
          : null;
      await keeper?.claim();
      // A chosen start writes its record to every tier; a standby could not, and would follow the writer back.
      if (options.restore && keeper && keeper.role !== 'writer') throw keeper.refusal();
      // A damaged store is opened empty, to be replaced by a verified copy from another tier (startup says so).
      const { store, report } = await LocalStore.open(dir, {
        segmentBytes: config.segmentBytes,
        readOnly,
        onDamage: readOnly ? 'throw' : 'report',
      });
      if (report.tornBytes > 0) {
        // The head marker proved the cut record was never acknowledged (open refuses a store that lost one).
        log.info(
          { tornBytes: report.tornBytes },
          `Local store: cut a torn final record (${report.tornBytes} bytes) left by a crash; that save was never acknowledged`,
        );
      }
      const started = performance.now();
      const start = await startingChain({
        store,
        sealer,
        tiers,
        log,
        config,
        now,
        readOnly,
        ...(options.restore ? { restore: options.restore } : {}),
      });
      const lastCheckpoint = (await store.checkpoint())?.height ?? -1;
      const ledger = new Ledger({
        store,
        sealer,
        lock,
        log,
        now,
        chain: start.chain,
        tiers,
        config,
        keeper,
        lastCheckpoint,
        readOnly,
      });
      ledger.restorePlan = start.plan;
      ledger.assurance.startup = { from: start.from, seconds: (performance.now() - started) / 1000 };
      ledger.#fork = start.fork;
      if (start.forced) {
        const name = start.plan
          ? restoredName(start.plan.backupId, start.plan.name)
          : importedName(
              'restore' in options && options.restore && 'file' in options.restore ? options.restore.file : 'file',
            );
        const outcomes = await ledger.#serial.run(() => afterRestore(ledger.#core, name));
        if (ledger.restorePlan) ledger.restorePlan = { ...ledger.restorePlan, tiers: outcomes };
      } else if (ledger.#writable()) {
        await ledger.#serial.run(() => ledger.#healTiers());
      }
      keeper?.start({
        serial: (fn) => ledger.#serial.run(fn),
        follow: () => ledger.#leased!.follow(),
        promoted: () => ledger.#healTiers(),
      });
      if (!options.deferBackground) await ledger.startBackground();
      return ledger;
    } catch (err) {
      await keeper?.release();
      await tiers?.close();
      await lock?.release();
      throw err;
    }
  }

  // The full replay behind a chain restored from a checkpoint (none for a chain replayed in full).
  #replayBehind(chain: ReplayedChain): BackgroundReplay {
    const source = {
      readPages: (from: number, to: number) => this.#store.readPages(from, to),
      current: () => this.#chain === chain,
    };
    const degraded = (reason: string) => {
      if (this.#chain === chain) this.#degraded = { reason, since: this.#now() };
    };
    return new BackgroundReplay(chain, source, this.#sealer, this.log, degraded, this.#background);
  }

  // A new running chain (a restore, following the writer): its own verdict replaces the old chain's, degraded or not.
  #setChain(chain: ReplayedChain): void {
    this.#replay.stop();
    this.#chain = chain;
    this.#degraded = null;
    this.#replay = this.#replayBehind(chain);
    void this.#proofs.start();
  }

  /**
   * maintain packs every settled loose block and takes a checkpoint of the world state now: what saves do in the
   * background when due (LEDGER_PACK_BYTES, LEDGER_CHECKPOINT_BLOCKS). It resolves when both are kept locally; the
   * tiers take them at their next catch-up.
   */
  async maintain(): Promise<void> {
    await this.#compactor?.compactNow();
    await this.#checkpointer?.takeNow();
  }

  /**
   * startBackground starts what follows a start (open does, unless told to defer it): the full replay behind a
   * checkpoint, and bringing the proofs accumulator level. It resolves once the accumulator is level, or once its
   * rebuild is found long (it then goes on in the background); calling it again does nothing more.
   */
  async startBackground(): Promise<void> {
    if (this.#backgroundStarted) return;
    this.#backgroundStarted = true;
    this.#beginBackground();
    // A node file a clean stop left level is ready at once; a long rebuild never delays a start.
    await this.#proofs.start();
  }

  /** replayed resolves when the full replay behind a checkpoint has a verdict (at once when there is none). */
  replayed(): Promise<ReplayState> {
    return this.#replay.done;
  }

  /**
   * clearDegraded lets writes through again on a ledger a full replay marked degraded: the operator's override, after
   * checking. It returns the reason it cleared, or null when the ledger was not degraded.
   */
  clearDegraded(): string | null {
    const was = this.#degraded?.reason ?? null;
    if (was)
      this.log.warn({ reason: was }, `Degraded state cleared by an operator: writes are accepted again (${was})`);
    this.#degraded = null;
    return was;
  }

  // Bring every tier level with the local chain (at open, and when this instance takes the writer lease over): the
  // tiers a save waits for now, the others in the background.
  async #healTiers(): Promise<void> {
    for (const r of this.#replicators) {
      if (r.entry.role === 'async') r.notify(0);
      else if (await r.catchUp())
        this.log.info({ tier: r.entry.name }, `${r.tier.label} detected: auto-backup on every save enabled`);
    }
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
    return this.#timed(() => this.#saves.submit(parseRegister(input, this.#now().toISOString())));
  }

  /** update changes an existing property's name, address or attributes. */
  async update(id: string, input: unknown): Promise<SaveResult> {
    return this.#timed(() => this.#saves.submit(parseUpdate(id, input, this.#now().toISOString())));
  }

  /** transfer moves a property from its current owner (`from`) to `to`. */
  async transfer(id: string, input: unknown): Promise<SaveResult> {
    return this.#timed(() => this.#saves.submit(parseTransfer(id, input, this.#now().toISOString())));
  }

  // A save, measured for metrics and freshness: its duration and how it ended.
  async #timed(save: () => Promise<SaveResult>): Promise<SaveResult> {
    const started = performance.now();
    let outcome: SaveOutcome = 'error';
    try {
      const result = await save();
      outcome = 'ok';
      return result;
    } catch (err) {
      if (err instanceof ValidationError || (err instanceof PawledgerError && err.code === 'CONFLICT'))
        outcome = 'rejected';
      throw err;
    } finally {
      this.assurance.saved((performance.now() - started) / 1000, outcome);
    }
  }

  // One flush of the group commit: each transaction that passes becomes a block; all go in one append and fsync.
  async #commit(txs: Transaction[]): Promise<Settled<SaveResult>[]> {
    if (this.#failed) throw this.#failed;
    if (this.#degraded) throw new DegradedError(`the ledger is degraded, writes are refused: ${this.#degraded.reason}`);
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
    const sizeBytes = sealed.reduce((n, b) => n + b.sealed.length, chain.sizeBytes);
    // Every record carries the root: a save while the accumulator is rebuilt (after a restore) waits for it.
    const root = await this.#proofs.levelRootAfter(encoded.map((e) => e.block.hash));
    const record = this.#record(autoBackupName(this.#now()), 'auto', null, { head: previous, sizeBytes, root });
    // Under the writer lease the database takes the save first: it is acknowledged only once the database holds it,
    // and a standby taking over then misses nothing. Otherwise the local append and the sync tiers' writes run side by
    // side, and the save costs the slower of them, not their sum; after a crash either may hold a block the other
    // lacks, and startup takes the freshest valid copy.
    if (this.#leased) await this.#leased.commit(parentHash, sealed, record);
    const tiers = Promise.all(
      this.#replicators
        .filter((r) => r !== this.#leased?.replicator && r.entry.role === 'sync')
        .map((r) => r.afterSave(parentHash, sealed, record)),
    );
    try {
      const { bytesWritten } = await this.#store.append(chain.ledgerId, sealed).finally(() => tiers);
      for (const [i, e] of encoded.entries()) {
        chain.state.apply(e.block);
        chain.sizeBytes += sealed[i]!.sealed.length;
        // Taken now, not after the batch: a later block in the same batch may change this property again.
        saved.push({ block: e.block, property: chain.state.get(subjectOf(e.block.transactions[0]!))!.property });
      }
      chain.head = previous;
      this.#proofs.appended(encoded.map((e) => e.block.hash));
      this.#saveLog.line(
        { height: previous.index, blocks: encoded.length, bytes: bytesWritten },
        `Ledger saved to local store: block ${previous.index} (${encoded.length} new, ${bytesWritten} bytes, fsync'd)`,
        { height: previous.index, blocks: encoded.length, bytes: bytesWritten },
      );
    } catch (cause) {
      // After a failed write or fsync the file's state is unknown: refuse further saves until a restart re-reads it.
      const committed = this.#keeper ? ' (the database holds this save)' : '';
      this.#failed = new UnavailableError(
        `the local store failed a write${committed}; restart pawledger to re-check it`,
        { cause },
      );
      this.log.error({ err: cause }, `Local store write failed${committed}: saves are refused until restart`);
      // An instance that cannot save must not keep the writer lease from one that can.
      await this.#keeper?.release();
      throw this.#failed;
    }
    await tiers;
    // The tiers that do not hold saves up catch up to the new head a moment later (after it is the head: a catch-up
    // that started before would find the tier level with the old one and stop there).
    for (const r of this.#replicators) if (r.entry.role === 'async') r.notify();
    // Settled blocks become packs and the state a checkpoint, beside later saves, when due.
    this.#compactor?.afterSave();
    this.#checkpointer?.afterSave();
    return results.map((r) =>
      r.ok && 'index' in r ? { ok: true, value: saved[r.index]! } : r,
    ) as Settled<SaveResult>[];
  }

  #replicaSource(): ReplicaSource {
    const ledger = this;
    return {
      get ledgerId() {
        return ledger.#chain.ledgerId;
      },
      get headHeight() {
        return ledger.#chain.head.index;
      },
      hashAt: (h: number) => ledger.#store.hashAt(h),
      readPages: (from: number, to: number) => ledger.#store.readPages(from, to),
      packs: () => ledger.#store.packs(),
      checkpoint: () => ledger.#store.checkpoint(),
      autoRecord: (height?: number) => ledger.#recordAt(height),
      rootAt: (height: number) => ledger.#proofs.levelRootAt(height),
    };
  }

  // An automatic record of the block at `height` (a background tier may catch up to a head saves have since passed).
  async #recordAt(height = this.#chain.head.index): Promise<NewBackup> {
    const { head, sizeBytes, ledgerId } = this.#chain;
    // The root at that height, the accumulator made level first (a save may pass the head meanwhile).
    const root = await this.#proofs.levelRootAt(height);
    if (height === head.index)
      return this.#record(autoBackupName(this.#now()), 'auto', null, { head, sizeBytes, root });
    let size = sizeBytes;
    for await (const page of this.#store.readPages(height + 1, head.index)) size -= pageShareBytes(page);
    const hash = (await this.#store.hashAt(height))!;
    return sealRecord(this.#sealer, {
      ledgerId,
      name: autoBackupName(this.#now()),
      kind: 'auto',
      createdAt: this.#now(),
      createdBy: null,
      height,
      headHash: hash,
      sizeBytes: size,
      root,
    });
  }

  // A sealed backup record of the running head, or of `at` (a head not applied yet: the lease saves to the DB first).
  #record(
    name: string,
    kind: BackupKind,
    createdBy: number | null,
    at: { head: Block; sizeBytes: number; root?: string | undefined } = {
      ...this.#chain,
      root: this.#proofs.rootAfter([]),
    },
  ): NewBackup {
    const { head, sizeBytes, root } = at;
    const { ledgerId } = this.#chain;
    return sealRecord(this.#sealer, {
      ledgerId,
      name,
      kind,
      createdAt: this.#now(),
      createdBy,
      height: head.index,
      headHash: head.hash,
      sizeBytes,
      root,
    });
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

  /**
   * proof proves property `id`'s transactions against the current head, for anyone to check without the key
   * (docs/FORMAT.md, "The chain accumulator and proofs"): up to MAX_PROOF_BLOCKS blocks from the `from`-th of its
   * history; `next` is where the following page starts, or null. UnavailableError while the accumulator is rebuilt.
   */
  proof(
    id: string,
    options: { from?: number; limit?: number } = {},
  ): Promise<{ proof: PropertyProof; next: number | null }> {
    return this.#proofs.proof(id, options.from, options.limit);
  }

  /** consistency proves that the chain at height `from` is a prefix of the chain at height `to`. */
  consistency(from: number, to: number): Promise<ConsistencyProof> {
    return this.#proofs.consistency(from, to);
  }

  /**
   * proofsReady resolves once the accumulator is level with the chain (rebuilt in the background after a restore or
   * an unclean stop), with how many leaves that took hashing from the chain.
   */
  async proofsReady(): Promise<{ state: ProofsState; rebuilt: number }> {
    await this.#proofs.ready();
    return { state: this.#proofs.state, rebuilt: this.#proofs.rebuilt };
  }

  /** status summarizes the ledger and its tiers without touching the disk or the network. */
  status(): LedgerStatus {
    const { ledgerId, head, state } = this.#chain;
    const tiers = tierStatuses({
      store: this.#store,
      failed: this.#failed !== null,
      replicators: this.#replicators,
      localPriority: this.#tiers.localPriority,
      off: this.#offTiers,
    });
    return {
      ledgerId,
      height: head.index,
      headHash: head.hash,
      totalBlocks: state.totalBlocks,
      totalProperties: state.totalProperties,
      keyId: this.#sealer.keyId,
      tiers,
      fork: this.#fork,
      writer: this.#writerStatus(),
      verification: this.#replay.state,
      degraded: this.#degraded ? { reason: this.#degraded.reason, since: this.#degraded.since.toISOString() } : null,
      proofs: { state: this.#proofs.state, root: this.#proofs.rootAfter([]) ?? null },
      assurance: this.assurance.status(),
      keys: this.#rotator.report(),
    };
  }

  #writerStatus(): WriterStatus {
    return this.#keeper?.status() ?? lockWriterStatus(this.#lock !== null, this.#openedAt);
  }

  /** tierNames are the configured tiers, in restore priority order. */
  get tierNames(): string[] {
    return this.#replicators.map((r) => r.entry.name);
  }

  // The tier an operation names, else the first in restore priority order.
  #tierOr(tier: string | undefined): string {
    const name = tier ?? this.#replicators[0]?.entry.name;
    if (!name)
      throw new NotFoundError('no tier is configured besides the local store', {
        hint: 'Set DATABASE_URL, an IPFS provider or LEDGER_BACKUP_DIR',
      });
    return name;
  }

  /** backup records a named backup of the current head in a tier (the first by default), after bringing it level. */
  backup(options: { tier?: string; name: string; adminId?: number | null; protect?: boolean }): Promise<BackupResult> {
    return this.#ops.backup(this.#tierOr(options.tier), options);
  }

  /**
   * restore makes a tier's backup (`id`, or its newest of this ledger) the running ledger, verified in full, and
   * records the restored head in every tier before it resolves; restoring an older backup is a rollback that keeps
   * the newer blocks restorable. dryRun only says what would happen.
   */
  restore(options: { tier?: string; id?: string; dryRun?: boolean } = {}): Promise<RestoreResult> {
    return this.#ops.restore(this.#tierOr(options.tier), options);
  }

  /** listBackups lists a tier's backups (the first tier's by default), newest first: every ledger's unless allLedgers is false. */
  listBackups(options: { tier?: string; limit?: number; allLedgers?: boolean } = {}): Promise<BackupRecord[]> {
    return this.#ops.list(
      this.#tierOr(options.tier),
      options.limit ?? 100,
      options.allLedgers === false ? this.#chain.ledgerId : undefined,
    );
  }

  /** verifyBackup checks a backup end to end (seal, every block, head hash) without restoring it. */
  verifyBackup(options: { tier?: string; backupId?: string } = {}): Promise<VerifyResult> {
    return this.#ops.verify(this.#tierOr(options.tier), options.backupId);
  }

  /** backupToDatabase is the seed's name for backup({ tier: 'db' }). */
  backupToDatabase(options: { name: string; adminId?: number | null; protect?: boolean }): Promise<BackupResult> {
    return this.backup({ ...options, tier: 'db' });
  }

  /** restoreFromDatabase is the seed's name for restore({ tier: 'db', id: backupId }). */
  restoreFromDatabase(options: { backupId?: string; dryRun?: boolean } = {}): Promise<RestoreResult> {
    return this.restore({
      tier: 'db',
      ...(options.backupId ? { id: options.backupId } : {}),
      ...(options.dryRun ? { dryRun: true } : {}),
    });
  }

  /** backupToIpfs is the seed's name for backup({ tier: 'ipfs' }); it returns the manifest's CID, the restore handle. */
  async backupToIpfs(options: { name?: string; adminId?: number | null; protect?: boolean } = {}): Promise<string> {
    const name = options.name ?? `Manual IPFS backup ${this.#now().toISOString().slice(0, 19).replace('T', ' ')}`;
    return (await this.backup({ ...options, name, tier: 'ipfs' })).id;
  }

  /** restoreFromIpfs is the seed's name for restore({ tier: 'ipfs', id: cid }). */
  restoreFromIpfs(cid: string, options: { dryRun?: boolean } = {}): Promise<RestoreResult> {
    return this.restore({ tier: 'ipfs', id: cid, ...(options.dryRun ? { dryRun: true } : {}) });
  }

  /**
   * pruneBackups removes the backups a retention policy does not keep (an object, or LEDGER_RETENTION's syntax such
   * as "keep-last=50,keep-daily=30"), on every tier that is on unless `tier` names one, then frees the objects no
   * remaining backup reaches. The newest backup that verifies and protected backups always stay; dryRun only reports.
   */
  pruneBackups(
    policy: RetentionPolicy | string,
    options: { tier?: PruneTarget; dryRun?: boolean } = {},
  ): Promise<PruneReport> {
    const p = typeof policy === 'string' ? parseRetention(policy, 'the retention policy') : policy;
    return this.#ops.prune(options.tier ?? 'all', p, { dryRun: options.dryRun ?? false });
  }

  /** protectBackup marks a backup protected from pruning (the first tier's by default), or with on false, not. */
  protectBackup(id: string, options: { tier?: string; on?: boolean } = {}): Promise<void> {
    return this.#ops.protect(this.#tierOr(options.tier), id, options.on ?? true);
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
      policy: describePolicy(policy),
      intervalMs,
      firstMs: Math.min(intervalMs, 60_000),
      log: this.log,
    });
    this.#retention.start();
    return true;
  }

  /**
   * drill restores a tier's newest backup (every configured tier's, one after another, without `tier`) into a scratch
   * folder, replays it in full and checks it against what the tier should hold (engine/drill.ts); the verdicts are
   * recorded and the report is ok only if every drill passed. The live store is never touched.
   */
  drill(options: { tier?: string } = {}): Promise<DrillReport> {
    return this.assurance.drills.run(options.tier);
  }

  /** startDrills starts the scheduled drills (LEDGER_DRILL_INTERVAL; the server calls it once it listens). */
  startDrills(): boolean {
    return this.#failed ? false : this.assurance.drills.start();
  }

  /**
   * rotateKey re-seals every object still under a previous key (LEDGER_PREVIOUS_KEYS) with the active key, in the
   * local store and every tier, in bounded steps between saves (engine/rotation.ts), and resolves with where it
   * stands: 'done' when nothing is left under an old key. Killed, it goes on where it was at the next run.
   */
  rotateKey(options: { onProgress?: (report: RotationReport) => void } = {}): Promise<RotationReport> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (!this.#writable()) return Promise.reject(this.#keeper!.refusal());
    return this.#rotator.run(options.onProgress);
  }

  /** keyCounts counts every place's objects by key id now, re-sealing nothing, and says which old keys can go. */
  keyCounts(): Promise<RotationReport> {
    return this.#rotator.count();
  }

  /**
   * startRotation starts the background rotation when the keyring holds previous keys, else counts the objects by
   * key id once in the background (what status shows); the server calls it once it listens.
   */
  startRotation(): boolean {
    if (this.#failed || !this.#writable()) return false;
    if (this.#rotator.start()) return true;
    void this.#rotator.count().catch(() => {});
    return false;
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
    await this.assurance.drills.stop();
    await this.#rotator.stop();
    this.#saveLog.close();
    await this.#saves.idle();
    // A closed ledger holds no lock, so a later save could race another process that took it: refuse them.
    this.#failed ??= new UnavailableError('the ledger is closed');
    // A compaction or checkpoint under way finishes (each is crash-safe, but a clean stop leaves nothing half done).
    await this.#compactor?.idle();
    await this.#checkpointer?.idle();
    this.#replay.stop();
    // Pending background work is not flushed here: it is derived from what each tier lacks at the next start.
    for (const r of this.#replicators) await r.stop();
    await this.#serial.run(async () => {
      await this.#keeper?.release();
      await this.#tiers.close();
      await this.#proofs.close();
      await this.#store.close();
      await this.#lock?.release();
    });
  }
}
