import { IntegrityError } from '../errors.js';
import { decodeRecordHeader, encodeRecord, RECORD_HEADER_BYTES } from './framing.js';
import type { Sealer } from './seal.js';
import type { StoredBlock } from './stored-block.js';

/**
 * Packs (docs/FORMAT.md): a run of consecutive blocks sealed as one object, what every tier keeps of settled blocks,
 * byte for byte the same in the local store, the database and the object stores, so a restore authenticates a whole
 * pack with one AEAD call and writes it through without sealing anything again.
 *
 * The sealed object (kind 'packed-blocks', bound to the last block's height and hash) holds the blocks' canonical bodies, each
 * framed as a record (height, hash, crc). Its stored form:
 *   "PWPK" | version u8 (1) | 3 reserved | first height u64 LE | count u32 LE | hashes (32 each) | sealed object
 * The hashes are in the clear, as a stored block's are: they index the pack (hashAt, links) and are bound by the seal.
 */
export const PACK_MAGIC = Buffer.from('PWPK', 'latin1');
const HEADER_BYTES = 20;

/** SealedPack is a pack as tiers move it: its heights and hashes in the clear, its blocks sealed together. */
export interface SealedPack {
  from: number;
  to: number;
  /** hashes are the blocks' hashes, from first to last. */
  hashes: string[];
  sealed: Buffer;
}

/** PackEntry is one block of an opened pack: its height, its hash and its canonical body (hashing to it). */
export interface PackEntry {
  height: number;
  hash: string;
  body: Buffer;
}

/**
 * ChainPage is a run of a chain as a tier or the local store yields it: blocks sealed one by one (the newest, not yet
 * compacted), or the blocks `from`..`to` of a pack (all of it, or a slice: a read that starts inside a pack, or a
 * branch that leaves the pack's chain). A pack is only ever opened whole: its seal covers all of it.
 */
export type ChainPage = { blocks: StoredBlock[] } | { pack: SealedPack; from: number; to: number };

/** wholePack is the page of a whole pack. */
export function wholePack(pack: SealedPack): ChainPage {
  return { pack, from: pack.from, to: pack.to };
}

/** pageRange is the first and last height a page covers. */
export function pageRange(page: ChainPage): { from: number; to: number } {
  if ('pack' in page) return { from: page.from, to: page.to };
  return { from: page.blocks[0]!.height, to: page.blocks.at(-1)!.height };
}

/** pageHashes are the hashes of a page's blocks, in order. */
export function pageHashes(page: ChainPage): string[] {
  if ('blocks' in page) return page.blocks.map((b) => b.hash);
  return page.pack.hashes.slice(page.from - page.pack.from, page.to - page.pack.from + 1);
}

/** pageBytes is what a page's stored form weighs (a slice of a pack weighs the whole pack: it is read whole). */
export function pageBytes(page: ChainPage): number {
  if ('blocks' in page) return page.blocks.reduce((n, b) => n + b.sealed.length, 0);
  return page.pack.sealed.length + 32 * page.pack.hashes.length;
}

/** pageShareBytes is a page's share of stored bytes: a slice of a pack weighs its share of the pack. */
export function pageShareBytes(page: ChainPage): number {
  if ('blocks' in page) return pageBytes(page);
  return Math.round((pageBytes(page) * (page.to - page.from + 1)) / page.pack.hashes.length);
}

/** packHashAt is the hash of the pack's block at `height`, or null outside it. */
export function packHashAt(pack: SealedPack, height: number): string | null {
  return height < pack.from || height > pack.to ? null : pack.hashes[height - pack.from]!;
}

/** sealPack seals a run of consecutive blocks' bodies as one pack. */
export function sealPack(sealer: Sealer, ledgerId: string, entries: readonly PackEntry[]): SealedPack {
  const first = entries[0]!;
  const last = entries.at(-1)!;
  const body = Buffer.concat(entries.map((e) => encodeRecord(e.height, e.hash, e.body)));
  const sealed = sealer.seal({ ledgerId, kind: 'packed-blocks', height: last.height, hash: last.hash }, body);
  return { from: first.height, to: last.height, hashes: entries.map((e) => e.hash), sealed };
}

/**
 * openPack authenticates and opens a pack (one AEAD call) and returns its blocks' bodies. Anything that does not
 * add up (another key, a changed byte, frames that disagree with the clear heights and hashes) throws IntegrityError
 * naming the pack and `where`. It does not hash the bodies: what the seal covers was checked when the pack was made.
 */
export function openPack(sealer: Sealer, ledgerId: string, pack: SealedPack, where: string): PackEntry[] {
  const name = `pack of blocks ${pack.from}-${pack.to}`;
  const lastHash = pack.hashes.at(-1)!;
  const body = sealer.open({ ledgerId, kind: 'packed-blocks', height: pack.to, hash: lastHash }, pack.sealed, where);
  const out: PackEntry[] = [];
  for (let at = 0; at < body.length; ) {
    const rec = body.length - at >= RECORD_HEADER_BYTES ? decodeRecordHeader(body, at) : 'cut short';
    if (typeof rec === 'string') throw new IntegrityError(`${name} at ${where}, offset ${at}: ${rec}`);
    const height = pack.from + out.length;
    if (rec.height !== height || rec.hash !== pack.hashes[out.length]) {
      throw new IntegrityError(
        `${name} at ${where} holds block ${rec.height} (${rec.hash.slice(0, 16)}) where its index says block ${height}`,
      );
    }
    const end = at + RECORD_HEADER_BYTES + rec.payloadBytes;
    out.push({ height, hash: rec.hash, body: body.subarray(at + RECORD_HEADER_BYTES, end) });
    at = end;
  }
  if (out.length !== pack.hashes.length)
    throw new IntegrityError(`${name} at ${where} holds ${out.length} blocks, its index ${pack.hashes.length}`);
  return out;
}

/** encodePack is a pack's stored form. */
export function encodePack(pack: SealedPack): Buffer {
  const head = Buffer.alloc(HEADER_BYTES);
  PACK_MAGIC.copy(head, 0);
  head[4] = 1;
  head.writeBigUInt64LE(BigInt(pack.from), 8);
  head.writeUInt32LE(pack.hashes.length, 16);
  return Buffer.concat([head, Buffer.from(pack.hashes.join(''), 'hex'), pack.sealed]);
}

/** isPack tells a pack's stored form from a sealed block (which starts with the sealed-object magic). */
export function isPack(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && Buffer.from(bytes.buffer, bytes.byteOffset, 4).equals(PACK_MAGIC);
}

/** decodePack reads a pack's stored form (not its seal); a malformed one throws IntegrityError naming `where`. */
export function decodePack(bytes: Uint8Array, where: string): SealedPack {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < HEADER_BYTES || !isPack(buf) || buf[4] !== 1)
    throw new IntegrityError(`${where} is not a pawledger pack`);
  const from = Number(buf.readBigUInt64LE(8));
  const count = buf.readUInt32LE(16);
  const sealedAt = HEADER_BYTES + 32 * count;
  if (count === 0 || buf.length <= sealedAt)
    throw new IntegrityError(`${where}: a pack of ${count} blocks is cut short`);
  const hashes: string[] = [];
  for (let i = 0; i < count; i++) hashes.push(buf.toString('hex', HEADER_BYTES + 32 * i, HEADER_BYTES + 32 * (i + 1)));
  return { from, to: from + count - 1, hashes, sealed: buf.subarray(sealedAt) };
}
