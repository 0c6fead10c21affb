import { chmod, mkdir, open, readdir, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { IntegrityError } from '../errors.js';
import { CURRENT, GENERATION, loadChain, PARTIAL, type LoadedSegment } from './chain-load.js';
import { fsError } from './fs-errors.js';
import { atomicWrite, fsyncDir } from './fsutil.js';
import { HEAD_FILE, HeadMarker } from './head-marker.js';
import { encodeRecord, encodeSegmentHeader, RECORD_HEADER_BYTES } from './segment-format.js';
import type { ChainPage } from '../crypto/packs.js';
import type { StoredBlock } from '../crypto/stored-block.js';

/** LocalStoreOptions configure a local store. */
export interface LocalStoreOptions {
  /** segmentBytes is the size past which a segment is finished (made read-only) and a new one begun. @default 8 MiB */
  segmentBytes?: number;
  /** readOnly scans without repairing anything (a torn tail is left for the writer to cut). @default false */
  readOnly?: boolean;
  /**
   * onDamage: 'throw' makes open throw IntegrityError on any damage; 'report' opens a damaged store as empty, with
   * `damage` saying why, so that a chain verified elsewhere can replace it (replace then moves the damaged files
   * aside, never deleting them). @default 'throw'
   */
  onDamage?: 'throw' | 'report';
}

/** OpenReport says what opening the store found and repaired, for the startup log. */
export interface OpenReport {
  segments: number;
  /** tornBytes is how much of an unfinished final record was cut (0 when the store was closed cleanly). */
  tornBytes: number;
  /** damage says why the store cannot be used as it is, with onDamage 'report'; null when it is sound. */
  damage: string | null;
}

const DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024;

function segmentName(firstHeight: number): string {
  return `${String(firstHeight).padStart(12, '0')}.seg`;
}

function generationNumber(generation: string): number {
  return Number(generation.slice(6));
}

/**
 * LocalStore is the append-only, sealed block store in one folder (LEDGER_DATA_DIR). The live chain sits in a
 * generation folder named by the CURRENT file; each generation holds segment files of framed sealed blocks. A save
 * appends its records with one write and one fdatasync, and advances the head marker (HEAD) beside them: its cost
 * does not grow with the chain, and a store that later lacks an acknowledged block says so at open. Replacing the
 * chain (a restore or an import) writes a new generation and switches CURRENT atomically, so a crash leaves one or
 * the other.
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
  #segments: LoadedSegment[] = [];
  #headHash: string | null = null;
  #writer: FileHandle | null = null;
  #marker: HeadMarker | null = null;
  #damage: string | null = null;
  #movedAside: string | null = null;
  /** settled is true while the marker already says the head is acknowledged: close() then writes nothing. */
  #settled = false;
  // One handle per segment, opened once: concurrent first reads share the opening rather than each leak one.
  readonly #readers = new Map<string, Promise<FileHandle>>();

  private constructor(dir: string, options: LocalStoreOptions) {
    this.dir = dir;
    this.#segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.#readOnly = options.readOnly ?? false;
  }

  /**
   * open scans the store and cuts a torn final record left by a crash. Damage (a changed byte, a missing segment or
   * chain folder, acknowledged blocks missing) throws IntegrityError, or with onDamage 'report' opens the store empty
   * with `damage` set. Failures of the file system itself (permissions, a full disk) throw ConfigError or
   * UnavailableError naming the path.
   */
  static async open(dir: string, options: LocalStoreOptions = {}): Promise<{ store: LocalStore; report: OpenReport }> {
    try {
      if (!options.readOnly) await mkdir(dir, { recursive: true, mode: 0o700 });
      const store = new LocalStore(dir, options);
      const report = await store.#load(options.onDamage ?? 'throw');
      return { store, report };
    } catch (err) {
      throw fsError(err, dir);
    }
  }

  /** ledgerId is the ledger the store holds (for a damaged store, the one its files named, when they did). */
  get ledgerId(): string | null {
    return this.#ledgerId;
  }

  /** height is the last stored block's height, -1 when the store is empty (or damaged). */
  get height(): number {
    const last = this.#segments.at(-1);
    return last ? last.firstHeight + last.offsets.length - 1 : -1;
  }

  get headHash(): string | null {
    return this.#headHash;
  }

  /** damage says why the store was opened empty (onDamage 'report'), or null; a replace() clears it. */
  get damage(): string | null {
    return this.#damage;
  }

  /** movedAside names the folder the last replace() moved a damaged chain into, or null. */
  get movedAside(): string | null {
    return this.#movedAside;
  }

  async #load(onDamage: 'throw' | 'report'): Promise<OpenReport> {
    let hint: string | null = null;
    let loaded: Awaited<ReturnType<typeof loadChain>>;
    try {
      loaded = await loadChain(this.dir, this.#readOnly, (id) => (hint = id));
    } catch (err) {
      if (!(err instanceof IntegrityError) || onDamage === 'throw') throw err;
      this.#damage = err.message;
      this.#ledgerId = hint;
      return { segments: 0, tornBytes: 0, damage: err.message };
    }
    this.#generation = loaded.generation;
    this.#ledgerId = loaded.ledgerId;
    this.#segments = loaded.segments;
    this.#headHash = loaded.headHash;
    if (!this.#readOnly) {
      this.#marker = new HeadMarker(join(this.dir, HEAD_FILE), loaded.mark?.seq ?? 0);
      // A store written before the marker existed, or a replace cut off before it wrote one: mark what is there.
      if (loaded.adopt) await this.#mark(this.height);
      else
        this.#settled =
          loaded.mark === null || (loaded.mark.acked === this.height && loaded.mark.height === this.height);
      // A generation left by a replace that crashed before switching CURRENT is garbage.
      for (const n of await readdir(this.dir)) {
        if (GENERATION.test(n) && n !== loaded.generation)
          await rm(join(this.dir, n), { recursive: true, force: true });
      }
    }
    return { segments: this.#segments.length, tornBytes: loaded.tornBytes, damage: null };
  }

  // Advance the head marker to `height` (the head after an append), `acked` being the head before it.
  async #mark(acked: number): Promise<void> {
    if (!this.#marker || this.#generation === null || this.#headHash === null) return;
    this.#settled = false;
    await this.#marker.write({
      generation: generationNumber(this.#generation),
      acked,
      height: this.height,
      hash: this.#headHash,
    });
    this.#settled = acked === this.height;
  }

  /**
   * append adds sealed blocks after the head, durably: when it resolves, they survive a crash. The first append to
   * an empty store names the ledger. Heights must continue the chain.
   */
  async append(ledgerId: string, blocks: readonly StoredBlock[]): Promise<{ bytesWritten: number }> {
    if (this.#readOnly) throw new Error('the local store was opened read-only');
    if (this.#damage)
      throw new IntegrityError(`the local store is damaged (${this.#damage}); only a restore can replace it`);
    if (blocks.length === 0) return { bytesWritten: 0 };
    if (this.#ledgerId !== null && this.#ledgerId !== ledgerId) {
      throw new IntegrityError(
        `the local store holds ledger ${this.#ledgerId.slice(0, 16)}, not ${ledgerId.slice(0, 16)}`,
      );
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
    const acked = this.height;
    const size = segment.size;
    let at = size;
    for (const f of frames) {
      segment.offsets.push(at);
      at += f.length;
    }
    segment.size = at;
    this.#headHash = blocks.at(-1)!.hash;
    try {
      // The records and the marker are flushed side by side: a save costs one flush, not two in a row.
      await Promise.all([writer.datasync(), this.#mark(acked)]);
    } catch (err) {
      // Neither flush is known to have happened: forget the records (the caller stops saving until a restart).
      segment.offsets.length -= frames.length;
      segment.size = size;
      throw err;
    }
    return { bytesWritten: bytes.length };
  }

  /** read yields the stored blocks from `from` to `to` (inclusive, default the head), in order. */
  async *read(from = 0, to = this.height): AsyncGenerator<StoredBlock> {
    for await (const page of this.readPages(from, to)) if ('blocks' in page) yield* page.blocks;
  }

  /** readPages is read a slice of about 4 MiB at a time: one await per slice, not per block. */
  async *readPages(from = 0, to = this.height): AsyncGenerator<ChainPage> {
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
        if (bytesRead !== buf.length)
          throw new IntegrityError(`segment ${segment.name} ended at ${start + bytesRead} while reading to ${end}`);
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
        yield { blocks: page };
        i = j + 1;
      }
    }
  }

  /**
   * replace makes a whole chain from height 0, given in batches, the store's contents: written to a new generation,
   * made durable, then switched to with one atomic rename of CURRENT. If the source throws midway (a block that fails
   * verification), the new generation is removed and the store keeps its old chain. After the switch the old
   * generation is removed, or, when the store was damaged, moved with every other chain folder into a
   * `damaged-<time>` folder beside them, never deleted: `movedAside` names it.
   */
  async replace(
    ledgerId: string,
    batches: AsyncIterable<readonly ChainPage[]> | Iterable<readonly ChainPage[]>,
  ): Promise<{ movedAside: string | null }> {
    if (this.#readOnly) throw new Error('the local store was opened read-only');
    const fresh = new LocalStore(this.dir, { segmentBytes: this.#segmentBytes });
    await fresh.#newGeneration(ledgerId, false);
    try {
      for await (const batch of batches) {
        const blocks: StoredBlock[] = [];
        for (const page of batch) {
          if ('pack' in page) throw new Error('the local store cannot hold packs yet');
          blocks.push(...page.blocks);
        }
        await fresh.append(ledgerId, blocks);
      }
      await fresh.#writer?.sync();
      await rm(join(this.dir, fresh.#generation!, PARTIAL));
      await fsyncDir(join(this.dir, fresh.#generation!));
    } catch (err) {
      await fresh.#closeFiles();
      await rm(join(this.dir, fresh.#generation!), { recursive: true, force: true });
      throw err;
    }
    await atomicWrite(join(this.dir, CURRENT), Buffer.from(`${fresh.#generation}\n`));
    const old = this.#generation;
    await this.#closeFiles();
    this.#generation = fresh.#generation;
    this.#segments = fresh.#segments;
    this.#headHash = fresh.#headHash;
    this.#ledgerId = fresh.#ledgerId;
    this.#writer = fresh.#writer;
    this.#marker ??= new HeadMarker(join(this.dir, HEAD_FILE));
    await this.#mark(this.height);
    let movedAside: string | null = null;
    if (this.#damage) {
      movedAside = await this.#moveAside(this.#damage);
      this.#movedAside = movedAside;
      this.#damage = null;
    } else if (old && old !== this.#generation) {
      await rm(join(this.dir, old), { recursive: true, force: true });
    }
    return { movedAside };
  }

  // Move every chain folder but the live one into damaged-<time>/, with a note saying why: nothing is deleted. Null
  // when there is nothing to keep (the chain folder itself was gone).
  async #moveAside(why: string): Promise<string | null> {
    const damaged = (await readdir(this.dir)).filter((n) => GENERATION.test(n) && n !== this.#generation);
    if (damaged.length === 0) return null;
    const folder = join(this.dir, `damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    await mkdir(folder, { mode: 0o700 });
    await writeFile(join(folder, 'REASON.txt'), `Moved aside by pawledger on ${new Date().toISOString()}:\n${why}\n`, {
      mode: 0o600,
    });
    for (const n of damaged) await rename(join(this.dir, n), join(folder, n));
    await fsyncDir(this.dir);
    return folder;
  }

  /** hashAt returns the hash of the stored block at `height`, or null past the head. */
  async hashAt(height: number): Promise<string | null> {
    if (height < 0 || height > this.height) return null;
    for await (const b of this.read(height, height)) return b.hash;
    return null;
  }

  async #newGeneration(ledgerId: string, publish = true): Promise<void> {
    const existing = await readdir(this.dir).catch(() => [] as string[]);
    const numbers = existing.filter((n) => GENERATION.test(n)).map(generationNumber);
    const generation = `chain-${String(Math.max(0, ...numbers) + 1).padStart(6, '0')}`;
    await mkdir(join(this.dir, generation), { mode: 0o700 });
    await fsyncDir(this.dir);
    this.#generation = generation;
    this.#ledgerId = ledgerId;
    if (publish) await atomicWrite(join(this.dir, CURRENT), Buffer.from(`${generation}\n`));
    else await atomicWrite(join(this.dir, generation, PARTIAL), Buffer.alloc(0));
  }

  async #roll(firstHeight: number): Promise<LoadedSegment> {
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
    const segment: LoadedSegment = {
      name,
      firstHeight,
      ledgerId: this.#ledgerId!,
      offsets: [],
      size: header.length,
      lastHash: null,
      tornBytes: 0,
    };
    this.#segments.push(segment);
    return segment;
  }

  async #openWriter(segment: LoadedSegment): Promise<FileHandle> {
    if (!this.#writer) {
      const path = this.#segmentPath(segment);
      if (((await stat(path)).mode & 0o200) === 0) await chmod(path, 0o600);
      this.#writer = await open(path, 'r+');
    }
    return this.#writer;
  }

  #reader(segment: LoadedSegment): Promise<FileHandle> {
    let fh = this.#readers.get(segment.name);
    if (!fh) {
      fh = open(this.#segmentPath(segment), 'r');
      this.#readers.set(segment.name, fh);
      // A failed open is not cached: the next read tries again.
      fh.catch(() => this.#readers.delete(segment.name));
    }
    return fh;
  }

  #segmentPath(segment: LoadedSegment): string {
    return join(this.dir, this.#generation!, segment.name);
  }

  /**
   * close settles the head marker at the head (so after a clean stop even the last block's loss is noticed) and
   * releases file handles; the store can be reopened later.
   */
  async close(): Promise<void> {
    if (!this.#readOnly && !this.#damage && !this.#settled) await this.#mark(this.height).catch(() => {});
    await this.#closeFiles();
  }

  async #closeFiles(): Promise<void> {
    await this.#writer?.close();
    this.#writer = null;
    await this.#marker?.close();
    const readers = [...this.#readers.values()];
    this.#readers.clear();
    for (const fh of readers) await (await fh.catch(() => null))?.close();
  }
}
