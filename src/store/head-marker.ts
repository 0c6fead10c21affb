import { open, readFile, type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { atomicWrite } from './fsutil.js';

/**
 * The local store's head marker (docs/FORMAT.md): the file HEAD beside CURRENT, which every append advances. It lets
 * opening tell a store that lost acknowledged blocks (a truncated or deleted segment, a missing chain folder) from a
 * shorter chain, which the segments alone cannot.
 *
 * The file holds two 128-byte slots, written alternately; the valid slot with the higher sequence number counts, so
 * a write torn by a power cut leaves the other. A slot:
 *   magic "PWHD" (4) | version u8 (1) | reserved (3) | sequence u64 LE (8) | generation u32 LE (4) |
 *   acknowledged height i64 LE (8) | height i64 LE (8) | head hash (32) | crc32 of the preceding 68 bytes (4)
 *
 * An append writes the marker of its new head while its records are fsync'd, and is acknowledged only once both are
 * durable. The marker can therefore be ahead of the records by one unacknowledged append, never more: `acked` is the
 * head before that append, so a store that ends below `acked` lost blocks that were acknowledged.
 */
export const HEAD_FILE = 'HEAD';
/**
 * HEAD_KEPT is an empty file in a generation folder, written once the marker first names that generation: from then
 * on a missing HEAD is damage (deleted, lost with the tail it guarded), not a store written before the marker existed.
 */
export const HEAD_KEPT = 'HEAD-KEPT';
const MAGIC = Buffer.from('PWHD', 'latin1');
/** HEAD_SLOT_BYTES is what each append writes to the marker, whatever the chain's length. */
export const HEAD_SLOT_BYTES = 128;
const SLOT_BYTES = HEAD_SLOT_BYTES;
const BODY_BYTES = 68;

/** HeadMark is what the marker says: the generation it is about, the acknowledged head, and the head being written. */
export interface HeadMark {
  seq: number;
  /** generation is the number of the chain folder (chain-NNNNNN) the heights are about. */
  generation: number;
  /** acked is the height every earlier append reached: acknowledged, so it must be in the store (-1: none). */
  acked: number;
  /** height and hash are the head of the newest append, acknowledged or (after a crash) perhaps not. */
  height: number;
  hash: string;
}

/** encodeSlot frames one marker slot. */
export function encodeSlot(m: HeadMark): Buffer {
  const buf = Buffer.alloc(SLOT_BYTES);
  MAGIC.copy(buf, 0);
  buf[4] = 1;
  buf.writeBigUInt64LE(BigInt(m.seq), 8);
  buf.writeUInt32LE(m.generation, 16);
  buf.writeBigInt64LE(BigInt(m.acked), 20);
  buf.writeBigInt64LE(BigInt(m.height), 28);
  buf.write(m.hash, 36, 32, 'hex');
  buf.writeUInt32LE(crc32(buf.subarray(0, BODY_BYTES)), BODY_BYTES);
  return buf;
}

function decodeSlot(buf: Buffer): HeadMark | null {
  if (buf.length < SLOT_BYTES || !buf.subarray(0, 4).equals(MAGIC) || buf[4] !== 1) return null;
  if (buf.readUInt32LE(BODY_BYTES) !== crc32(buf.subarray(0, BODY_BYTES))) return null;
  return {
    seq: Number(buf.readBigUInt64LE(8)),
    generation: buf.readUInt32LE(16),
    acked: Number(buf.readBigInt64LE(20)),
    height: Number(buf.readBigInt64LE(28)),
    hash: buf.subarray(36, 68).toString('hex'),
  };
}

/**
 * readHeadMark returns the marker in `path`, null when there is none. A file present whose slots are both damaged
 * is reported as 'damaged': the store then cannot prove it holds every acknowledged block.
 */
export async function readHeadMark(path: string): Promise<HeadMark | null | 'damaged'> {
  const buf = await readFile(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (buf === null) return null;
  const slots = [decodeSlot(buf.subarray(0, SLOT_BYTES)), decodeSlot(buf.subarray(SLOT_BYTES, 2 * SLOT_BYTES))];
  const valid = slots.filter((s): s is HeadMark => s !== null);
  if (valid.length === 0) return 'damaged';
  return valid.reduce((a, b) => (b.seq > a.seq ? b : a));
}

/**
 * HeadMarker writes the marker. write() resolves once the new slot is durable (pwrite + fdatasync of a file whose
 * size never changes, so no metadata is flushed).
 */
export class HeadMarker {
  #fh: FileHandle | null = null;
  #seq: number;

  constructor(
    readonly path: string,
    seq = 0,
  ) {
    this.#seq = seq;
  }

  async write(m: Omit<HeadMark, 'seq'>): Promise<void> {
    const seq = ++this.#seq;
    const slot = encodeSlot({ ...m, seq });
    const at = (seq % 2) * SLOT_BYTES;
    if (!this.#fh) {
      const fh = await this.#openExisting();
      if (!fh) {
        await this.#create(slot, at);
        this.#fh = await open(this.path, 'r+');
        return;
      }
      this.#fh = fh;
    }
    const { bytesWritten } = await this.#fh.write(slot, 0, SLOT_BYTES, at);
    if (bytesWritten !== SLOT_BYTES) throw new Error(`short write to ${this.path}`);
    await this.#fh.datasync();
  }

  // The marker file when it exists at full size (each write then changes no metadata), else null.
  async #openExisting(): Promise<FileHandle | null> {
    const fh = await open(this.path, 'r+').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (fh && (await fh.stat()).size >= 2 * SLOT_BYTES) return fh;
    await fh?.close();
    return null;
  }

  // A marker file that does not exist yet is created whole, its first slot in it, by an atomic rename: a crash then
  // leaves no file or one with a valid slot, never a file of empty slots that would read as damaged.
  async #create(first: Buffer, at: number): Promise<void> {
    const whole = Buffer.alloc(2 * SLOT_BYTES);
    first.copy(whole, at);
    await atomicWrite(this.path, whole, 0o600);
  }

  async close(): Promise<void> {
    await this.#fh?.close();
    this.#fh = null;
  }
}
