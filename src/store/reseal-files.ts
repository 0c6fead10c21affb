import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CHECKPOINT_PART_HEAD, checkpointPartSealed } from '../crypto/checkpoints.js';
import { keyIdOf, needsReseal, resealBlock, resealCheckpoint, resealPack } from '../crypto/reseal.js';
import { OVERHEAD, type Sealer } from '../crypto/seal.js';
import { IntegrityError, ValidationError } from '../errors.js';
import type { KeyCounts, ResealStep } from '../tiers/tier.js';
import type { LoadedPack, LoadedSegment } from './chain-index.js';
import { partHeads, storedCheckpoint, writeCheckpointFile, type CheckpointFile } from './checkpoint-file.js';
import { atomicWrite } from './fsutil.js';
import { encodePackFile, PACK_HASHES_AT, packOf } from './pack-file.js';
import { encodeRecord, RECORD_HEADER_BYTES } from './segment-format.js';

/**
 * Key rotation in the local store (LocalStore.keyCounts and reseal). A generation holds sealed bytes in three kinds
 * of file: segments (one sealed block per record), pack files (one sealed pack each) and checkpoint files (one sealed
 * object per part). The head marker, CURRENT and the accumulator file beside them hold no sealed bytes.
 *
 * What counts: every sealed object in those files, by the key id in its header. That includes the records of a
 * segment that a pack supersedes while the segment stays on disk (the last segment is never deleted, and a segment
 * the packed boundary runs through keeps its packed records until packs cover it whole): no read uses them, but their
 * bytes are still in a live file and the old key would open them, so rotation rewrites them too. Rotation is done
 * when the old key opens nothing in the generation, and the counts say exactly what it still has to rewrite.
 *
 * How a file is rewritten: whole, under its own name, atomically (temp file, fsync, rename over, fsync of the folder),
 * each object opened with the keyring and sealed again under the active key bound to the same context
 * (crypto/reseal.ts). A crash leaves the old file or the new one, both whole and both opening with the keyring of old
 * and new key; a temp file left behind is removed at the next open. A sealed object's length depends only on its
 * plaintext, so a rewritten segment has the same size and its records the same offsets: the store's index of it
 * stays true, and only file handles are reopened (the writer's, if it is the segment saves append to). Loose blocks
 * stay loose, packs stay the packs they were: the store's layout and the compactor's view of it do not change. A step
 * reseals at most `limit` objects; a file holding more than the step has left is rewritten with its first ones
 * resealed, and the next step goes on with the rest (files mixing keys are fine: each object names its own key).
 */

/** SealedFiles is the live generation as the store knows it: where its sealed objects are. */
export interface SealedFiles {
  genDir: string;
  ledgerId: string;
  segments: readonly LoadedSegment[];
  packs: readonly LoadedPack[];
  checkpoints: readonly CheckpointFile[];
}

type SealedFile =
  | { kind: 'pack'; name: string }
  | { kind: 'segment'; name: string; segment: LoadedSegment; last: boolean }
  | { kind: 'checkpoint'; name: string; checkpoint: CheckpointFile };

function filesOf(view: SealedFiles): SealedFile[] {
  return [
    ...view.packs.map((p): SealedFile => ({ kind: 'pack', name: p.name })),
    ...view.segments.map(
      (s, i): SealedFile => ({ kind: 'segment', name: s.name, segment: s, last: i === view.segments.length - 1 }),
    ),
    ...view.checkpoints.map((c): SealedFile => ({ kind: 'checkpoint', name: c.name, checkpoint: c })),
  ];
}

// The records of a segment's first `size` bytes: where each starts and what it holds.
function* records(buf: Buffer, segment: { firstHeight: number }, offsets: readonly number[]) {
  for (const [i, at] of offsets.entries()) {
    const end = at + RECORD_HEADER_BYTES + buf.readUInt32LE(at);
    yield {
      at,
      end,
      height: segment.firstHeight + i,
      hash: buf.toString('hex', at + 12, at + 44),
      sealed: buf.subarray(at + RECORD_HEADER_BYTES, end),
    };
  }
}

async function readSegment(path: string, size: number): Promise<Buffer> {
  const buf = await readFile(path);
  if (buf.length < size) throw new IntegrityError(`segment ${path} is ${buf.length} bytes, the store holds ${size}`);
  return buf.subarray(0, size);
}

function add(counts: Map<string, number>, id: string, n = 1): void {
  counts.set(id, (counts.get(id) ?? 0) + n);
}

// The first bytes of the sealed object in a pack file (its header names the key), read in place: a pack is large.
async function packSealedHead(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const count = Buffer.alloc(4);
    if ((await fh.read(count, 0, 4, PACK_HASHES_AT - 4)).bytesRead !== 4)
      throw new IntegrityError(`pack file ${path} is cut short`);
    const head = Buffer.alloc(OVERHEAD);
    const { bytesRead } = await fh.read(head, 0, OVERHEAD, PACK_HASHES_AT + 32 * count.readUInt32LE(0));
    return head.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

// What one file holds, by key id, from the objects' headers (nothing is opened, packs and checkpoints are not read
// whole). Segments are read whole: their records are small and close together.
async function countFile(genDir: string, file: SealedFile): Promise<Map<string, number>> {
  const path = join(genDir, file.name);
  const counts = new Map<string, number>();
  if (file.kind === 'pack') add(counts, keyIdOf(await packSealedHead(path)));
  else if (file.kind === 'segment') {
    const offsets = file.segment.offsets.slice();
    const size = offsets.length === 0 ? 0 : file.segment.size;
    const buf = offsets.length === 0 ? Buffer.alloc(0) : await readSegment(path, size);
    for (const r of records(buf, file.segment, offsets)) add(counts, keyIdOf(r.sealed));
  } else {
    for (const head of await partHeads(genDir, file.checkpoint, CHECKPOINT_PART_HEAD + OVERHEAD))
      add(counts, keyIdOf(checkpointPartSealed(head)));
  }
  return counts;
}

/**
 * KeyTally counts a generation's sealed objects by key id, and remembers each file's counts while the file is
 * unchanged (same inode, size and modification time; for a segment, the same number of records), so that a count or a
 * rotation step reads only the files that changed since the last one (the segment saves append to, those it rewrote).
 */
export class KeyTally {
  readonly #known = new Map<string, { stamp: string; counts: Map<string, number> }>();

  /** byFile counts every sealed file of the generation (in the order rotation takes them). */
  async byFile(view: SealedFiles): Promise<{ file: SealedFile; counts: Map<string, number> }[]> {
    const out: { file: SealedFile; counts: Map<string, number> }[] = [];
    const seen = new Set<string>();
    for (const file of filesOf(view)) {
      const path = join(view.genDir, file.name);
      seen.add(path);
      try {
        const st = await stat(path);
        const records = file.kind === 'segment' ? file.segment.offsets.length : 0;
        const stamp = `${st.ino}:${st.size}:${st.mtimeMs}:${records}`;
        let known = this.#known.get(path);
        if (known?.stamp !== stamp) {
          known = { stamp, counts: await countFile(view.genDir, file) };
          this.#known.set(path, known);
        }
        out.push({ file, counts: known.counts });
      } catch (err) {
        // A count beside a compaction or a new checkpoint: the file was deleted meanwhile, its objects with it.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    // Files deleted (segments packs hold whole, older checkpoints) or of an older generation.
    for (const path of this.#known.keys()) if (!seen.has(path)) this.#known.delete(path);
    return out;
  }

  /** total is every sealed object of the generation, by key id. */
  async total(view: SealedFiles): Promise<KeyCounts> {
    const total = new Map<string, number>();
    for (const { counts } of await this.byFile(view)) for (const [id, n] of counts) add(total, id, n);
    return Object.fromEntries([...total].sort(([a], [b]) => a.localeCompare(b)));
  }

  /** forget drops what is remembered of a file (it was rewritten). */
  forget(path: string): void {
    this.#known.delete(path);
  }
}

/** ResealHooks let the store release what it holds open on a file about to be replaced. */
export interface ResealHooks {
  /** before is called before a file is rewritten (the store closes its writer if saves append to it). */
  before(name: string): Promise<void>;
  /** after is called once the file was replaced, or the attempt failed (the store drops its read handles). */
  after(name: string): void;
}

/**
 * resealFiles is one step of a key rotation of the generation `view`: it rewrites files until `limit` objects under
 * another key than sealer.keyId were sealed again under it, or none is left. Before anything is written, every
 * object's key id is checked against the keyring: one the keyring lacks throws IntegrityError naming the key id and
 * the file, and the step changes nothing. An object that does not open with its key throws IntegrityError too; the
 * files rewritten before it in the step stay rewritten (each whole), the file it is in is left as it was.
 */
export async function resealFiles(
  view: SealedFiles,
  tally: KeyTally,
  sealer: Sealer,
  limit: number,
  hooks: ResealHooks,
): Promise<ResealStep> {
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new ValidationError(`a re-seal step's limit must be a positive whole number, not ${limit}`, 'limit');
  const files = await tally.byFile(view);
  const ring = new Set(sealer.keyIds);
  let remaining = 0;
  for (const { file, counts } of files) {
    for (const [id, n] of counts) {
      if (id !== sealer.keyId) remaining += n;
      if (ring.has(id)) continue;
      const path = join(view.genDir, file.name);
      const held = sealer.previousKeyIds.length
        ? `the keyring holds ${sealer.keyId} (active) and ${sealer.previousKeyIds.join(', ')} (previous)`
        : `the keyring holds only ${sealer.keyId}`;
      const what =
        id === 'unsealed'
          ? `${n} object(s) that are not sealed objects`
          : `${n} object(s) sealed with key ${id}, but ${held}`;
      throw new IntegrityError(`${path} holds ${what}: nothing was re-sealed`, {
        hint:
          id === 'unsealed'
            ? 'Restore the store from a verified tier'
            : `Add the key with id ${id} to LEDGER_PREVIOUS_KEYS (pawledger doctor shows a key's id), then rotate again`,
      });
    }
  }
  let resealed = 0;
  for (const { file, counts } of files) {
    if (resealed >= limit) break;
    let stale = 0;
    for (const [id, n] of counts) if (id !== sealer.keyId) stale += n;
    if (stale === 0) continue;
    const path = join(view.genDir, file.name);
    await hooks.before(file.name);
    try {
      resealed += await rewrite(view, file, sealer, limit - resealed);
    } finally {
      tally.forget(path);
      hooks.after(file.name);
    }
  }
  return { resealed, remaining: remaining - resealed };
}

// Rewrite one file with at most `budget` of its objects sealed again; returns how many were.
async function rewrite(view: SealedFiles, file: SealedFile, sealer: Sealer, budget: number): Promise<number> {
  const path = join(view.genDir, file.name);
  if (file.kind === 'pack') {
    const pack = packOf(path, await readFile(path));
    if (!needsReseal(sealer, pack.sealed)) return 0;
    await atomicWrite(path, encodePackFile(view.ledgerId, resealPack(sealer, view.ledgerId, pack, path)), 0o400);
    return 1;
  }
  if (file.kind === 'segment') {
    const { segment } = file;
    const old = await readSegment(path, segment.size);
    const out = Buffer.from(old);
    let n = 0;
    for (const r of records(old, segment, segment.offsets)) {
      if (n >= budget) break;
      if (!needsReseal(sealer, r.sealed)) continue;
      const again = resealBlock(sealer, view.ledgerId, { height: r.height, hash: r.hash, sealed: r.sealed }, path);
      const frame = encodeRecord(r.height, r.hash, again.sealed);
      // Never expected (a seal's length is its plaintext's plus a constant), but offsets must not move.
      if (frame.length !== r.end - r.at) throw new Error(`re-sealing block ${r.height} of ${path} changed its length`);
      frame.copy(out, r.at);
      n++;
    }
    // Finished segments are read-only, the one saves append to is not.
    await atomicWrite(path, out, file.last ? 0o600 : 0o400);
    return n;
  }
  const { checkpoint } = file;
  const stored = storedCheckpoint(view.genDir, checkpoint);
  let n = 0;
  await writeCheckpointFile(view.genDir, {
    height: checkpoint.height,
    hash: checkpoint.hash,
    async *parts() {
      for await (const part of stored.parts()) {
        if (n < budget && needsReseal(sealer, checkpointPartSealed(part))) {
          n++;
          yield resealCheckpoint(sealer, view.ledgerId, checkpoint, part, path);
        } else yield part;
      }
    },
  });
  return n;
}
