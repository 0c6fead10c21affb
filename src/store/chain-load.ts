import { open, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { IntegrityError } from '../errors.js';
import { fsyncDir } from './fsutil.js';
import { HEAD_FILE, HEAD_KEPT, readHeadMark, type HeadMark } from './head-marker.js';
import {
  chainHeight,
  coveredByPacks,
  firstGap,
  packAt,
  segmentAt,
  segmentEnd,
  skipPacks,
  type LoadedPack,
  type LoadedSegment,
} from './chain-index.js';
import { PACK_FILE, PACK_HASHES_AT, scanPackFile } from './pack-file.js';
import { scanSegment } from './segment-scan.js';

/** CURRENT names the live generation folder. */
export const CURRENT = 'CURRENT';
/** PARTIAL marks a generation that a replace is still writing: garbage if a crash leaves it. */
export const PARTIAL = 'PARTIAL';
/** GENERATION matches a generation folder's name. */
export const GENERATION = /^chain-\d{6}$/;

export type { LoadedPack, LoadedSegment } from './chain-index.js';

/** TEMP_FILE matches a file a crash left half written (fsutil.ts atomicWrite's temp files): garbage. */
export const TEMP_FILE = /\.tmp-\d+-\d+$/;

/** LoadedChain is what loading a store's folder found (and, unless read-only, repaired). */
export interface LoadedChain {
  generation: string | null;
  ledgerId: string | null;
  segments: LoadedSegment[];
  packs: LoadedPack[];
  headHash: string | null;
  tornBytes: number;
  /** mark is the head marker as read (null when the folder has none). */
  mark: HeadMark | null;
  /** adopt is true when the marker is missing or names an older generation: the caller writes a fresh one. */
  adopt: boolean;
  /** keepsHead is true when the generation says a marker names it (HEAD_KEPT): the caller need not say so again. */
  keepsHead: boolean;
}

/**
 * loadChain reads the store folder `dir`: CURRENT, the live generation's segments, and the head marker. A torn final
 * record (an append a crash cut short, never acknowledged) is cut unless `readOnly`. Anything else that does not add
 * up throws IntegrityError saying what is wrong: a changed byte, a missing segment, a missing chain folder, CURRENT
 * naming a folder that is gone, or a store that ends below the height the marker says was acknowledged.
 * `ledgerHint` receives the ledger id as soon as a segment header names it, so a caller can tell whose store it was.
 */
export async function loadChain(
  dir: string,
  readOnly: boolean,
  ledgerHint: (id: string) => void = () => {},
): Promise<LoadedChain> {
  // The marker first: a writer beside a read-only reader only moves the chain forward after it.
  const mark = await readHeadMark(join(dir, HEAD_FILE));
  const current = await readFile(join(dir, CURRENT), 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  const empty: LoadedChain = {
    generation: null,
    ledgerId: null,
    segments: [],
    packs: [],
    headHash: null,
    tornBytes: 0,
    mark: null,
    adopt: false,
    keepsHead: false,
  };
  if (current === null) {
    await refuseOrphans(dir);
    if (mark === 'damaged')
      throw new IntegrityError(`${join(dir, CURRENT)} is missing and ${join(dir, HEAD_FILE)} is damaged`);
    if (mark && mark.acked >= 0) {
      throw new IntegrityError(
        `${join(dir, CURRENT)} is missing, but ${HEAD_FILE} says blocks 0..${mark.acked} were saved: the chain folder was lost`,
      );
    }
    return empty;
  }
  const generation = current.trim();
  if (!GENERATION.test(generation))
    throw new IntegrityError(`${join(dir, CURRENT)} is damaged: it names ${JSON.stringify(generation)}`);
  const genDir = join(dir, generation);
  const files = await readdir(genDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT')
      throw new IntegrityError(`${join(dir, CURRENT)} names ${generation}, but ${genDir} is missing`);
    throw err;
  });
  if (!readOnly) {
    // A pack or checkpoint file a crash left half written was never part of the chain.
    const temps = files.filter((n) => TEMP_FILE.test(n));
    for (const n of temps) await rm(join(genDir, n), { force: true });
    if (temps.length > 0) await fsyncDir(genDir);
  }
  const packs = await readPackFiles(genDir, files, ledgerHint);
  let ledgerId = packs.ledgerId;
  const segments: LoadedSegment[] = [];
  let tornBytes = 0;
  const names = files.filter((n) => n.endsWith('.seg')).sort();
  for (const [i, name] of names.entries()) {
    const path = join(genDir, name);
    const last = i === names.length - 1;
    const prev = segments.at(-1);
    const expectedFirst = prev ? segmentEnd(prev) + 1 : 0;
    // A segment may start later than its predecessor's end where packs hold the blocks between (segments they
    // covered whole were deleted).
    const maxFirst = skipPacks(packs, expectedFirst);
    const scanned = scanSegment(path, await readFile(path), { last, expectedFirst, maxFirst, ledgerId });
    // A first segment without a block is a crash during the very first save (genesis never acknowledged): drop it.
    const emptyStore = expectedFirst === 0 && packs.length === 0;
    if (scanned === 'torn-header' || (last && emptyStore && scanned.offsets.length === 0)) {
      if (readOnly) continue;
      await rm(path);
      await fsyncDir(genDir);
      continue;
    }
    if (ledgerId === null) ledgerHint(scanned.ledgerId);
    tornBytes += scanned.tornBytes;
    if (scanned.tornBytes > 0 && !readOnly) {
      const fh = await open(path, 'r+');
      await fh.truncate(scanned.size);
      await fh.sync();
      await fh.close();
    }
    ledgerId = scanned.ledgerId;
    segments.push({ ...scanned, name });
  }
  const gap = firstGap(segments, packs);
  if (gap) {
    throw new IntegrityError(
      `blocks ${gap.from}-${gap.to} of ${genDir} are missing: neither a pack file nor a segment holds them`,
    );
  }
  // Where a segment still holds a packed block (a crash before the segment was deleted), both copies must agree.
  for (const p of packs) {
    if (segmentAt(segments, p.to) && (await hashAt(genDir, segments, [], p.to)) !== p.hash)
      throw new IntegrityError(`block ${p.to} in ${genDir} differs between ${p.name} and its segment`);
  }
  const height = chainHeight(segments, packs);
  const headHash = height < 0 ? null : await hashAt(genDir, segments, packs, height);
  const loaded: LoadedChain = {
    generation,
    ledgerId,
    segments,
    packs,
    headHash,
    tornBytes,
    mark: null,
    adopt: false,
    keepsHead: files.includes(HEAD_KEPT),
  };
  checkAgainstMark(loaded, mark, dir);
  if (mark !== 'damaged' && mark !== null && mark.generation === Number(generation.slice(6)) && height >= mark.height) {
    if ((await hashAt(genDir, segments, packs, mark.height)) !== mark.hash) {
      throw new IntegrityError(`block ${mark.height} of ${genDir} is not the block ${HEAD_FILE} says was saved there`);
    }
  }
  if (!readOnly) await dropPackedSegments(genDir, loaded);
  if (mark !== 'damaged') {
    loaded.mark = mark;
    loaded.adopt = height >= 0 && (mark === null || mark.generation !== Number(generation.slice(6)));
  }
  return loaded;
}

// Throws when the chain ends below the height the marker says was acknowledged, or the marker itself is unreadable.
function checkAgainstMark(loaded: LoadedChain, mark: HeadMark | null | 'damaged', dir: string): void {
  const height = chainHeight(loaded.segments, loaded.packs);
  if (mark === 'damaged') {
    throw new IntegrityError(
      `${join(dir, HEAD_FILE)} is damaged, so the store cannot prove it holds every acknowledged block`,
      {
        hint: `If the chain is known to be whole (\`pawledger verify\`), remove ${join(dir, HEAD_FILE)} and start again`,
      },
    );
  }
  if (!mark && loaded.keepsHead) {
    throw new IntegrityError(
      `${join(dir, HEAD_FILE)} is missing, but ${join(dir, loaded.generation!, HEAD_KEPT)} says this store kept one: it cannot prove it holds every acknowledged block (the marker was deleted, perhaps with the end of the chain)`,
      {
        hint: `With another tier configured, \`pawledger serve\` restores a verified copy from it. If the chain is known to be whole (\`pawledger verify\` shows the head you expect), remove ${join(dir, loaded.generation!, HEAD_KEPT)} and start again`,
      },
    );
  }
  if (!mark || mark.generation !== Number(loaded.generation!.slice(6))) return;
  if (height < mark.acked) {
    const lost = mark.acked - height;
    throw new IntegrityError(
      `the local store ends at block ${height}, but blocks up to ${mark.acked} were saved and acknowledged (${HEAD_FILE}): ${lost} acknowledged block${lost === 1 ? ' is' : 's are'} missing (a truncated or deleted segment)`,
    );
  }
}

// A missing CURRENT beside a finished generation is damage, not an empty store: never start a new ledger over it.
async function refuseOrphans(dir: string): Promise<void> {
  const orphans: string[] = [];
  for (const n of await readdir(dir).catch(() => [] as string[])) {
    if (!GENERATION.test(n)) continue;
    const files = await readdir(join(dir, n)).catch(() => [] as string[]);
    if (!files.includes(PARTIAL) && files.some((f) => f.endsWith('.seg'))) orphans.push(n);
  }
  if (orphans.length > 0) {
    throw new IntegrityError(`${join(dir, CURRENT)} is missing, but ${orphans.join(', ')} holds segment files`, {
      hint: `If ${orphans.at(-1)} is the live chain, restore CURRENT: echo ${orphans.at(-1)} > ${join(dir, CURRENT)}`,
    });
  }
}

/**
 * readPackFiles scans the pack files among `names` in `genDir` (checksums, names, one ledger, no overlaps) and
 * returns them in height order, with the ledger they belong to; `ledgerHint` hears the ledger as soon as one names it.
 */
export async function readPackFiles(
  genDir: string,
  names: readonly string[],
  ledgerHint: (id: string) => void = () => {},
): Promise<LoadedPack[] & { ledgerId: string | null }> {
  const packs: LoadedPack[] = [];
  let ledgerId: string | null = null;
  for (const name of names.filter((n) => PACK_FILE.test(n)).sort()) {
    const path = join(genDir, name);
    const scanned = scanPackFile(path, name, await readFile(path));
    if (ledgerId === null) ledgerHint(scanned.ledgerId);
    else if (scanned.ledgerId !== ledgerId)
      throw new IntegrityError(`pack file ${path} belongs to ledger ${scanned.ledgerId.slice(0, 16)}`);
    const prev = packs.at(-1);
    if (prev && scanned.from <= prev.to)
      throw new IntegrityError(
        `pack file ${path} overlaps ${prev.name}: two copies of blocks ${scanned.from}-${prev.to}`,
      );
    ledgerId = scanned.ledgerId;
    packs.push({ name, from: scanned.from, to: scanned.to, packTo: scanned.packTo, hash: scanned.hash });
  }
  return Object.assign(packs, { ledgerId });
}

/**
 * dropPackedSegments deletes the finished segments whose blocks packs all hold (a crash between writing a pack and
 * deleting them leaves them): the pack is durable, so they are copies. The last segment stays (saves append to it).
 */
export async function dropPackedSegments(genDir: string, loaded: { segments: LoadedSegment[]; packs: LoadedPack[] }) {
  const dropped: LoadedSegment[] = [];
  for (const s of loaded.segments.slice(0, -1)) {
    if (s.offsets.length > 0 && !coveredByPacks(loaded.packs, s.firstHeight, segmentEnd(s))) continue;
    await rm(join(genDir, s.name), { force: true });
    dropped.push(s);
  }
  if (dropped.length === 0) return dropped;
  await fsyncDir(genDir);
  loaded.segments = loaded.segments.filter((s) => !dropped.includes(s));
  return dropped;
}

/** hashAt is the hash of block `height`: from its pack's clear hashes, or its segment record's header. */
export async function hashAt(
  genDir: string,
  segments: readonly LoadedSegment[],
  packs: readonly LoadedPack[],
  height: number,
): Promise<string | null> {
  const pack = packAt(packs, height);
  const seg = pack ? null : segmentAt(segments, height);
  if (!pack && !seg) return null;
  const fh = await open(join(genDir, pack ? pack.name : seg!.name), 'r');
  try {
    const buf = Buffer.alloc(32);
    const at = pack ? PACK_HASHES_AT + 32 * (height - pack.from) : seg!.offsets[height - seg!.firstHeight]! + 12;
    const { bytesRead } = await fh.read(buf, 0, 32, at);
    if (bytesRead !== 32) throw new IntegrityError(`${join(genDir, pack ? pack.name : seg!.name)} is cut short`);
    return buf.toString('hex');
  } finally {
    await fh.close();
  }
}
