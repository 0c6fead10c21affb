import { chmod, mkdir, open, readdir, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { IntegrityError } from '../errors.js';
import { atomicWrite, fsyncDir } from './fsutil.js';
import { encodeRecord, encodeSegmentHeader, RECORD_HEADER_BYTES } from './segment-format.js';
import { scanSegment, type ScannedSegment } from './segment-scan.js';
import type { StoredBlock } from './stored-block.js';


/** LocalStoreOptions configure a local store. */
export interface LocalStoreOptions {
  /** segmentBytes is the size past which a segment is finished (made read-only) and a new one begun. @default 8 MiB */
  segmentBytes?: number;
  /** readOnly scans without repairing anything (a torn tail is left for the writer to cut). @default false */
  readOnly?: boolean;
}

/** OpenReport says what opening the store found and repaired, for the startup log. */
export interface OpenReport {
  segments: number;
  /** tornBytes is how much of an unfinished final record was cut (0 when the store was closed cleanly). */
  tornBytes: number;
}

interface Segment extends ScannedSegment {
  name: string;
}

const DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024;
const CURRENT = 'CURRENT';
/** PARTIAL marks a generation that replace() is still writing: garbage if a crash leaves it. */
const PARTIAL = 'PARTIAL';

function segmentName(firstHeight: number): string {
  return `${String(firstHeight).padStart(12, '0')}.seg`;
}

/**
 * LocalStore is the append-only, sealed block store in one folder (LEDGER_DATA_DIR). The live chain sits in a
 * generation folder named by the CURRENT file; each generation holds segment files of framed sealed blocks. A save
 * appends its records with one write and one fdatasync: its cost does not grow with the chain. Replacing the chain
 * (a restore or an import) writes a new generation and switches CURRENT atomically, so a crash leaves one or the other.
 *
 * Contract: one LocalStore per folder per process, and one process at a time (the caller holds the folder's lock).
 * append() is not reentrant: the caller serializes saves.
 */
export class LocalStore {
  readonly dir: string;
  readonly #segmentBytes: number;
  readonly #readOnly: boolean;
  #generation: string | null = null;
  #ledgerId: string | null = null;
  #segments: Segment[] = [];
  #headHash: string | null = null;
  #writer: FileHandle | null = null;
  readonly #readers = new Map<string, FileHandle>();

  private constructor(dir: string, options: LocalStoreOptions) {
    this.dir = dir;
    this.#segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.#readOnly = options.readOnly ?? false;
  }

  /** open scans the store, cuts a torn final record left by a crash, and throws IntegrityError on any damage. */
  static async open(dir: string, options: LocalStoreOptions = {}): Promise<{ store: LocalStore; report: OpenReport }> {
    if (!options.readOnly) await mkdir(dir, { recursive: true, mode: 0o700 });
    const store = new LocalStore(dir, options);
    const report = await store.#load();
    return { store, report };
  }

  get ledgerId(): string | null {
    return this.#ledgerId;
  }

  /** height is the last stored block's height, -1 when the store is empty. */
  get height(): number {
    const last = this.#segments.at(-1);
    return last ? last.firstHeight + last.offsets.length - 1 : -1;
  }

  get headHash(): string | null {
    return this.#headHash;
  }

  async #load(): Promise<OpenReport> {
    const current = await readFile(join(this.dir, CURRENT), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (current === null) {
      // A missing CURRENT beside a finished generation is damage, not an empty store: never start a new ledger over it.
      const orphans: string[] = [];
      for (const n of await readdir(this.dir).catch(() => [] as string[])) {
        if (!/^chain-\d{6}$/.test(n)) continue;
        const files = await readdir(join(this.dir, n));
        if (!files.includes(PARTIAL) && files.some((f) => f.endsWith('.seg'))) orphans.push(n);
      }
      if (orphans.length > 0) {
        throw new IntegrityError(`${join(this.dir, CURRENT)} is missing, but ${orphans.join(', ')} holds segment files`, {
          hint: `If ${orphans.at(-1)} is the live chain, restore CURRENT: echo ${orphans.at(-1)} > ${join(this.dir, CURRENT)}`,
        });
      }
      return { segments: 0, tornBytes: 0 };
    }
    const generation = current.trim();
    if (!/^chain-\d{6}$/.test(generation)) {
      throw new IntegrityError(`${join(this.dir, CURRENT)} is damaged: it names ${JSON.stringify(generation)}`);
    }
    this.#generation = generation;
    const genDir = join(this.dir, generation);
    const names = (await readdir(genDir)).filter((n) => n.endsWith('.seg')).sort();
    let tornBytes = 0;
    for (const [i, name] of names.entries()) {
      const path = join(genDir, name);
      const last = i === names.length - 1;
      const expectedFirst = this.height + 1;
      const scanned = scanSegment(path, await readFile(path), { last, expectedFirst, ledgerId: this.#ledgerId });
      // A first segment without a block is a crash during the very first save (genesis never acknowledged): drop it.
      if (scanned === 'torn-header' || (last && expectedFirst === 0 && scanned.offsets.length === 0)) {
        if (this.#readOnly) continue;
        await rm(path);
        await fsyncDir(genDir);
        continue;
      }
      tornBytes += scanned.tornBytes;
      if (scanned.tornBytes > 0 && !this.#readOnly) {
        const fh = await open(path, 'r+');
        await fh.truncate(scanned.size);
        await fh.sync();
        await fh.close();
      }
      this.#ledgerId = scanned.ledgerId;
      if (scanned.offsets.length > 0) this.#headHash = scanned.lastHash;
      this.#segments.push({ ...scanned, name });
    }
    // A generation left by a replace that crashed before switching CURRENT is garbage.
    if (!this.#readOnly) for (const n of await readdir(this.dir)) {
      if (/^chain-\d{6}$/.test(n) && n !== generation) await rm(join(this.dir, n), { recursive: true, force: true });
    }
    return { segments: this.#segments.length, tornBytes };
  }

  /**
   * append adds sealed blocks after the head, durably: when it resolves, they survive a crash. The first append to
   * an empty store names the ledger. Heights must continue the chain.
   */
  async append(ledgerId: string, blocks: readonly StoredBlock[]): Promise<{ bytesWritten: number }> {
    if (this.#readOnly) throw new Error('the local store was opened read-only');
    if (blocks.length === 0) return { bytesWritten: 0 };
    if (this.#ledgerId !== null && this.#ledgerId !== ledgerId) {
      throw new IntegrityError(`the local store holds ledger ${this.#ledgerId.slice(0, 16)}, not ${ledgerId.slice(0, 16)}`);
    }
    if (blocks[0]!.height !== this.height + 1) {
      throw new IntegrityError(`block ${blocks[0]!.height} cannot follow stored block ${this.height}`);
    }
    if (this.#generation === null) await this.#newGeneration(ledgerId);
    this.#ledgerId = ledgerId;
    let segment = this.#segments.at(-1);
    if (!segment || segment.size >= this.#segmentBytes) segment = await this.#roll(blocks[0]!.height);
    const writer = await this.#openWriter(segment);
    const frames = blocks.map((b) => encodeRecord(b.height, b.hash, b.sealed));
    const bytes = Buffer.concat(frames);
    const { bytesWritten } = await writer.write(bytes, 0, bytes.length, segment.size);
    if (bytesWritten !== bytes.length) throw new Error(`short write to ${segment.name}`);
    await writer.datasync();
    let at = segment.size;
    for (const f of frames) {
      segment.offsets.push(at);
      at += f.length;
    }
    segment.size = at;
    this.#headHash = blocks.at(-1)!.hash;
    return { bytesWritten: bytes.length };
  }

  /** read yields the stored blocks from `from` to `to` (inclusive, default the head), in order. */
  async *read(from = 0, to = this.height): AsyncGenerator<StoredBlock> {
    for await (const page of this.readPages(from, to)) yield* page;
  }

  /** readPages is read a slice of about 4 MiB at a time: one await per slice, not per block. */
  async *readPages(from = 0, to = this.height): AsyncGenerator<StoredBlock[]> {
    for (const segment of this.#segments) {
      const segLast = segment.firstHeight + segment.offsets.length - 1;
      if (segLast < from || segment.firstHeight > to) continue;
      const first = Math.max(from, segment.firstHeight) - segment.firstHeight;
      const last = Math.min(to, segLast) - segment.firstHeight;
      // Read in slices of about 4 MiB: few syscalls, bounded memory.
      for (let i = first; i <= last; ) {
        let j = i;
        while (j < last && segment.offsets[j + 1]! - segment.offsets[i]! < 4 * 1024 * 1024) j++;
        const start = segment.offsets[i]!;
        const end = j + 1 < segment.offsets.length ? segment.offsets[j + 1]! : segment.size;
        const buf = Buffer.allocUnsafe(end - start);
        const fh = await this.#reader(segment);
        const { bytesRead } = await fh.read(buf, 0, buf.length, start);
        // A short read means the file changed under the reader (a restore switched generations): never hand on garbage.
        if (bytesRead !== buf.length) throw new IntegrityError(`segment ${segment.name} ended at ${start + bytesRead} while reading to ${end}`);
        const page: StoredBlock[] = [];
        for (let k = i; k <= j; k++) {
          const at = segment.offsets[k]! - start;
          const payloadBytes = buf.readUInt32LE(at);
          page.push({
            height: segment.firstHeight + k,
            hash: buf.subarray(at + 12, at + 44).toString('hex'),
            sealed: buf.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + payloadBytes),
          });
        }
        yield page;
        i = j + 1;
      }
    }
  }

  /**
   * replace makes a whole chain from height 0, given in batches, the store's contents: written to a new generation,
   * made durable, then switched to with one atomic rename of CURRENT. If the source throws midway (a block that fails
   * verification), the new generation is removed and the store keeps its old chain. The old generation is removed
   * after the switch.
   */
  async replace(ledgerId: string, batches: AsyncIterable<readonly StoredBlock[]> | Iterable<readonly StoredBlock[]>): Promise<void> {
    if (this.#readOnly) throw new Error('the local store was opened read-only');
    const fresh = new LocalStore(this.dir, { segmentBytes: this.#segmentBytes });
    await fresh.#newGeneration(ledgerId, false);
    try {
      for await (const batch of batches) await fresh.append(ledgerId, batch);
      await fresh.#writer?.sync();
      await rm(join(this.dir, fresh.#generation!, PARTIAL));
      await fsyncDir(join(this.dir, fresh.#generation!));
    } catch (err) {
      await fresh.close();
      await rm(join(this.dir, fresh.#generation!), { recursive: true, force: true });
      throw err;
    }
    await atomicWrite(join(this.dir, CURRENT), Buffer.from(`${fresh.#generation}\n`));
    const old = this.#generation;
    await this.close();
    this.#generation = fresh.#generation;
    this.#segments = fresh.#segments;
    this.#headHash = fresh.#headHash;
    this.#ledgerId = fresh.#ledgerId;
    this.#writer = fresh.#writer;
    if (old && old !== this.#generation) await rm(join(this.dir, old), { recursive: true, force: true });
  }

  /** hashAt returns the hash of the stored block at `height`, or null past the head. */
  async hashAt(height: number): Promise<string | null> {
    if (height < 0 || height > this.height) return null;
    for await (const b of this.read(height, height)) return b.hash;
    return null;
  }

  async #newGeneration(ledgerId: string, publish = true): Promise<void> {
    const existing = await readdir(this.dir).catch(() => [] as string[]);
    const numbers = existing.filter((n) => /^chain-\d{6}$/.test(n)).map((n) => Number(n.slice(6)));
    const generation = `chain-${String(Math.max(0, ...numbers) + 1).padStart(6, '0')}`;
    await mkdir(join(this.dir, generation), { mode: 0o700 });
    await fsyncDir(this.dir);
    this.#generation = generation;
    this.#ledgerId = ledgerId;
    if (publish) await atomicWrite(join(this.dir, CURRENT), Buffer.from(`${generation}\n`));
    else await atomicWrite(join(this.dir, generation, PARTIAL), Buffer.alloc(0));
  }

  async #roll(firstHeight: number): Promise<Segment> {
    const previous = this.#segments.at(-1);
    if (previous) {
      await this.#writer?.sync();
      await this.#writer?.close();
      this.#writer = null;
      await chmod(this.#segmentPath(previous), 0o400);
    }
    const name = segmentName(firstHeight);
    const path = join(this.dir, this.#generation!, name);
    const fh = await open(path, 'wx', 0o600);
    const header = encodeSegmentHeader({ firstHeight, ledgerId: this.#ledgerId! });
    await fh.write(header, 0, header.length, 0);
    await fh.sync();
    this.#writer = fh;
    await fsyncDir(join(this.dir, this.#generation!));
    const segment: Segment = { name, firstHeight, ledgerId: this.#ledgerId!, offsets: [], size: header.length, lastHash: null, tornBytes: 0 };
    this.#segments.push(segment);
    return segment;
  }

  async #openWriter(segment: Segment): Promise<FileHandle> {
    if (!this.#writer) {
      const path = this.#segmentPath(segment);
      if (((await stat(path)).mode & 0o200) === 0) await chmod(path, 0o600);
      this.#writer = await open(path, 'r+');
    }
    return this.#writer;
  }

  async #reader(segment: Segment): Promise<FileHandle> {
    let fh = this.#readers.get(segment.name);
    if (!fh) {
      fh = await open(this.#segmentPath(segment), 'r');
      this.#readers.set(segment.name, fh);
    }
    return fh;
  }

  #segmentPath(segment: Segment): string {
    return join(this.dir, this.#generation!, segment.name);
  }

  /** close releases file handles; the store can be reopened later. */
  async close(): Promise<void> {
    await this.#writer?.close();
    this.#writer = null;
    for (const fh of this.#readers.values()) await fh.close();
    this.#readers.clear();
  }
}
