import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChainPage, SealedPack } from '../crypto/packs.js';
import type { StoredBlock } from '../crypto/stored-block.js';
import { IntegrityError } from '../errors.js';
import {
  chainHeight,
  nextPackAfter,
  packAt,
  segmentAt,
  segmentEnd,
  type LoadedPack,
  type LoadedSegment,
} from './chain-index.js';
import { PACK_HASHES_AT, packOf } from './pack-file.js';
import { RECORD_HEADER_BYTES } from './segment-format.js';

/** ChainView is what a reader reads: the live generation's files, as the store knows them now. */
export interface ChainView {
  generation: string | null;
  segments: readonly LoadedSegment[];
  packs: readonly LoadedPack[];
}

/**
 * ChainReader reads the local store's chain from its files: pages (packs whole, loose blocks in slices) and single
 * hashes. It looks the files up afresh at each step, so that a read beside compaction (which deletes the segments
 * packs hold whole) goes on from the pack. One handle per file, opened once: concurrent first reads share the opening.
 */
export class ChainReader {
  readonly #readers = new Map<string, Promise<FileHandle>>();

  constructor(
    readonly dir: string,
    readonly view: () => ChainView,
    /**
     * refresh is called when a segment file is gone (a writer beside a read-only store compacted it); it resolves
     * true when the view changed and a read may look again.
     */
    readonly refresh: () => Promise<boolean> = async () => false,
  ) {}

  #view(): ChainView {
    return this.view();
  }

  #height(): number {
    return chainHeight(this.view().segments, this.view().packs);
  }

  /**
   * readPages yields the chain from `from` to `to` (inclusive, default the head) in order, as the store holds it: a
   * pack as one page (the whole pack, with from/to clipped to the request), loose blocks in slices of about 4 MiB.
   * Memory stays bounded by one pack or one slice; one await per page, not per block.
   */
  async *readPages(from: number, to: number): AsyncGenerator<ChainPage> {
    let h = Math.max(0, from);
    while (h <= Math.min(to, this.#height())) {
      const pack = packAt(this.#view().packs, h);
      if (pack) {
        const end = Math.min(to, pack.to);
        yield { pack: await this.#pack(pack), from: h, to: end };
        h = end + 1;
        continue;
      }
      const segment = segmentAt(this.#view().segments, h);
      if (!segment) throw new IntegrityError(`block ${h} of the local store ${this.dir} is in no pack and no segment`);
      const next = nextPackAfter(this.#view().packs, h);
      const last = Math.min(to, segmentEnd(segment), next ? next.from - 1 : Infinity);
      const blocks = await this.#loose(segment, h, last);
      // The segment was deleted meanwhile (packs hold its blocks now): look again.
      if (!blocks) continue;
      yield { blocks };
      h = blocks.at(-1)!.height + 1;
    }
  }

  // The loose blocks of `segment` from `first` on (to `last` at most, about 4 MiB), or null when compaction deleted
  // the segment while it was being read.
  async #loose(segment: LoadedSegment, first: number, last: number): Promise<StoredBlock[] | null> {
    const i = first - segment.firstHeight;
    let j = i;
    while (j < last - segment.firstHeight && segment.offsets[j + 1]! - segment.offsets[i]! < 4 * 1024 * 1024) j++;
    const start = segment.offsets[i]!;
    const end = j + 1 < segment.offsets.length ? segment.offsets[j + 1]! : segment.size;
    const buf = Buffer.allocUnsafe(end - start);
    let bytesRead: number;
    try {
      bytesRead = (await (await this.#open(segment.name)).read(buf, 0, buf.length, start)).bytesRead;
    } catch (err) {
      if (!this.#view().segments.includes(segment) || (await this.#refreshed(err))) return null;
      throw err;
    }
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
    return page;
  }

  // A pack file's pack, its checksums checked (damage since the open is an IntegrityError naming the file).
  async #pack(pack: LoadedPack): Promise<SealedPack> {
    const path = join(this.dir, this.#view().generation!, pack.name);
    for (let attempt = 1; ; attempt++) {
      const fh = await this.#open(pack.name);
      try {
        const size = (await fh.stat()).size;
        const buf = Buffer.allocUnsafe(size);
        const { bytesRead } = await fh.read(buf, 0, size, 0);
        if (bytesRead !== size)
          throw new IntegrityError(`pack file ${path} ended at ${bytesRead} while reading ${size}`);
        return packOf(path, buf);
      } catch (err) {
        // Key rotation replaced the file between the two reads and closed the handle (forget): read the new one.
        if (attempt < 3 && (err as NodeJS.ErrnoException).code === 'EBADF') continue;
        throw err;
      }
    }
  }

  /** hashAt returns the hash of the stored block at `height` (loose or in a pack), or null past the head. */
  async hashAt(height: number): Promise<string | null> {
    for (;;) {
      if (height < 0 || height > this.#height()) return null;
      const pack = packAt(this.#view().packs, height);
      const segment = pack ? null : segmentAt(this.#view().segments, height);
      if (!pack && !segment) return null;
      const at = pack
        ? PACK_HASHES_AT + 32 * (height - pack.from)
        : segment!.offsets[height - segment!.firstHeight]! + 12;
      const buf = Buffer.alloc(32);
      try {
        const { bytesRead } = await (await this.#open(pack ? pack.name : segment!.name)).read(buf, 0, 32, at);
        if (bytesRead !== 32) throw new IntegrityError(`the local store's block ${height} is cut short`);
      } catch (err) {
        // Its segment was deleted meanwhile (packs hold it now): look again.
        if (segment && (!this.#view().segments.includes(segment) || (await this.#refreshed(err)))) continue;
        throw err;
      }
      return buf.toString('hex');
    }
  }

  #open(name: string): Promise<FileHandle> {
    let fh = this.#readers.get(name);
    if (!fh) {
      const opening = open(join(this.dir, this.#view().generation!, name), 'r');
      this.#readers.set(name, opening);
      // A failed open is not cached: the next read tries again.
      opening.catch(() => {
        if (this.#readers.get(name) === opening) this.#readers.delete(name);
      });
      fh = opening;
    }
    return fh;
  }

  // A segment that vanished under a read-only store: the writer packed it; learn of its packs.
  async #refreshed(err: unknown): Promise<boolean> {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' && (await this.refresh());
  }

  /**
   * forget closes the handles of files that were deleted or replaced (reads in flight on them look again; a read
   * already issued finishes first, on the old file).
   */
  forget(names: readonly string[]): void {
    for (const name of names) {
      const fh = this.#readers.get(name);
      this.#readers.delete(name);
      void fh?.then((h) => h.close()).catch(() => {});
    }
  }

  /** close closes every handle; later reads open files again. */
  async close(): Promise<void> {
    const readers = [...this.#readers.values()];
    this.#readers.clear();
    for (const fh of readers) await (await fh.catch(() => null))?.close();
  }
}
