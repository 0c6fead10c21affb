import { chmod, mkdir, open, readdir, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ConflictError, IntegrityError, ValidationError } from '../errors.js';
import type { SealedCheckpoint } from '../crypto/checkpoints.js';
import { MAGIC as SEAL_MAGIC, OVERHEAD, type Sealer } from '../crypto/seal.js';
import type { ChainPage, SealedPack } from '../crypto/packs.js';
import type { StoredBlock } from '../crypto/stored-block.js';
import type { PackSpan } from '../engine/replicator.js';
import type { KeyCounts, ResealStep, StoredCheckpoint } from '../tiers/tier.js';
import {
  CURRENT,
  dropPackedSegments,
  GENERATION,
  loadChain,
  PARTIAL,
  readPackFiles,
  type LoadedChain,
} from './chain-load.js';
import {
  chainHeight,
  coveredByPacks,
  nextPackAfter,
  packAt,
  packedThrough,
  segmentEnd,
  type LoadedPack,
  type LoadedSegment,
} from './chain-index.js';
import { keepCheckpoint, listCheckpointFiles, storedCheckpoint, type CheckpointFile } from './checkpoint-file.js';
import { ChainReader } from './chain-reader.js';
import { fsError } from './fs-errors.js';
import { atomicWrite, fsyncDir, syncFiles } from './fsutil.js';
import { moveAside } from './move-aside.js';
import { HEAD_FILE, HEAD_KEPT, HeadMarker } from './head-marker.js';
import { encodePackFile, packFileName } from './pack-file.js';
import { KeyTally, resealFiles, type SealedFiles } from './reseal-files.js';
import { encodeRecord, encodeSegmentHeader } from './segment-format.js';

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
 * generation folder named by the CURRENT file; each generation holds segment files of framed sealed blocks, pack
 * files of settled blocks compacted (putPack), and the newest checkpoints of the world state. A save appends its
 * records with one write and one fdatasync, and advances the head marker (HEAD) beside them: its cost does not grow
 * with the chain, and a store that later lacks an acknowledged block says so at open. Replacing the chain (a restore
 * or an import) writes a new generation and switches CURRENT atomically, so a crash leaves one or the other.
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
  #packs: LoadedPack[] = [];
  #packedThrough = -1;
  #spans: readonly PackSpan[] = [];
  /** checkpoints are the kept checkpoint files' headers, newest first. */
  #checkpoints: CheckpointFile[] = [];
  #headHash: string | null = null;
  #writer: FileHandle | null = null;
  #marker: HeadMarker | null = null;
  #damage: string | null = null;
  #movedAside: string | null = null;
  /** settled is true while the marker already says the head is acknowledged: close() then writes nothing. */
  #settled = false;
  // Whether the live generation holds HEAD_KEPT (a marker names it): written once, after the marker's first write.
  #keepsHead = false;
  readonly #files: ChainReader;
  /** keys remembers the sealed files' counts by key id (key rotation). */
  readonly #keys = new KeyTally();

  private constructor(dir: string, options: LocalStoreOptions) {
    this.dir = dir;
    this.#segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.#readOnly = options.readOnly ?? false;
    this.#files = new ChainReader(
      dir,
      () => ({ generation: this.#generation, segments: this.#segments, packs: this.#packs }),
      () => this.#learnPacks(),
    );
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
    return chainHeight(this.#segments, this.#packs);
  }

  /** packedThrough is the highest height H such that packs hold blocks 0..H (-1: none). */
  packedThrough(): number {
    return this.#packedThrough;
  }

  /** packs are where the store's packs lie, oldest first (what the chain uses of each). */
  packs(): readonly PackSpan[] {
    return this.#spans;
  }

  #setPacks(packs: LoadedPack[]): void {
    this.#packs = packs;
    this.#packedThrough = packedThrough(packs);
    this.#spans = packs.map((p) => ({ from: p.from, to: p.to, hash: p.hash }));
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
    let loaded: LoadedChain;
    try {
      loaded = await this.#loadChain((id) => (hint = id));
    } catch (err) {
      if (!(err instanceof IntegrityError) || onDamage === 'throw') throw err;
      this.#damage = err.message;
      this.#ledgerId = hint;
      return { segments: 0, tornBytes: 0, damage: err.message };
    }
    this.#generation = loaded.generation;
    this.#keepsHead = loaded.keepsHead;
    this.#ledgerId = loaded.ledgerId;
    this.#segments = loaded.segments;
    this.#setPacks(loaded.packs);
    this.#headHash = loaded.headHash;
    if (loaded.generation) this.#checkpoints = await listCheckpointFiles(join(this.dir, loaded.generation));
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

  // A read-only open beside a writer can see a file vanish between listing and reading it (compaction deleting a
  // segment its packs now hold): look again.
  async #loadChain(hint: (id: string) => void): Promise<LoadedChain> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await loadChain(this.dir, this.#readOnly, hint);
      } catch (err) {
        if (!this.#readOnly || attempt >= 5 || (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
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
    if (!this.#keepsHead) {
      // From now on a missing marker is damage: say so in the generation, durably (once per generation).
      const genDir = join(this.dir, this.#generation);
      await writeFile(join(genDir, HEAD_KEPT), '', { mode: 0o400, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST' && err.code !== 'EACCES') throw err;
      });
      await fsyncDir(genDir);
      this.#keepsHead = true;
    }
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
    // A new segment also after a pack that a restore stored past the last segment: a segment's heights run on.
    if (!segment || segment.size >= this.#segmentBytes || segmentEnd(segment) + 1 !== blocks[0]!.height)
      segment = await this.#roll(blocks[0]!.height);
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

  /**
   * readPages yields the chain from `from` to `to` (inclusive, default the head) in order, as the store holds it: a
   * pack as one page (the whole pack, with from/to clipped to the request), loose blocks in slices of about 4 MiB.
   * Memory stays bounded by one pack or one slice.
   */
  readPages(from = 0, to = this.height): AsyncGenerator<ChainPage> {
    return this.#files.readPages(from, to);
  }

  /** hashAt returns the hash of the stored block at `height` (loose or in a pack), or null past the head. */
  hashAt(height: number): Promise<string | null> {
    return this.#files.hashAt(height);
  }

  /**
   * putPack replaces the loose blocks pack.from..pack.to by `pack`, which holds the same blocks: they must be the
   * loose blocks right after packedThrough() (ConflictError otherwise; ValidationError for a malformed pack). The pack
   * file is durable (temp file, fsync, rename, fsync of the folder) before any loose copy stops being read; then
   * the finished segments that packs now hold whole are deleted. A crash at any point leaves every block readable,
   * from the pack or its loose copy. Putting a pack the store already holds does nothing.
   */
  async putPack(ledgerId: string, pack: SealedPack): Promise<{ bytesWritten: number }> {
    this.#assertWritable();
    if (this.#ledgerId !== ledgerId)
      throw new ConflictError(`the local store holds ledger ${String(this.#ledgerId).slice(0, 16)}, not ${ledgerId}`);
    const count = pack.to - pack.from + 1;
    if (!Number.isSafeInteger(pack.from) || pack.from < 0 || count < 1 || pack.hashes.length !== count)
      throw new ValidationError(`a pack of blocks ${pack.from}-${pack.to} must list ${count} hashes`, 'pack');
    // The store holds no key, so it cannot open the seal (the compactor sealed the pack from blocks it just opened);
    // it refuses at least what is not a sealed object at all, which would leave the store unreadable.
    if (pack.sealed.length <= OVERHEAD || !pack.sealed.subarray(0, 4).equals(SEAL_MAGIC))
      throw new ValidationError(`the pack of blocks ${pack.from}-${pack.to} holds no sealed object`, 'pack');
    const held = packAt(this.#packs, pack.from);
    if (held?.from === pack.from && held.to === pack.to && held.hash === pack.hashes.at(-1)) return { bytesWritten: 0 };
    const first = this.#packedThrough + 1;
    if (pack.from !== first || pack.to > this.height)
      throw new ConflictError(
        `a pack of blocks ${pack.from}-${pack.to} cannot be stored: the next pack starts at block ${first} and ends by the head, block ${this.height}`,
      );
    const next = nextPackAfter(this.#packs, pack.from);
    if (next && next.from <= pack.to)
      throw new ConflictError(`a pack of blocks ${pack.from}-${pack.to} overlaps the stored pack ${next.name}`);
    for await (const page of this.readPages(pack.from, pack.to)) {
      if (!('blocks' in page)) throw new ConflictError(`blocks ${page.from}-${page.to} are packed already`);
      for (const b of page.blocks) {
        const want = pack.hashes[b.height - pack.from]!;
        if (b.hash !== want)
          throw new ConflictError(
            `the pack's block ${b.height} is ${want.slice(0, 16)}, the stored block ${b.height} is ${b.hash.slice(0, 16)}`,
          );
      }
    }
    const genDir = join(this.dir, this.#generation!);
    const bytes = encodePackFile(ledgerId, pack);
    const name = packFileName(pack.from, pack.to);
    await atomicWrite(join(genDir, name), bytes, 0o400);
    const entry: LoadedPack = { name, from: pack.from, to: pack.to, packTo: pack.to, hash: pack.hashes.at(-1)! };
    this.#setPacks([...this.#packs, entry].sort((a, b) => a.from - b.from));
    // Only now that the pack is durable may the loose copies go.
    const loaded = { segments: this.#segments, packs: this.#packs };
    const dropped = await dropPackedSegments(genDir, loaded);
    this.#segments = loaded.segments;
    this.#files.forget(dropped.map((s) => s.name));
    return { bytesWritten: bytes.length };
  }

  /**
   * putCheckpoint keeps a sealed checkpoint of the state after block cp.height, durably and atomically (a crash
   * leaves it whole or absent), and the newest KEPT_CHECKPOINTS of them. cp.hash must be the stored block's hash at
   * cp.height (ConflictError otherwise: a checkpoint of another chain, or past the head). Its parts are written one
   * at a time: a StoredCheckpoint (a tier's, read on demand) is never held whole in memory.
   */
  async putCheckpoint(cp: SealedCheckpoint | StoredCheckpoint): Promise<{ bytesWritten: number }> {
    this.#assertWritable();
    const hash = await this.hashAt(cp.height);
    if (hash !== cp.hash) {
      throw new ConflictError(
        hash === null
          ? `a checkpoint at block ${cp.height} is past the local head, block ${this.height}`
          : `the checkpoint is of block ${cp.height} ${cp.hash.slice(0, 16)}, but the stored block ${cp.height} is ${hash.slice(0, 16)}`,
      );
    }
    const kept = await keepCheckpoint(join(this.dir, this.#generation!), this.#checkpoints, cp);
    this.#checkpoints = kept.files;
    return { bytesWritten: kept.bytesWritten };
  }

  /** checkpoint is the newest kept checkpoint at or below the head whose block is the chain's, or null. */
  async checkpoint(): Promise<StoredCheckpoint | null> {
    for (const f of this.#checkpoints) {
      if ((await this.hashAt(f.height)) === f.hash) return storedCheckpoint(join(this.dir, this.#generation!), f);
    }
    return null;
  }

  /**
   * keyCounts counts the sealed objects of the live generation by the id of the key that sealed them, from their
   * headers (nothing is opened): every record of the segment files, every pack file and every part of the kept
   * checkpoints, as the tier contract's keyCounts does (tiers/tier.ts). Records a pack supersedes count while their
   * segment is still on disk: their bytes would still open with the old key, so rotation rewrites them too
   * (store/reseal-files.ts). A file unchanged since the last count is not read again.
   */
  async keyCounts(): Promise<KeyCounts> {
    const files = this.#sealedFiles();
    if (!files) return {};
    try {
      return await this.#keys.total(files);
    } catch (err) {
      throw fsError(err, this.dir);
    }
  }

  /**
   * reseal is one bounded step of a key rotation, with the same meaning as the tier contract's (tiers/tier.ts): it
   * rewrites at most `limit` sealed objects still under a key other than sealer.keyId, opened with the keyring and
   * sealed again under the active key, and says how many remain. Each file is rewritten whole under its own name,
   * atomically (temp file, fsync, rename, fsync of the folder), so a crash at any moment leaves a store that opens
   * with every acknowledged block, and the next step goes on from the headers. Segments keep their records, sizes and
   * offsets (a seal's length does not depend on the key): loose blocks stay loose and packs stay packs, so the
   * compactor's view does not change. The segment saves append to may be rewritten: its writer is reopened at the next
   * append. Files are taken packs first, then segments, then checkpoints; one holding more stale objects than the
   * step has left is rewritten with its first ones re-sealed, the rest left to the next step. An object under a key
   * the keyring lacks throws IntegrityError naming the key id before anything is written; a limit below 1 throws
   * ValidationError. Like append, it must not run beside a save (the caller holds the save lock around each step).
   */
  async reseal(sealer: Sealer, limit: number): Promise<ResealStep> {
    if (this.#readOnly) throw new Error('the local store was opened read-only');
    if (this.#damage)
      throw new IntegrityError(`the local store is damaged (${this.#damage}); only a restore can replace it`);
    const files = this.#sealedFiles();
    if (!files) return { resealed: 0, remaining: 0 };
    try {
      return await resealFiles(files, this.#keys, sealer, limit, {
        before: async (name) => {
          if (name !== this.#segments.at(-1)?.name) return;
          // Saves must append to the new file, not to the one it replaces: the writer reopens at the next append.
          const writer = this.#writer;
          this.#writer = null;
          await writer?.close();
        },
        after: (name) => this.#files.forget([name]),
      });
    } catch (err) {
      throw fsError(err, this.dir);
    }
  }

  #sealedFiles(): SealedFiles | null {
    if (this.#generation === null || this.#ledgerId === null) return null;
    return {
      genDir: join(this.dir, this.#generation),
      ledgerId: this.#ledgerId,
      segments: this.#segments,
      packs: this.#packs,
      checkpoints: this.#checkpoints,
    };
  }

  // A read-only store learns of the packs a writer beside it made since it opened (and forgets the segments the writer
  // deleted for them). True when it learnt something.
  async #learnPacks(): Promise<boolean> {
    if (!this.#readOnly || this.#generation === null) return false;
    const genDir = join(this.dir, this.#generation);
    const known = new Set(this.#packs.map((p) => p.name));
    const added = await readPackFiles(
      genDir,
      (await readdir(genDir)).filter((n) => !known.has(n)),
    );
    if (added.length === 0) return false;
    this.#setPacks([...this.#packs, ...added].sort((a, b) => a.from - b.from));
    this.#segments = this.#segments.filter(
      (s, i) => i === this.#segments.length - 1 || !coveredByPacks(this.#packs, s.firstHeight, segmentEnd(s)),
    );
    return true;
  }

  #assertWritable(): void {
    if (this.#readOnly) throw new Error('the local store was opened read-only');
    if (this.#damage)
      throw new IntegrityError(`the local store is damaged (${this.#damage}); only a restore can replace it`);
    if (this.#generation === null) throw new ConflictError('the local store is empty: it holds no blocks to pack');
  }

  /**
   * replace makes a whole chain from height 0, given in batches, the store's contents: written to a new generation,
   * made durable, then switched to with one atomic rename of CURRENT. If the source throws midway (a block that fails
   * verification), the new generation is removed and the store keeps its old chain. After the switch the old
   * generation is removed, or, when the store was damaged, moved with every other chain folder into a
   * `damaged-<time>` folder beside them, never deleted: `movedAside` names it.
   *
   * Pack pages are stored as packs. A chain read from block 0 holds each pack from its first block (a page starting
   * inside a pack throws ValidationError); it may end inside one (an older backup's head), and the blocks after that
   * are then not part of the chain. `checkpoint`, when given, is kept in the new generation (its block must be the
   * chain's, else ConflictError), as putCheckpoint keeps one: a restore may pass the tier's StoredCheckpoint.
   */
  async replace(
    ledgerId: string,
    batches: AsyncIterable<readonly ChainPage[]> | Iterable<readonly ChainPage[]>,
    checkpoint?: SealedCheckpoint | StoredCheckpoint,
  ): Promise<{ movedAside: string | null }> {
    if (this.#readOnly) throw new Error('the local store was opened read-only');
    const fresh = new LocalStore(this.dir, { segmentBytes: this.#segmentBytes });
    await fresh.#newGeneration(ledgerId, false);
    const genDir = join(this.dir, fresh.#generation!);
    try {
      const written: string[] = [];
      for await (const batch of batches) {
        let blocks: StoredBlock[] = [];
        for (const page of batch) {
          if ('blocks' in page) {
            blocks.push(...page.blocks);
            continue;
          }
          await fresh.append(ledgerId, blocks);
          blocks = [];
          written.push(await fresh.#storePack(ledgerId, page));
        }
        await fresh.append(ledgerId, blocks);
      }
      await fresh.#writer?.sync();
      await syncFiles(genDir, written);
      if (checkpoint) await fresh.putCheckpoint(checkpoint);
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
    this.#keepsHead = false;
    this.#segments = fresh.#segments;
    this.#setPacks(fresh.#packs);
    this.#checkpoints = fresh.#checkpoints;
    this.#headHash = fresh.#headHash;
    this.#ledgerId = fresh.#ledgerId;
    this.#writer = fresh.#writer;
    await fresh.#files.close();
    this.#marker ??= new HeadMarker(join(this.dir, HEAD_FILE));
    await this.#mark(this.height);
    let movedAside: string | null = null;
    if (this.#damage) {
      movedAside = await moveAside(this.dir, this.#generation!, this.#damage);
      this.#movedAside = movedAside;
      this.#damage = null;
    } else if (old && old !== this.#generation) {
      await rm(join(this.dir, old), { recursive: true, force: true });
    }
    return { movedAside };
  }

  // Write a restore's pack page into this (new, PARTIAL) generation, unsynced: replace syncs every file at the end.
  async #storePack(ledgerId: string, page: { pack: SealedPack; from: number; to: number }): Promise<string> {
    const { pack } = page;
    if (
      page.from !== pack.from ||
      page.to < pack.from ||
      page.to > pack.to ||
      pack.hashes.length !== pack.to - pack.from + 1
    )
      throw new ValidationError(
        `a chain read from block 0 cannot hold blocks ${page.from}-${page.to} of the pack of blocks ${pack.from}-${pack.to}: a pack is stored from its first block`,
        'pack',
      );
    if (page.from !== this.height + 1)
      throw new IntegrityError(`the pack of blocks ${pack.from}-${pack.to} cannot follow stored block ${this.height}`);
    const name = packFileName(pack.from, page.to);
    await writeFile(join(this.dir, this.#generation!, name), encodePackFile(ledgerId, pack), {
      flag: 'wx',
      mode: 0o400,
    });
    const hash = pack.hashes[page.to - pack.from]!;
    this.#setPacks([...this.#packs, { name, from: pack.from, to: page.to, packTo: pack.to, hash }]);
    this.#headHash = hash;
    return name;
  }

  async #newGeneration(ledgerId: string, publish = true): Promise<void> {
    const existing = await readdir(this.dir).catch(() => [] as string[]);
    const numbers = existing.filter((n) => GENERATION.test(n)).map(generationNumber);
    const generation = `chain-${String(Math.max(0, ...numbers) + 1).padStart(6, '0')}`;
    await mkdir(join(this.dir, generation), { mode: 0o700 });
    await fsyncDir(this.dir);
    this.#generation = generation;
    this.#keepsHead = false;
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
    await this.#files.close();
  }
}
