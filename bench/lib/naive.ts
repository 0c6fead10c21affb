import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import type { Sealer } from '../../src/crypto/seal.js';
import { makeBlock } from '../../src/ledger/block.js';
import { parseRegister } from '../../src/ledger/transactions.js';
import type { Block } from '../../src/ledger/types.js';
import type { Measurement, SaveSample } from './pawledger.js';
import type { WalMeter } from './pg.js';
import { propertyInput } from './workload.js';

/**
 * NaiveLedger is the seed's design, rebuilt for comparison: the chain is a list of blocks in memory, and every save
 * serializes the whole list to JSON, seals it with AES-256-GCM as one object, writes it over the local file with
 * fsync, and inserts it base64-encoded as one row of the seed's blockchain_backups table (here naive_backups).
 * Blocks are made with pawledger's own makeBlock and the same inputs, so both designs store the same blocks.
 */
export class NaiveLedger {
  readonly chain: Block[] = [];
  #n = 0;
  private constructor(
    readonly client: pg.Client,
    readonly sealer: Sealer,
    readonly file: string,
    readonly run: string,
  ) {}

  static async open(options: { databaseUrl: string; dir: string; sealer: Sealer; run: string }): Promise<NaiveLedger> {
    const client = new pg.Client({ connectionString: options.databaseUrl, application_name: 'pawledger-bench-naive' });
    await client.connect();
    await client.query(`CREATE TABLE IF NOT EXISTS naive_backups (
      id bigserial PRIMARY KEY, name text NOT NULL, filename text NOT NULL, backup_data text NOT NULL,
      created_at timestamptz NOT NULL, created_by integer)`);
    await mkdir(options.dir, { recursive: true });
    const naive = new NaiveLedger(client, options.sealer, join(options.dir, 'blockchain_data.encrypted'), options.run);
    naive.#append();
    return naive;
  }

  get length(): number {
    return this.chain.length;
  }

  get ledgerId(): string {
    return this.chain[0]!.hash;
  }

  #append(): Block {
    const now = new Date().toISOString();
    const previous = this.chain.at(-1) ?? null;
    const txs = previous ? [parseRegister(propertyInput(this.run, this.#n++), now)] : [];
    const { block } = makeBlock(previous, txs, now);
    this.chain.push(block);
    return block;
  }

  /**
   * growTo adds blocks in memory only, without saving: the state a naive ledger of that length is in between saves.
   * The saves in between are skipped because each one's cost depends only on the chain's length at that moment.
   */
  growTo(length: number): void {
    while (this.chain.length < length) this.#append();
  }

  /** save is one naive save; it returns the time spent in each stage (ms). */
  async save(): Promise<Record<string, number>> {
    const t0 = performance.now();
    const block = this.#append();
    const json = Buffer.from(JSON.stringify(this.chain), 'utf8');
    const t1 = performance.now();
    const sealed = this.sealer.seal(
      { ledgerId: this.ledgerId, kind: 'export', height: block.index, hash: block.hash },
      json,
    );
    const t2 = performance.now();
    const fh = await open(this.file, 'w', 0o600);
    try {
      await fh.writeFile(sealed);
      await fh.sync();
    } finally {
      await fh.close();
    }
    const t3 = performance.now();
    const now = new Date();
    await this.client.query(
      'INSERT INTO naive_backups (name, filename, backup_data, created_at, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING id',
      [
        `Auto-backup ${now.toISOString().slice(0, 19).replace('T', ' ')}`,
        'blockchain_data.encrypted',
        sealed.toString('base64'),
        now,
        null,
      ],
    );
    const t4 = performance.now();
    return {
      'block + JSON.stringify(chain)': t1 - t0,
      'seal (AES-256-GCM)': t2 - t1,
      'file write+fsync': t3 - t2,
      'base64 + INSERT': t4 - t3,
    };
  }

  /** measure times `n` saves at the current length, with the WAL each wrote and the size of the rows inserted. */
  async measure(n: number, wal: WalMeter): Promise<Measurement> {
    const chainLength = this.length;
    const last = await this.client.query<{ id: string | null }>('SELECT max(id)::text AS id FROM naive_backups');
    const fromId = last.rows[0]!.id ?? '0';
    const samples: SaveSample[] = [];
    let cpu = 0;
    for (let i = 0; i < n; i++) {
      const w0 = await wal.lsn();
      const c = process.cpuUsage();
      const t = performance.now();
      const stages = await this.save();
      const elapsed = performance.now() - t;
      const used = process.cpuUsage(c);
      cpu += (used.user + used.system) / 1000;
      const w1 = await wal.lsn();
      samples.push({ ms: elapsed, wal: w1 - w0, stages });
    }
    const rows = await this.client.query<{ b: string }>(
      'SELECT coalesce(sum(pg_column_size(t.*)), 0)::text AS b FROM naive_backups t WHERE id > $1',
      [fromId],
    );
    return {
      design: 'naive',
      chainLength,
      samples,
      rowBytes: Number(rows.rows[0]!.b) / n,
      cpuMsPerSave: cpu / n,
      busyOtherSessions: await wal.busyOtherSessions(),
      floorsNowMs: [],
    };
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}
