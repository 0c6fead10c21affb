import { NotFoundError } from '../errors.js';
import type { SealedCheckpoint } from '../crypto/checkpoints.js';
import type { ChainPage, SealedPack } from '../crypto/packs.js';
import type { StoredBlock } from '../crypto/stored-block.js';
import type { Queryable, SqlClient } from '../db/client.js';
import { fenceSql } from '../db/lease.js';
import { migrate, pendingMigrations } from '../db/migrate.js';
import { branchAfter, lineageRuns } from './postgres-branches.js';
import { checkpointsOn, storeCheckpoint, storedCheckpoint } from './postgres-checkpoints.js';
import { collectBlocks, GC_BATCH_ROWS } from './postgres-gc.js';
import { branchHashAt, heldBetween, locate, locateSql } from './postgres-locate.js';
import { packHeld, storePack } from './postgres-packs.js';
import { readRuns, type Run } from './postgres-read.js';
import { repairBlocks } from './postgres-repair.js';
import { countKeys, resealStep } from './postgres-reseal.js';
import { LeaseFence } from './postgres-fence.js';
import { blockInsert, RECORD_COLUMNS, recordParams, recordPlaceholders, toRecord } from './postgres-rows.js';
import type { BackupTier, Diagnosis, KeyCounts, ResealStep, StoredCheckpoint } from './tier.js';
import type { Sealer } from '../crypto/seal.js';
import type { BackupRecord, NewBackup } from '../crypto/records.js';

/** PostgresTierOptions configure the PostgreSQL tier. */
export interface PostgresTierOptions {
  /** connect makes the SqlClient (node-postgres for DATABASE_URL, or PGlite); called by init(). */
  connect: () => Promise<SqlClient>;
  /** label describes the database, password redacted. */
  label: string;
  /**
   * lease names the writer lease that fences every write (LEDGER_LEASE): appends and records commit only while the
   * token given to setLeaseToken is current, checked by the database in the same statement or transaction.
   */
  lease?: string;
}

interface Tip {
  branch: number;
  height: number;
  hash: string;
}

// Blocks per INSERT statement (5 parameters each, well under PostgreSQL's 65535).
const INSERT_ROWS = 2000;

/**
 * PostgresTier keeps sealed blocks once each, loose in ledger_blocks or compacted in ledger_packs (putPack), backup
 * records in blockchain_backups and checkpoints in ledger_checkpoints, over a real server or PGlite. A save with its
 * record is one statement (one round trip, one commit) when it continues the branch tip this process last wrote;
 * anything else (the first save, a catch-up, a new branch) takes the slow path in a transaction that looks the parent
 * up, loose or packed.
 */
export class PostgresTier implements BackupTier {
  readonly name = 'db';
  readonly keepsBranches = true;
  readonly label: string;
  readonly #connect: () => Promise<SqlClient>;
  #db: SqlClient | null = null;
  readonly #ledgerIds = new Map<string, number>();
  readonly #tips = new Map<string, Tip>();
  readonly #fence: LeaseFence | null;
  /** resealLeft is, per ledger row, what the last reseal step left under other keys (postgres-reseal.ts). */
  readonly #resealLeft = new Map<number, number>();

  constructor(options: PostgresTierOptions) {
    this.#connect = options.connect;
    this.label = options.label;
    this.#fence = options.lease ? new LeaseFence(options.lease, options.label) : null;
  }

  /** leaseName is the writer lease that fences this tier's writes, or null when writes are not fenced. */
  get leaseName(): string | null {
    return this.#fence?.lease ?? null;
  }

  /** setLeaseToken sets the fencing token writes carry (null: this instance holds no lease and writes nothing). */
  setLeaseToken(token: string | null): void {
    this.#fence?.setToken(token);
  }

  /** db is the SQL client, for reads, status and tests; init() must have run. */
  get db(): SqlClient {
    if (!this.#db) throw new Error('PostgresTier.init() has not run');
    return this.#db;
  }

  /**
   * writer is the SQL client for every write outside append (records, retention, repair, IPFS pointers): with the
   * writer lease on, each statement runs in a transaction whose first statement is the fence (LeaseFence.writer), so
   * it commits only while this instance's token is current. Without the lease it is `db` itself.
   */
  get writer(): SqlClient {
    return this.#fence ? this.#fence.writer(this.db) : this.db;
  }

  async init(): Promise<void> {
    await this.migrate();
  }

  /** migrate connects if needed and applies pending migrations; it returns the names it applied. */
  async migrate(): Promise<string[]> {
    this.#db ??= await this.#connect();
    return migrate(this.#db);
  }

  async #ledgerRow(ledgerId: string, q: Queryable, create: boolean): Promise<number | null> {
    const cached = this.#ledgerIds.get(ledgerId);
    if (cached !== undefined) return cached;
    if (create)
      await q.query('INSERT INTO ledgers (genesis_hash) VALUES ($1) ON CONFLICT (genesis_hash) DO NOTHING', [ledgerId]);
    const rows = await q.query<{ id: number }>('SELECT id FROM ledgers WHERE genesis_hash = $1', [ledgerId]);
    if (rows.length === 0) return null;
    const id = Number(rows[0]!.id);
    this.#ledgerIds.set(ledgerId, id);
    return id;
  }

  async hasBlock(ledgerId: string, height: number, hash: string): Promise<boolean> {
    const lid = await this.#ledgerRow(ledgerId, this.db, false);
    if (lid === null) return false;
    return (await locate(this.db, lid, height, hash)) !== null;
  }

  async append(
    ledgerId: string,
    parentHash: string | null,
    blocks: readonly StoredBlock[],
    record?: NewBackup,
  ): Promise<{ bytesWritten: number; record?: BackupRecord }> {
    const tip = this.#tips.get(ledgerId);
    if (
      tip &&
      parentHash === tip.hash &&
      blocks.length > 0 &&
      blocks.length <= INSERT_ROWS &&
      blocks[0]!.height === tip.height + 1
    ) {
      try {
        return await this.#appendFast(tip, ledgerId, blocks, record);
      } catch (err) {
        // Another writer moved the tip (a unique violation) or the connection failed: forget the tip, take the slow path.
        this.#tips.delete(ledgerId);
        if ((err as { code?: string }).code !== '23505') throw err;
      }
    }
    try {
      return await this.writer.transaction((tx) => this.#appendSlow(tx, ledgerId, parentHash, blocks, record));
    } catch (err) {
      // The cached row id and tip may name rows that are gone (tables dropped, then re-created by `pawledger migrate`).
      this.#ledgerIds.delete(ledgerId);
      this.#tips.delete(ledgerId);
      throw err;
    }
  }

  // One statement, one round trip. Fenced, it inserts nothing unless the lease token is current (fenceSql).
  async #appendFast(tip: Tip, ledgerId: string, blocks: readonly StoredBlock[], record?: NewBackup) {
    const lid = this.#ledgerIds.get(ledgerId)!;
    const fence = this.#fence?.params() ?? null;
    const { sql: insertBlocks, params, bytes } = blockInsert(lid, tip.branch, blocks, 1, fence !== null);
    const fenceParams = fence ?? [];
    const withFence = fence ? `fence AS (${fenceSql(params.length + 1, params.length + 2)}), ` : '';
    const onlyFenced = fence ? ' WHERE EXISTS (SELECT 1 FROM fence)' : '';
    let result: BackupRecord | undefined;
    if (record) {
      const n = params.length + fenceParams.length;
      const rows = await this.db.query(
        `WITH ${withFence}b AS (${insertBlocks} RETURNING 1)
         INSERT INTO blockchain_backups (name, filename, backup_data, created_at, created_by, ledger_id, height, head_hash, block_count, size_bytes, kind, chain_root)
         SELECT ${recordPlaceholders(n + 1)}${onlyFenced} RETURNING id`,
        [...params, ...fenceParams, ...recordParams(lid, record)],
      );
      if (rows.length === 0) throw this.#fence!.lost();
      result = { ...record, id: String(rows[0]!.id), tier: this.name, protected: false };
    } else if (fence) {
      const rows = await this.db.query(`WITH ${withFence.slice(0, -2)} ${insertBlocks} RETURNING 1`, [
        ...params,
        ...fenceParams,
      ]);
      if (rows.length === 0) throw this.#fence!.lost();
    } else {
      await this.db.query(insertBlocks, params);
    }
    const last = blocks.at(-1)!;
    this.#tips.set(ledgerId, { branch: tip.branch, height: last.height, hash: last.hash });
    return { bytesWritten: bytes, ...(result ? { record: result } : {}) };
  }

  async #appendSlow(
    tx: Queryable,
    ledgerId: string,
    parentHash: string | null,
    all: readonly StoredBlock[],
    record?: NewBackup,
  ) {
    const lid = (await this.#ledgerRow(ledgerId, tx, true))!;
    // Skip the blocks already held: a catch-up may resend some.
    let blocks = all;
    let parent = parentHash;
    if (blocks.length > 0) {
      const held = await heldBetween(tx, lid, blocks[0]!.height, blocks.at(-1)!.height);
      const heldSet = new Set(held.map((h) => h.hash));
      let skip = 0;
      while (skip < blocks.length && heldSet.has(blocks[skip]!.hash)) skip++;
      if (skip > 0) parent = blocks[skip - 1]!.hash;
      blocks = blocks.slice(skip);
    }
    let bytes = 0;
    let tip: Tip | null = null;
    if (blocks.length > 0) {
      const branch = await branchAfter(tx, lid, parent, blocks[0]!.height, this.label);
      for (let i = 0; i < blocks.length; i += INSERT_ROWS) {
        const chunk = blocks.slice(i, i + INSERT_ROWS);
        const ins = blockInsert(lid, branch, chunk, 1);
        await tx.query(ins.sql, ins.params);
        bytes += ins.bytes;
      }
      const last = blocks.at(-1)!;
      tip = { branch, height: last.height, hash: last.hash };
    }
    let result: BackupRecord | undefined;
    if (record) result = await this.#insertRecord(tx, lid, record);
    if (tip) this.#tips.set(ledgerId, tip);
    return { bytesWritten: bytes, ...(result ? { record: result } : {}) };
  }

  async #insertRecord(q: Queryable, lid: number, record: NewBackup): Promise<BackupRecord> {
    const rows = await q.query(
      `INSERT INTO blockchain_backups (name, filename, backup_data, created_at, created_by, ledger_id, height, head_hash, block_count, size_bytes, kind, chain_root)
       SELECT ${recordPlaceholders(1)}
       WHERE EXISTS (${locateSql('$6::integer', '$7::bigint', "decode($8, 'hex')")})
       RETURNING id`,
      recordParams(lid, record),
    );
    if (rows.length === 0)
      throw new NotFoundError(
        `${this.label} lacks block ${record.height} (${record.headHash.slice(0, 16)}) that the backup names`,
      );
    return { ...record, id: String(rows[0]!.id), tier: this.name, protected: false };
  }

  async putBackup(record: NewBackup): Promise<BackupRecord> {
    return this.writer.transaction(async (tx) => {
      const lid = await this.#ledgerRow(record.ledgerId, tx, false);
      if (lid === null)
        throw new NotFoundError(`${this.label} holds no blocks of ledger ${record.ledgerId.slice(0, 16)}`);
      return this.#insertRecord(tx, lid, record);
    });
  }

  async listBackups(ledgerId?: string, options: { limit?: number } = {}): Promise<BackupRecord[]> {
    const limit = options.limit ?? 1_000_000;
    const rows = ledgerId
      ? await this.db.query(
          `SELECT ${RECORD_COLUMNS} FROM blockchain_backups b JOIN ledgers l ON l.id = b.ledger_id WHERE l.genesis_hash = $1 ORDER BY b.id DESC LIMIT $2`,
          [ledgerId, limit],
        )
      : await this.db.query(
          `SELECT ${RECORD_COLUMNS} FROM blockchain_backups b JOIN ledgers l ON l.id = b.ledger_id ORDER BY b.id DESC LIMIT $1`,
          [limit],
        );
    return rows.map(toRecord);
  }

  async getBackup(id: string): Promise<BackupRecord> {
    if (!/^\d{1,18}$/.test(id)) throw new NotFoundError(`there is no database backup with id ${JSON.stringify(id)}`);
    const rows = await this.db.query(
      `SELECT ${RECORD_COLUMNS} FROM blockchain_backups b JOIN ledgers l ON l.id = b.ledger_id WHERE b.id = $1`,
      [id],
    );
    if (rows.length === 0)
      throw new NotFoundError(`there is no database backup with id ${id}`, {
        hint: 'List them with `pawledger backups list`',
      });
    return toRecord(rows[0]!);
  }

  // The chain of a record as runs of branches, oldest first: the head's branch from its first height, then its
  // parent's below that, down to block 0.
  async #runs(record: BackupRecord): Promise<{ lid: number; runs: Run[] }> {
    const lid = await this.#ledgerRow(record.ledgerId, this.db, false);
    const branch = lid === null ? null : await locate(this.db, lid, record.height, record.headHash);
    if (lid === null || branch === null) {
      throw new NotFoundError(
        `${this.label} no longer holds block ${record.height} (${record.headHash.slice(0, 16)}) of backup ${record.id}`,
      );
    }
    return { lid, runs: await lineageRuns(this.db, lid, branch, record.height, this.label) };
  }

  async hashAt(record: BackupRecord, height: number): Promise<string | null> {
    if (height < 0 || height > record.height) return null;
    const { lid, runs } = await this.#runs(record);
    const run = runs.find((r) => height >= r.from && height <= r.to);
    if (!run) return null;
    return branchHashAt(this.db, lid, run.branch, height);
  }

  /**
   * readChainPages streams the record's chain (from `start` on) as pages of loose blocks and packs, a batch of packs
   * fetched while the caller works on the one before (postgres-read.ts).
   */
  async *readChainPages(record: BackupRecord, start = 0): AsyncGenerator<ChainPage> {
    const { lid, runs } = await this.#runs(record);
    yield* readRuns(
      this.db,
      lid,
      runs,
      start,
      (h) => new NotFoundError(`${this.label} lacks block ${h} of backup ${record.id}`),
    );
  }

  /** putPack stores a pack in one fenced transaction: the pack, the reads of it, and the loose rows it replaces gone. */
  async putPack(ledgerId: string, parentHash: string | null, pack: SealedPack): Promise<{ bytesWritten: number }> {
    try {
      const { bytes, dropped } = await this.writer.transaction(async (tx) =>
        storePack(tx, (await this.#ledgerRow(ledgerId, tx, true))!, parentHash, pack, this.label),
      );
      // The loose rows the pack replaced are dead rows now (see #reclaim).
      if (dropped > 0) await this.#reclaim('ledger_blocks');
      return { bytesWritten: bytes };
    } finally {
      // A catch-up pack may have moved the tip past the one this process last wrote: the next append looks it up.
      this.#tips.delete(ledgerId);
    }
  }

  async hasPack(ledgerId: string, to: number, hash: string): Promise<boolean> {
    const lid = await this.#ledgerRow(ledgerId, this.db, false);
    return lid !== null && packHeld(this.db, lid, to, hash);
  }

  async putCheckpoint(ledgerId: string, cp: SealedCheckpoint): Promise<{ bytesWritten: number }> {
    const { bytes, dropped } = await this.writer.transaction(async (tx) => {
      const lid = await this.#ledgerRow(ledgerId, tx, false);
      if (lid === null) throw new NotFoundError(`${this.label} holds no blocks of ledger ${ledgerId.slice(0, 16)}`);
      return storeCheckpoint(tx, lid, cp, this.label);
    });
    // A checkpoint is the whole world state: each one dropped leaves megabytes of dead rows.
    if (dropped > 0) await this.#reclaim('ledger_checkpoints');
    return { bytesWritten: bytes };
  }

  // The tier deletes in bulk in two places: the loose blocks a pack replaces, and the checkpoints past the newest two.
  // Their room is made reusable at once (VACUUM, outside any transaction), where autovacuum is off or lags: without
  // it, on this machine's server (autovacuum=off), the database after 100k saves held 9.3x the chain, most of it dead
  // rows. A role that may not vacuum leaves it to autovacuum: nothing is lost either way.
  async #reclaim(table: 'ledger_blocks' | 'ledger_checkpoints'): Promise<void> {
    await this.db.query(`VACUUM ${table}`).catch(() => {});
  }

  async checkpointFor(record: BackupRecord): Promise<StoredCheckpoint | null> {
    const { lid, runs } = await this.#runs(record);
    const [newest] = await checkpointsOn(this.db, lid, runs, record.height);
    return newest ? storedCheckpoint(this.db, lid, newest.height, newest.hash) : null;
  }

  async deleteBackups(ids: readonly string[]): Promise<number> {
    const valid = ids.filter((id) => /^\d{1,18}$/.test(id));
    let deleted = 0;
    for (let i = 0; i < valid.length; i += GC_BATCH_ROWS) {
      const rows = await this.writer.query(
        'DELETE FROM blockchain_backups WHERE id = ANY($1::bigint[]) AND NOT protected RETURNING id',
        [valid.slice(i, i + GC_BATCH_ROWS)],
      );
      deleted += rows.length;
    }
    return deleted;
  }

  async setProtected(id: string, on: boolean): Promise<void> {
    const rows = /^\d{1,18}$/.test(id)
      ? await this.writer.query('UPDATE blockchain_backups SET protected = $2 WHERE id = $1 RETURNING id', [id, on])
      : [];
    if (rows.length === 0)
      throw new NotFoundError(`there is no database backup with id ${JSON.stringify(id)}`, {
        hint: 'List them with `pawledger backups list`',
      });
  }

  async collectGarbage(ledgerId: string): Promise<{ blocks: number; bytes: number }> {
    const lid = await this.#ledgerRow(ledgerId, this.db, false);
    if (lid === null) return { blocks: 0, bytes: 0 };
    try {
      // Fenced statement by statement: a writer that lost the lease mid-collection deletes nothing more.
      return await collectBlocks(this.writer, lid);
    } finally {
      // The tip this process last wrote may be gone: the next append takes the slow path, which looks its parent up.
      this.#tips.delete(ledgerId);
    }
  }

  async probe(): Promise<void> {
    this.#db ??= await this.#connect();
    await this.#db.probe();
  }

  /** diagnose connects (over DATABASE_URL's own TLS settings) and brings the schema up to date, as serve would. */
  async diagnose(): Promise<Diagnosis> {
    await this.migrate();
    const pending = await pendingMigrations(this.db);
    if (pending.length > 0)
      return {
        status: 'fail',
        detail: `migrations not applied: ${pending.join(', ')}`,
        fix: 'Run `pawledger migrate`',
      };
    return { status: 'ok', detail: 'reachable, schema up to date' };
  }

  repair(ledgerId: string, blocks: AsyncIterable<StoredBlock>): Promise<number> {
    return repairBlocks(this.writer, ledgerId, blocks);
  }

  /** keyCounts counts the ledger's blocks, packs, checkpoint parts and records by key id, from their headers in SQL. */
  async keyCounts(ledgerId: string): Promise<KeyCounts> {
    const lid = await this.#ledgerRow(ledgerId, this.db, false);
    return lid === null ? {} : countKeys(this.db, lid);
  }

  /**
   * reseal rewrites up to `limit` of the ledger's objects still under another key (postgres-reseal.ts): read in one
   * statement, re-sealed here, swapped in by one fenced transaction that never overwrites a row changed meanwhile.
   */
  async reseal(ledgerId: string, sealer: Sealer, limit: number): Promise<ResealStep> {
    const lid = await this.#ledgerRow(ledgerId, this.db, false);
    if (lid === null) return { resealed: 0, remaining: 0 };
    // An instance without the lease refuses before it reads and decrypts a batch it could never write.
    this.#fence?.params();
    const step = await resealStep(
      this.db,
      this.writer,
      lid,
      ledgerId,
      sealer,
      limit,
      this.label,
      this.#resealLeft.get(lid),
    );
    if (step.remaining === 0) this.#resealLeft.delete(lid);
    else this.#resealLeft.set(lid, step.remaining);
    return step;
  }

  async close(): Promise<void> {
    await this.#db?.close();
    this.#db = null;
    this.#tips.clear();
  }
}
