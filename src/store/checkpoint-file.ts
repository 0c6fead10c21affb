import { open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { SealedCheckpoint } from '../crypto/checkpoints.js';
import { IntegrityError } from '../errors.js';
import type { StoredCheckpoint } from '../tiers/tier.js';
import { fsyncDir } from './fsutil.js';
import { MAX_PAYLOAD } from './segment-format.js';

/**
 * The local store's checkpoint files (docs/FORMAT.md): `<height, 12 digits>.checkpoint` in the generation folder,
 * each one sealed checkpoint (crypto/checkpoints.ts) of the state after block `height`:
 *   magic "PWCP" (4) | version u8 (1) | reserved (3) | height u64 LE (8) | block hash (32) | part count u32 LE (4)
 *   | crc32 of the preceding 52 bytes (4) | parts, each: length u32 LE | crc32 of the part | the part's stored form
 * A file is written whole (temp file, fsync, rename), so it is there entire or not at all; the CRCs tell a changed
 * byte before the seal is opened.
 */
export const CHECKPOINT_FILE = /^(\d{12})\.checkpoint$/;
const MAGIC = Buffer.from('PWCP', 'latin1');
const HEADER_BYTES = 56;
/** KEPT_CHECKPOINTS is how many of the newest checkpoints a generation keeps. */
export const KEPT_CHECKPOINTS = 2;

/** CheckpointFile is a checkpoint file's header: which block's state it holds. */
export interface CheckpointFile {
  name: string;
  height: number;
  hash: string;
}

function checkpointName(height: number): string {
  return `${String(height).padStart(12, '0')}.checkpoint`;
}

/** CheckpointSource is a checkpoint to write: its parts in memory (SealedCheckpoint) or read on demand (StoredCheckpoint). */
export type CheckpointSource = SealedCheckpoint | StoredCheckpoint;

/**
 * writeCheckpointFile writes `cp` into `genDir` atomically and durably (temp file, fsync, rename, fsync of the folder),
 * its parts one at a time as they come; it returns the bytes written.
 */
export async function writeCheckpointFile(genDir: string, cp: CheckpointSource): Promise<number> {
  const path = join(genDir, checkpointName(cp.height));
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fh = await open(tmp, 'wx', 0o600);
  let at = HEADER_BYTES;
  let count = 0;
  try {
    for await (const part of Array.isArray(cp.parts) ? cp.parts : cp.parts()) {
      const frame = Buffer.alloc(8);
      frame.writeUInt32LE(part.length, 0);
      frame.writeUInt32LE(crc32(part), 4);
      await fh.writev([frame, part], at);
      at += 8 + part.length;
      count++;
    }
    // The header last: it names the part count.
    const header = Buffer.alloc(HEADER_BYTES);
    MAGIC.copy(header, 0);
    header[4] = 1;
    header.writeBigUInt64LE(BigInt(cp.height), 8);
    header.write(cp.hash, 16, 32, 'hex');
    header.writeUInt32LE(count, 48);
    header.writeUInt32LE(crc32(header.subarray(0, 52)), 52);
    await fh.write(header, 0, HEADER_BYTES, 0);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await rename(tmp, path);
  await fsyncDir(genDir);
  return at;
}

/**
 * listCheckpointFiles reads the headers of the checkpoint files in `genDir`, newest first. A file whose header is
 * damaged is left out: a checkpoint only saves replay time, the chain is whole without it.
 */
export async function listCheckpointFiles(genDir: string): Promise<CheckpointFile[]> {
  const out: CheckpointFile[] = [];
  for (const name of (await readdir(genDir)).filter((n) => CHECKPOINT_FILE.test(n))) {
    const fh = await open(join(genDir, name), 'r');
    try {
      const header = Buffer.alloc(HEADER_BYTES);
      const { bytesRead } = await fh.read(header, 0, HEADER_BYTES, 0);
      if (bytesRead !== HEADER_BYTES || !header.subarray(0, 4).equals(MAGIC) || header[4] !== 1) continue;
      if (header.readUInt32LE(52) !== crc32(header.subarray(0, 52))) continue;
      const height = Number(header.readBigUInt64LE(8));
      if (name !== checkpointName(height)) continue;
      out.push({ name, height, hash: header.toString('hex', 16, 48) });
    } finally {
      await fh.close();
    }
  }
  return out.sort((a, b) => b.height - a.height);
}

/**
 * keepCheckpoint writes `cp` into `genDir` beside the checkpoint files `kept` (newest first), then deletes all but the
 * KEPT_CHECKPOINTS newest; it returns the files kept and the bytes written.
 */
export async function keepCheckpoint(
  genDir: string,
  kept: readonly CheckpointFile[],
  cp: CheckpointSource,
): Promise<{ files: CheckpointFile[]; bytesWritten: number }> {
  const bytesWritten = await writeCheckpointFile(genDir, cp);
  const files = [
    { name: checkpointName(cp.height), height: cp.height, hash: cp.hash },
    ...kept.filter((f) => f.height !== cp.height),
  ].sort((a, b) => b.height - a.height);
  const old = files.slice(KEPT_CHECKPOINTS);
  for (const f of old) await rm(join(genDir, f.name), { force: true });
  if (old.length > 0) await fsyncDir(genDir);
  return { files: files.slice(0, KEPT_CHECKPOINTS), bytesWritten };
}

/**
 * partHeads reads the first `bytes` bytes of each part of a checkpoint file (fewer where a part is shorter), without
 * reading the parts whole or checking their CRCs: enough to see which key sealed each (key rotation's counts). A file
 * cut short throws IntegrityError.
 */
export async function partHeads(genDir: string, file: CheckpointFile, bytes: number): Promise<Buffer[]> {
  const path = join(genDir, file.name);
  const fh = await open(path, 'r');
  try {
    const header = Buffer.alloc(HEADER_BYTES);
    await fh.read(header, 0, HEADER_BYTES, 0);
    const count = header.readUInt32LE(48);
    const heads: Buffer[] = [];
    let at = HEADER_BYTES;
    for (let i = 0; i < count; i++) {
      const frame = Buffer.alloc(8);
      if ((await fh.read(frame, 0, 8, at)).bytesRead !== 8)
        throw new IntegrityError(`checkpoint file ${path} is cut short`);
      const length = frame.readUInt32LE(0);
      const head = Buffer.alloc(Math.min(bytes, length));
      if ((await fh.read(head, 0, head.length, at + 8)).bytesRead !== head.length)
        throw new IntegrityError(`checkpoint file ${path} is cut short`);
      heads.push(head);
      at += 8 + length;
    }
    return heads;
  } finally {
    await fh.close();
  }
}

/** storedCheckpoint is a checkpoint file as a StoredCheckpoint: its parts read one at a time, checked by CRC. */
export function storedCheckpoint(genDir: string, file: CheckpointFile): StoredCheckpoint {
  const path = join(genDir, file.name);
  return {
    height: file.height,
    hash: file.hash,
    async *parts() {
      const fh = await open(path, 'r');
      try {
        const header = Buffer.alloc(HEADER_BYTES);
        await fh.read(header, 0, HEADER_BYTES, 0);
        const count = header.readUInt32LE(48);
        let at = HEADER_BYTES;
        for (let i = 0; i < count; i++) {
          const frame = Buffer.alloc(8);
          const got = (await fh.read(frame, 0, 8, at)).bytesRead;
          const length = frame.readUInt32LE(0);
          if (got === 8 && length > MAX_PAYLOAD)
            throw new IntegrityError(`checkpoint file ${path}: part ${i} is damaged`);
          const part = Buffer.alloc(got === 8 ? length : 0);
          const read = got === 8 ? (await fh.read(part, 0, length, at + 8)).bytesRead : 0;
          if (got !== 8 || read !== length) throw new IntegrityError(`checkpoint file ${path} is cut short`);
          if (crc32(part) !== frame.readUInt32LE(4))
            throw new IntegrityError(`checkpoint file ${path}: part ${i} checksum mismatch`);
          yield part;
          at += 8 + length;
        }
      } finally {
        await fh.close();
      }
    },
  };
}
