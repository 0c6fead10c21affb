import { NotFoundError } from '../errors.js';
import type { ChainPage } from '../crypto/packs.js';
import type { StoredBlock } from '../crypto/stored-block.js';
import type { Queryable, SqlClient } from '../db/client.js';
import { fenceSql } from '../db/lease.js';
import { migrate, pendingMigrations } from '../db/migrate.js';
import { collectBlocks, GC_BATCH_ROWS } from './postgres-gc.js';
import { repairBlocks } from './postgres-repair.js';
import { LeaseFence } from './postgres-fence.js';
import { blockInsert, RECORD_COLUMNS, recordParams, recordPlaceholders, toBuffer, toRecord } from './postgres-rows.js';
import type { BackupTier, Diagnosis } from './tier.js';
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

// Rows per page when reading a chain: a few MB per round trip, bounded memory for any chain length.
const PAGE_ROWS = 5000;
// Blocks per INSERT statement (5 parameters each, well under PostgreSQL's 65535).
const INSERT_ROWS = 2000;

/**
 * PostgresTier keeps sealed blocks once each in ledger_blocks and backup records in blockchain_backups, over a real
 * server or PGlite. A save with its record is one statement (one round trip, one commit) when it continues the
 * branch tip this process last wrote; anything else (the first save, a catch-up, a new branch) takes the slow path
 * in a transaction that looks the parent up.
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
    const rows = await this.db.query('SELECT 1 FROM ledger_blocks WHERE ledger_id = $1 AND hash = $2 AND height = $3', [
      lid,
      Buffer.from(hash, 'hex'),
      height,
    ]);
    return rows.length > 0;
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
      const held = await tx.query<{ hash: Uint8Array }>(
        'SELECT hash FROM ledger_blocks WHERE ledger_id = $1 AND height BETWEEN $2 AND $3',
        [lid, blocks[0]!.height, blocks.at(-1)!.height],
      );
      const heldSet = new Set(held.map((h) => toBuffer(h.hash).toString('hex')));
      let skip = 0;
      while (skip < blocks.length && heldSet.has(blocks[skip]!.hash)) skip++;
      if (skip > 0) parent = blocks[skip - 1]!.hash;
      blocks = blocks.slice(skip);
    }
    let bytes = 0;
    let tip: Tip | null = null;
    if (blocks.length > 0) {
      const branch = await this.#branchAfter(tx, lid, parent, blocks[0]!.height);
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

  // The branch a block at `height` following `parent` belongs to: the parent's own branch if the parent is its tip,
  // else a new branch forking there. A missing parent is NotFoundError: the caller must send the missing blocks first.
  async #branchAfter(tx: Queryable, lid: number, parent: string | null, height: number): Promise<number> {
    if (parent === null) {
      const roots = await tx.query<{ branch: number }>(
        'SELECT branch FROM ledger_branches WHERE ledger_id = $1 AND first_height = 0',
        [lid],
      );
      if (roots.length > 0) return newBranch(tx, lid, null, 0);
      await tx.query(
        'INSERT INTO ledger_branches (ledger_id, branch, parent_branch, first_height) VALUES ($1, 1, NULL, 0)',
        [lid],
      );
      return 1;
    }
    const rows = await tx.query<{ branch: number; height: number }>(
      'SELECT branch, height FROM ledger_blocks WHERE ledger_id = $1 AND hash = $2',
      [lid, Buffer.from(parent, 'hex')],
    );
    const p = rows[0];
    if (!p || Number(p.height) !== height - 1) {
      throw new NotFoundError(
        `${this.label} lacks block ${height - 1} (${parent.slice(0, 16)}) that block ${height} follows`,
      );
    }
    const next = await tx.query('SELECT 1 FROM ledger_blocks WHERE ledger_id = $1 AND branch = $2 AND height = $3', [
      lid,
      Number(p.branch),
      height,
    ]);
    if (next.length === 0) return Number(p.branch);
    return newBranch(tx, lid, Number(p.branch), height);
  }

  async #insertRecord(q: Queryable, lid: number, record: NewBackup): Promise<BackupRecord> {
    const rows = await q.query(
      `INSERT INTO blockchain_backups (name, filename, backup_data, created_at, created_by, ledger_id, height, head_hash, block_count, size_bytes, kind, chain_root)
       SELECT ${recordPlaceholders(1)}
       WHERE EXISTS (SELECT 1 FROM ledger_blocks WHERE ledger_id = $6 AND hash = decode($8, 'hex') AND height = $7)
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
  async #runs(record: BackupRecord): Promise<{ lid: number; runs: { branch: number; from: number; to: number }[] }> {
    const lid = await this.#ledgerRow(record.ledgerId, this.db, false);
    const head =
      lid === null
        ? []
        : await this.db.query<{ branch: number }>(
            'SELECT branch FROM ledger_blocks WHERE ledger_id = $1 AND hash = $2 AND height = $3',
            [lid, Buffer.from(record.headHash, 'hex'), record.height],
          );
    if (lid === null || head.length === 0) {
      throw new NotFoundError(
        `${this.label} no longer holds block ${record.height} (${record.headHash.slice(0, 16)}) of backup ${record.id}`,
      );
    }
    const branches = new Map<number, { parent: number | null; first: number }>();
    for (const b of await this.db.query(
      'SELECT branch, parent_branch, first_height FROM ledger_branches WHERE ledger_id = $1',
      [lid],
    )) {
      branches.set(Number(b.branch), {
        parent: b.parent_branch === null ? null : Number(b.parent_branch),
        first: Number(b.first_height),
      });
    }
    const runs: { branch: number; from: number; to: number }[] = [];
    let branch: number | null = Number(head[0]!.branch);
    let to = record.height;
    while (branch !== null) {
      const b = branches.get(branch);
      if (!b) throw new NotFoundError(`${this.label} lacks branch ${branch} of ledger ${record.ledgerId.slice(0, 16)}`);
      runs.unshift({ branch, from: b.first, to });
      to = b.first - 1;
      branch = b.parent;
    }
    return { lid, runs };
  }

  async hashAt(record: BackupRecord, height: number): Promise<string | null> {
    if (height < 0 || height > record.height) return null;
    const { lid, runs } = await this.#runs(record);
    const run = runs.find((r) => height >= r.from && height <= r.to);
    if (!run) return null;
    const rows = await this.db.query<{ hash: Uint8Array }>(
      'SELECT hash FROM ledger_blocks WHERE ledger_id = $1 AND branch = $2 AND height = $3',
      [lid, run.branch, height],
    );
    return rows[0] ? toBuffer(rows[0].hash).toString('hex') : null;
  }

  /**
   * readChainPages is readChain a page of rows at a time: what a restore consumes, without a promise per block.
   * With `start`, it yields the record's chain from that height on (a follower fetching what it lacks).
   */
  async *readChainPages(record: BackupRecord, start = 0): AsyncGenerator<ChainPage> {
    const { lid, runs } = await this.#runs(record);
    let expected = start;
    for (const run of runs) {
      if (run.to < start) continue;
      for (let from = Math.max(run.from, start); from <= run.to; ) {
        const rows = await this.db.query<{ height: number; hash: Uint8Array; sealed: Uint8Array }>(
          'SELECT height, hash, sealed FROM ledger_blocks WHERE ledger_id = $1 AND branch = $2 AND height BETWEEN $3 AND $4 ORDER BY height LIMIT $5',
          [lid, run.branch, from, run.to, PAGE_ROWS],
        );
        const page: StoredBlock[] = [];
        for (const r of rows) {
          const height = Number(r.height);
          if (height !== expected)
            throw new NotFoundError(`${this.label} lacks block ${expected} of backup ${record.id}`);
          expected++;
          page.push({ height, hash: toBuffer(r.hash).toString('hex'), sealed: toBuffer(r.sealed) });
        }
        if (page.length > 0) yield { blocks: page };
        if (rows.length < PAGE_ROWS) break;
        from = Number(rows.at(-1)!.height) + 1;
      }
    }
    if (expected !== record.height + 1)
      throw new NotFoundError(`${this.label} lacks block ${expected} of backup ${record.id}`);
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

  async close(): Promise<void> {
    await this.#db?.close();
    this.#db = null;
    this.#tips.clear();
  }
}

async function newBranch(tx: Queryable, lid: number, parent: number | null, firstHeight: number): Promise<number> {
  const rows = await tx.query<{ branch: number }>(
    `INSERT INTO ledger_branches (ledger_id, branch, parent_branch, first_height)
     SELECT $1, COALESCE(MAX(branch), 0) + 1, $2::integer, $3 FROM ledger_branches WHERE ledger_id = $1 RETURNING branch`,
    [lid, parent, firstHeight],
  );
  return Number(rows[0]!.branch);
}
