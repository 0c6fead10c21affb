import pg from 'pg';
import { loadConfig } from '../../src/config.js';
import { Ledger } from '../../src/service/ledger.js';
import { LocalStore } from '../../src/store/local-store.js';
import { PostgresTier } from '../../src/tiers/postgres.js';
import { WalMeter } from './pg.js';
import { propertyInput } from './workload.js';

/**
 * SaveSample is one measured save: its wall time and the part spent in each stage (ms), the WAL position's advance
 * around it (bytes, any session's), and when known the WAL records of its own database (bytes, and of those the
 * full-page images).
 */
export interface SaveSample {
  ms: number;
  stages: Record<string, number>;
  wal: number;
  /** localBytes is what the save appended to the local store (LocalStore.append's bytesWritten: framed sealed block). */
  localBytes?: number;
  ownWal?: number;
  ownFpi?: number;
}

/** attributeWal fills each sample's ownWal/ownFpi from records, by the WAL range [from, to) read around each save. */
export async function attributeWal(
  wal: WalMeter,
  dbOid: number,
  samples: SaveSample[],
  ranges: [number, number][],
): Promise<void> {
  if (ranges.length === 0) return;
  const records = await wal.ownRecords(ranges[0]![0], ranges.at(-1)![1], dbOid);
  for (const [i, [from, to]] of ranges.entries()) {
    const mine = records.filter((r) => r.lsn >= from && r.lsn < to);
    samples[i]!.ownWal = mine.reduce((a, r) => a + r.length, 0);
    samples[i]!.ownFpi = mine.reduce((a, r) => a + r.fpiLength, 0);
  }
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
  /** floorsNowMs is the median commit floor plus the median fdatasync floor, measured just before this run of saves. */
  floorsNowMs: number[];
  /** commitFloorMs is the median one-row PostgreSQL commit before each run of saves, where measured apart. */
  commitFloorMs?: number[];
  /** appendFloorMs is the median 500-byte append+fdatasync before each run of saves, where measured apart. */
  appendFloorMs?: number[];
  /** busyOtherSessions is how many sessions on other databases were active when a run of saves ended (the most seen). */
  busyOtherSessions: number;
}

// Time spent inside the local store's append (one write + fdatasync) and the database tier's append (one statement)
// during the current save. The methods are wrapped at runtime; nothing in src/ changes.
const stage = { local: 0, db: 0, localBytes: 0 };
let wrapped = false;
function wrapStages(): void {
  if (wrapped) return;
  wrapped = true;
  const localAppend = LocalStore.prototype.append;
  LocalStore.prototype.append = async function (this: LocalStore, ...args: Parameters<LocalStore['append']>) {
    const t = performance.now();
    try {
      const result = await localAppend.apply(this, args);
      stage.localBytes += result.bytesWritten;
      return result;
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
  private constructor(
    readonly ledger: Ledger,
    readonly run: string,
    readonly sql: pg.Client,
    readonly dbOid: number,
    readonly dataDir: string,
    readonly ipfsDir: string | null,
  ) {}

  /**
   * open opens a Ledger on its own data folder and database; with `ipfsDir`, IPFS is on too, through the embedded
   * provider (IPFS_PROVIDER=embedded) in that folder, with the default debounce: uploads run in the background. With
   * `backupDir` (an existing folder), the dir tier is on too (LEDGER_BACKUP_DIR), in the background as well. With
   * `previousKeys`, the keyring holds them too (LEDGER_PREVIOUS_KEYS): what a key rotation re-seals from.
   */
  static async open(options: {
    databaseUrl: string;
    dataDir: string;
    key: string;
    run: string;
    ipfsDir?: string;
    backupDir?: string;
    previousKeys?: string;
    /** rotateBatch is LEDGER_ROTATE_BATCH (objects per rotation step); unset, the default. */
    rotateBatch?: number;
  }): Promise<PawledgerBench> {
    wrapStages();
    const env: NodeJS.ProcessEnv = {
      DATABASE_URL: options.databaseUrl,
      LEDGER_DATA_DIR: options.dataDir,
      LEDGER_ENCRYPTION_KEY: options.key,
      LOG_FORMAT: 'json',
    };
    if (options.ipfsDir) Object.assign(env, { IPFS_PROVIDER: 'embedded', IPFS_EMBEDDED_DIR: options.ipfsDir });
    if (options.backupDir) env.LEDGER_BACKUP_DIR = options.backupDir;
    if (options.previousKeys) env.LEDGER_PREVIOUS_KEYS = options.previousKeys;
    if (options.rotateBatch !== undefined) env.LEDGER_ROTATE_BATCH = String(options.rotateBatch);
    const config = loadConfig(env);
    const ledger = await Ledger.open({ config });
    const db = ledger.status().tiers.find((t) => t.name === 'db');
    if (db?.state !== 'ok') throw new Error(`the database tier is not ok after open: ${JSON.stringify(db)}`);
    const sql = new pg.Client({ connectionString: options.databaseUrl, application_name: 'pawledger-bench-meter' });
    await sql.connect();
    return new PawledgerBench(
      ledger,
      options.run,
      sql,
      await WalMeter.databaseOid(sql),
      options.dataDir,
      options.ipfsDir ?? null,
    );
  }

  /**
   * ipfsLevel waits until the background tiers (IPFS and the backup folder, where on) hold the chain's head (status
   * says ok at the head height), polling every 50 ms for at most `timeoutMs`; it returns false if they did not get
   * there. True at once when both are off.
   */
  async ipfsLevel(timeoutMs = 120_000): Promise<boolean> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      const behind = this.ledger
        .status()
        .tiers.filter((t) => t.name === 'ipfs' || t.name === 'dir')
        .filter((t) => t.state !== 'ok' || t.height !== this.ledger.head.index);
      if (behind.length === 0) return true;
      if (performance.now() > end) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
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
  async growTo(
    length: number,
    mode: 'sequential' | 'batched',
    progress?: (done: number) => void,
    window = 256,
  ): Promise<void> {
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

  /**
   * measure times `n` sequential saves with the WAL each wrote (pg_current_wal_lsn() read just before and just after
   * it, outside the timed section) and the size of the rows they inserted.
   */
  async measure(n: number, wal: WalMeter): Promise<Measurement> {
    const chainLength = this.length;
    const firstHeight = this.ledger.head.index + 1;
    const lastRecord = await this.sql.query<{ id: string | null }>(
      'SELECT max(id)::text AS id FROM blockchain_backups',
    );
    const fromRecord = lastRecord.rows[0]!.id ?? '0';
    const samples: SaveSample[] = [];
    const ranges: [number, number][] = [];
    let cpu = 0;
    for (let i = 0; i < n; i++) {
      const input = propertyInput(this.run, this.#n++);
      const w0 = await wal.lsn();
      stage.local = 0;
      stage.db = 0;
      stage.localBytes = 0;
      const c = process.cpuUsage();
      const t = performance.now();
      await this.ledger.register(input);
      const elapsed = performance.now() - t;
      const used = process.cpuUsage(c);
      cpu += (used.user + used.system) / 1000;
      const w1 = await wal.lsn();
      ranges.push([w0, w1]);
      samples.push({
        ms: elapsed,
        wal: w1 - w0,
        localBytes: stage.localBytes,
        stages: {
          'local append+fdatasync': stage.local,
          'db statement': stage.db,
          'rest (CPU, queueing)': elapsed - stage.local - stage.db,
        },
      });
    }
    await attributeWal(wal, this.dbOid, samples, ranges);
    const rows = await this.sql.query<{ b: string; r: string }>(
      `SELECT (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM ledger_blocks t WHERE height >= $1)::text AS b,
              (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM blockchain_backups t WHERE id > $2)::text AS r`,
      [firstHeight, fromRecord],
    );
    const rowBytes = (Number(rows.rows[0]!.b) + Number(rows.rows[0]!.r)) / n;
    return {
      design: 'pawledger',
      chainLength,
      samples,
      rowBytes,
      cpuMsPerSave: cpu / n,
      busyOtherSessions: await wal.busyOtherSessions(),
      floorsNowMs: [],
    };
  }

  async close(): Promise<void> {
    await this.ledger.close();
    await this.sql.end();
  }
}

/** merge joins runs of saves made at (about) the same chain length into one measurement; length is the first run's. */
export function merge(runs: Measurement[]): Measurement {
  const first = runs[0]!;
  const n = runs.reduce((a, r) => a + r.samples.length, 0);
  const weighted = (f: (r: Measurement) => number) => runs.reduce((a, r) => a + f(r) * r.samples.length, 0) / n;
  return {
    design: first.design,
    chainLength: first.chainLength,
    samples: runs.flatMap((r) => r.samples),
    rowBytes: weighted((r) => r.rowBytes),
    cpuMsPerSave: weighted((r) => r.cpuMsPerSave),
    floorsNowMs: runs.flatMap((r) => r.floorsNowMs),
    ...(runs.every((r) => r.commitFloorMs && r.appendFloorMs)
      ? {
          commitFloorMs: runs.flatMap((r) => r.commitFloorMs!),
          appendFloorMs: runs.flatMap((r) => r.appendFloorMs!),
        }
      : {}),
    busyOtherSessions: Math.max(...runs.map((r) => r.busyOtherSessions)),
  };
}
