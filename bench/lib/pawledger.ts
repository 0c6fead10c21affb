import { loadConfig } from '../../src/config.js';
import { Ledger } from '../../src/service/ledger.js';
import { LocalStore } from '../../src/store/local-store.js';
import { PostgresTier } from '../../src/tiers/postgres.js';
import type { WalMeter } from './pg.js';
import { propertyInput } from './workload.js';

/** SaveSample is one measured save: its wall time and the part spent in each stage (ms), and WAL written (bytes). */
export interface SaveSample {
  ms: number;
  stages: Record<string, number>;
  wal: number;
}

/** Measurement is a run of saves at one chain length. */
export interface Measurement {
  design: string;
  chainLength: number;
  samples: SaveSample[];
  /** rowBytes is the size of the rows the measured saves inserted, per save (pg_column_size of each row). */
  rowBytes: number;
  /** cpuMsPerSave is this process's CPU time (user + system, all threads) per measured save, in ms. */
  cpuMsPerSave: number;
  /** busyOtherSessions is how many sessions on other databases were active when the measurement ended. */
  busyOtherSessions: number;
}

// Time spent inside the local store's append (one write + fdatasync) and the database tier's append (one statement)
// during the current save. The methods are wrapped at runtime; nothing in src/ changes.
const stage = { local: 0, db: 0 };
let wrapped = false;
function wrapStages(): void {
  if (wrapped) return;
  wrapped = true;
  const localAppend = LocalStore.prototype.append;
  LocalStore.prototype.append = async function (this: LocalStore, ...args: Parameters<LocalStore['append']>) {
    const t = performance.now();
    try {
      return await localAppend.apply(this, args);
    } finally {
      stage.local += performance.now() - t;
    }
  };
  const dbAppend = PostgresTier.prototype.append;
  PostgresTier.prototype.append = async function (this: PostgresTier, ...args: Parameters<PostgresTier['append']>) {
    const t = performance.now();
    try {
      return await dbAppend.apply(this, args);
    } finally {
      stage.db += performance.now() - t;
    }
  };
}

/**
 * PawledgerBench drives pawledger's Ledger, configured as a server would be from the environment (DATABASE_URL,
 * LEDGER_DATA_DIR, LEDGER_ENCRYPTION_KEY), through its public API: register() is one save.
 */
export class PawledgerBench {
  #n = 0;
  private constructor(readonly ledger: Ledger, readonly run: string, readonly dbUrl: string) {}

  static async open(options: { databaseUrl: string; dataDir: string; key: string; run: string }): Promise<PawledgerBench> {
    wrapStages();
    const config = loadConfig({ DATABASE_URL: options.databaseUrl, LEDGER_DATA_DIR: options.dataDir, LEDGER_ENCRYPTION_KEY: options.key, LOG_FORMAT: 'json' });
    const ledger = await Ledger.open({ config });
    const db = ledger.status().tiers.find((t) => t.name === 'db');
    if (!db || db.state !== 'ok') throw new Error(`the database tier is not ok after open: ${JSON.stringify(db)}`);
    return new PawledgerBench(ledger, options.run, options.databaseUrl);
  }

  /** length is the number of blocks in the chain (genesis included). */
  get length(): number {
    return this.ledger.head.index + 1;
  }

  /** save registers the next property: one save, one new block. */
  async save(): Promise<void> {
    await this.ledger.register(propertyInput(this.run, this.#n++));
  }

  /**
   * growTo saves properties until the chain holds `length` blocks. 'sequential' awaits each save before the next
   * (one block, one fdatasync, one statement and one backup record per save, as a server that gets one request at a
   * time). 'batched' keeps `window` saves in flight, so the ledger's group commit writes each burst with one append,
   * one fdatasync and one statement: the same blocks, in the local store and in ledger_blocks, but one automatic
   * backup record per burst instead of one per block.
   */
  async growTo(length: number, mode: 'sequential' | 'batched', progress?: (done: number) => void, window = 256): Promise<void> {
    let next = (Math.floor(this.length / 10_000) + 1) * 10_000;
    while (this.length < length) {
      if (mode === 'sequential') await this.save();
      else await Promise.all(Array.from({ length: Math.min(window, length - this.length) }, () => this.save()));
      if (progress && this.length >= next) {
        progress(this.length);
        next += 10_000;
      }
    }
  }

  /** measure times `n` sequential saves, after `warmup` uncounted ones, with the WAL each wrote. */
  async measure(n: number, wal: WalMeter, warmup = 10): Promise<Measurement> {
    for (let i = 0; i < warmup; i++) await this.save();
    const chainLength = this.length;
    const firstHeight = this.ledger.head.index + 1;
    const lastRecord = await wal.client.query<{ id: string | null }>('SELECT max(id)::text AS id FROM blockchain_backups');
    const fromRecord = lastRecord.rows[0]!.id ?? '0';
    const samples: SaveSample[] = [];
    let cpu = 0;
    for (let i = 0; i < n; i++) {
      const input = propertyInput(this.run, this.#n++);
      const w0 = await wal.lsn();
      stage.local = 0;
      stage.db = 0;
      const c = process.cpuUsage();
      const t = performance.now();
      await this.ledger.register(input);
      const elapsed = performance.now() - t;
      const used = process.cpuUsage(c);
      cpu += (used.user + used.system) / 1000;
      const w1 = await wal.lsn();
      samples.push({ ms: elapsed, wal: w1 - w0, stages: { 'local append+fdatasync': stage.local, 'db statement': stage.db, 'rest (CPU, queueing)': elapsed - stage.local - stage.db } });
    }
    const rows = await wal.client.query<{ b: string; r: string }>(
      `SELECT (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM ledger_blocks t WHERE height >= $1)::text AS b,
              (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM blockchain_backups t WHERE id > $2)::text AS r`,
      [firstHeight, fromRecord],
    );
    const rowBytes = (Number(rows.rows[0]!.b) + Number(rows.rows[0]!.r)) / n;
    return { design: 'pawledger', chainLength, samples, rowBytes, cpuMsPerSave: cpu / n, busyOtherSessions: await wal.busyOtherSessions() };
  }

  async close(): Promise<void> {
    await this.ledger.close();
  }
}
