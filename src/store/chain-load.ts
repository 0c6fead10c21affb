import { open, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { IntegrityError } from '../errors.js';
import { fsyncDir } from './fsutil.js';
import { HEAD_FILE, readHeadMark, type HeadMark } from './head-marker.js';
import { scanSegment, type ScannedSegment } from './segment-scan.js';

/** CURRENT names the live generation folder. */
export const CURRENT = 'CURRENT';
/** PARTIAL marks a generation that a replace is still writing: garbage if a crash leaves it. */
export const PARTIAL = 'PARTIAL';
/** GENERATION matches a generation folder's name. */
export const GENERATION = /^chain-\d{6}$/;

/** LoadedSegment is one scanned segment file of the live generation. */
export interface LoadedSegment extends ScannedSegment {
  name: string;
}

/** LoadedChain is what loading a store's folder found (and, unless read-only, repaired). */
export interface LoadedChain {
  generation: string | null;
  ledgerId: string | null;
  segments: LoadedSegment[];
  headHash: string | null;
  tornBytes: number;
  /** mark is the head marker as read (null when the folder has none). */
  mark: HeadMark | null;
  /** adopt is true when the marker is missing or names an older generation: the caller writes a fresh one. */
  adopt: boolean;
}

function heightOf(segments: LoadedSegment[]): number {
  const last = segments.at(-1);
  return last ? last.firstHeight + last.offsets.length - 1 : -1;
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
    headHash: null,
    tornBytes: 0,
    mark: null,
    adopt: false,
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
  const segments: LoadedSegment[] = [];
  let ledgerId: string | null = null;
  let headHash: string | null = null;
  let tornBytes = 0;
  const names = files.filter((n) => n.endsWith('.seg')).sort();
  for (const [i, name] of names.entries()) {
    const path = join(genDir, name);
    const last = i === names.length - 1;
    const expectedFirst = heightOf(segments) + 1;
    const scanned = scanSegment(path, await readFile(path), { last, expectedFirst, ledgerId });
    // A first segment without a block is a crash during the very first save (genesis never acknowledged): drop it.
    if (scanned === 'torn-header' || (last && expectedFirst === 0 && scanned.offsets.length === 0)) {
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
    if (scanned.offsets.length > 0) headHash = scanned.lastHash;
    segments.push({ ...scanned, name });
  }
  const loaded: LoadedChain = { generation, ledgerId, segments, headHash, tornBytes, mark: null, adopt: false };
  checkAgainstMark(loaded, mark, dir);
  const height = heightOf(segments);
  if (mark !== 'damaged' && mark !== null && mark.generation === Number(generation.slice(6)) && height >= mark.height) {
    if ((await hashAt(genDir, segments, mark.height)) !== mark.hash) {
      throw new IntegrityError(`block ${mark.height} of ${genDir} is not the block ${HEAD_FILE} says was saved there`);
    }
  }
  if (mark !== 'damaged') {
    loaded.mark = mark;
    loaded.adopt = height >= 0 && (mark === null || mark.generation !== Number(generation.slice(6)));
  }
  return loaded;
}

// Throws when the chain ends below the height the marker says was acknowledged, or the marker itself is unreadable.
function checkAgainstMark(loaded: LoadedChain, mark: HeadMark | null | 'damaged', dir: string): void {
  const height = heightOf(loaded.segments);
  if (mark === 'damaged') {
    throw new IntegrityError(
      `${join(dir, HEAD_FILE)} is damaged, so the store cannot prove it holds every acknowledged block`,
      {
        hint: `If the chain is known to be whole (\`pawledger verify\`), remove ${join(dir, HEAD_FILE)} and start again`,
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

// The hash of the block at `height`, read from its record header.
async function hashAt(genDir: string, segments: LoadedSegment[], height: number): Promise<string | null> {
  const seg = segments.find((s) => height >= s.firstHeight && height < s.firstHeight + s.offsets.length);
  if (!seg) return null;
  const fh = await open(join(genDir, seg.name), 'r');
  try {
    const buf = Buffer.alloc(32);
    await fh.read(buf, 0, 32, seg.offsets[height - seg.firstHeight]! + 12);
    return buf.toString('hex');
  } finally {
    await fh.close();
  }
}
