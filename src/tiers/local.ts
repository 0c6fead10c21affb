import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConflictError, IntegrityError, NotFoundError } from '../errors.js';
import { atomicWrite } from '../store/fsutil.js';
import { LocalStore } from '../store/local-store.js';
import type { StoredBlock } from '../crypto/stored-block.js';
import type { BackupTier } from './tier.js';
import type { BackupRecord, NewBackup } from '../crypto/records.js';

/** BACKUPS_FILE holds the local tier's backup records, one JSON line each, beside the chain generations. */
export const BACKUPS_FILE = 'backups.jsonl';

interface RecordLine extends Omit<BackupRecord, 'createdAt' | 'seal'> {
  createdAt: string;
  seal: string;
}

/** A deleted record leaves a tombstone line, so ids (line numbers) are never reused. */
interface Tombstone {
  id: string;
  deleted: true;
}

function toLine(r: BackupRecord | Tombstone): string {
  if ('deleted' in r) return `${JSON.stringify({ id: r.id, deleted: true })}\n`;
  return `${JSON.stringify({ ...r, createdAt: r.createdAt.toISOString(), seal: r.seal.toString('base64') } satisfies RecordLine)}\n`;
}

/**
 * LocalTier is the local store seen as a backup tier: its blocks are the store's single chain, its records are
 * named pointers kept in backups.jsonl (appended and fsync'd). It keeps one branch: appending after a block that
 * already has a successor is refused with ConflictError (a rollback replaces the store's chain instead). Deleting or
 * protecting a record rewrites backups.jsonl atomically; there is never garbage to collect.
 */
export class LocalTier implements BackupTier {
  readonly name = 'local';
  readonly label: string;
  #store: LocalStore | null;
  readonly #dir: string;
  readonly #segmentBytes: number | undefined;
  #lines: (BackupRecord | Tombstone)[] = [];

  /** The tier works on an open store (the ledger's working copy) or opens the folder itself in init(). */
  constructor(source: { store: LocalStore } | { dir: string; segmentBytes?: number }) {
    this.#store = 'store' in source ? source.store : null;
    this.#dir = 'store' in source ? source.store.dir : source.dir;
    this.label = `local store ${this.#dir}`;
    this.#segmentBytes = 'store' in source ? undefined : source.segmentBytes;
  }

  get #s(): LocalStore {
    if (!this.#store) throw new Error('LocalTier.init() has not run');
    return this.#store;
  }

  async init(): Promise<void> {
    this.#store ??= (await LocalStore.open(this.#dir, this.#segmentBytes ? { segmentBytes: this.#segmentBytes } : {})).store;
    const path = join(this.#dir, BACKUPS_FILE);
    const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    const lines = text.split('\n');
    // A last line without its newline is a record torn by a crash: it was never acknowledged, so it is cut.
    const torn = lines.pop()!;
    if (torn.length > 0) {
      const fh = await open(path, 'r+');
      await fh.truncate(Buffer.byteLength(text) - Buffer.byteLength(torn));
      await fh.sync();
      await fh.close();
    }
    this.#lines = lines.map((line, i) => {
      try {
        const r = JSON.parse(line) as RecordLine | Tombstone;
        if ('deleted' in r) return { id: String(r.id), deleted: true };
        return { ...r, createdAt: new Date(r.createdAt), seal: Buffer.from(r.seal, 'base64') };
      } catch {
        throw new IntegrityError(`${path} line ${i + 1} is damaged`);
      }
    });
  }

  get #records(): BackupRecord[] {
    return this.#lines.filter((r): r is BackupRecord => !('deleted' in r));
  }

  async hasBlock(ledgerId: string, height: number, hash: string): Promise<boolean> {
    return this.#s.ledgerId === ledgerId && (await this.#s.hashAt(height)) === hash;
  }

  async append(ledgerId: string, parentHash: string | null, blocks: readonly StoredBlock[], record?: NewBackup): Promise<{ bytesWritten: number; record?: BackupRecord }> {
    const store = this.#s;
    let skip = 0;
    let parent = parentHash;
    while (skip < blocks.length && (await this.hasBlock(ledgerId, blocks[skip]!.height, blocks[skip]!.hash))) parent = blocks[skip++]!.hash;
    const rest = blocks.slice(skip);
    let bytesWritten = 0;
    if (store.ledgerId !== null && store.ledgerId !== ledgerId) {
      throw new ConflictError(`${this.label} holds ledger ${store.ledgerId.slice(0, 16)}, not ${ledgerId.slice(0, 16)}`);
    }
    if (rest.length > 0) {
      const first = rest[0]!;
      if (first.height > 0 && !(await this.hasBlock(ledgerId, first.height - 1, parent ?? ''))) {
        throw new NotFoundError(`${this.label} lacks block ${first.height - 1} that block ${first.height} follows`);
      }
      if (first.height !== store.height + 1) {
        throw new ConflictError(`${this.label} keeps one branch: block ${first.height - 1} already has a successor`);
      }
      ({ bytesWritten } = await store.append(ledgerId, rest));
    }
    return { bytesWritten, ...(record ? { record: await this.putBackup(record) } : {}) };
  }

  async putBackup(record: NewBackup): Promise<BackupRecord> {
    if (!(await this.hasBlock(record.ledgerId, record.height, record.headHash))) {
      throw new NotFoundError(`${this.label} lacks block ${record.height} (${record.headHash.slice(0, 16)}) that the backup names`);
    }
    const stored: BackupRecord = { ...record, id: String(this.#lines.length + 1), tier: this.name, protected: false };
    const fh = await open(join(this.#dir, BACKUPS_FILE), 'a', 0o600);
    try {
      await fh.write(toLine(stored));
      await fh.datasync();
    } finally {
      await fh.close();
    }
    this.#lines.push(stored);
    return stored;
  }

  async deleteBackups(ids: readonly string[]): Promise<number> {
    const gone = new Set(ids);
    const next = this.#lines.map((r) => ('deleted' in r || !gone.has(r.id) || r.protected ? r : { id: r.id, deleted: true as const }));
    const deleted = next.filter((r, i) => r !== this.#lines[i]).length;
    if (deleted > 0) await this.#rewrite(next);
    return deleted;
  }

  async setProtected(id: string, on: boolean): Promise<void> {
    const at = this.#lines.findIndex((r) => r.id === id && !('deleted' in r));
    if (at < 0) throw new NotFoundError(`there is no local backup with id ${JSON.stringify(id)}`);
    await this.#rewrite(this.#lines.map((r, i) => (i === at ? { ...(r as BackupRecord), protected: on } : r)));
  }

  async collectGarbage(): Promise<{ blocks: number; bytes: number }> {
    return { blocks: 0, bytes: 0 };
  }

  async #rewrite(lines: (BackupRecord | Tombstone)[]): Promise<void> {
    await atomicWrite(join(this.#dir, BACKUPS_FILE), Buffer.from(lines.map(toLine).join('')), 0o600);
    this.#lines = lines;
  }

  async listBackups(ledgerId?: string, options: { limit?: number } = {}): Promise<BackupRecord[]> {
    const all = this.#records.filter((r) => ledgerId === undefined || r.ledgerId === ledgerId).reverse();
    return all.slice(0, options.limit ?? all.length);
  }

  async getBackup(id: string): Promise<BackupRecord> {
    const r = this.#records.find((x) => x.id === id);
    if (!r) throw new NotFoundError(`there is no local backup with id ${JSON.stringify(id)}`);
    return r;
  }

  async hashAt(record: BackupRecord, height: number): Promise<string | null> {
    if (height < 0 || height > record.height || !(await this.hasBlock(record.ledgerId, record.height, record.headHash))) return null;
    return this.#s.hashAt(height);
  }

  async *readChain(record: BackupRecord): AsyncGenerator<StoredBlock> {
    for await (const page of this.readChainPages(record)) yield* page;
  }

  async *readChainPages(record: BackupRecord): AsyncGenerator<StoredBlock[]> {
    if (!(await this.hasBlock(record.ledgerId, record.height, record.headHash))) {
      throw new NotFoundError(`${this.label} no longer holds block ${record.height} of backup ${record.id} (it was on a branch a restore replaced)`);
    }
    yield* this.#s.readPages(0, record.height);
  }

  async close(): Promise<void> {
    await this.#store?.close();
  }
}
