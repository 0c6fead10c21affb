import { decodePack, encodePack, type SealedPack } from '../crypto/packs.js';
import { IntegrityError } from '../errors.js';
import {
  decodeRecordHeader,
  decodeSegmentHeader,
  encodeRecord,
  encodeSegmentHeader,
  payloadIntact,
  RECORD_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
} from './segment-format.js';

/**
 * The local store's pack files (docs/FORMAT.md), pure code without I/O. A pack file holds one pack, the blocks
 * `from`..`to` of the chain, and is named `<from, 12 digits>-<to, 12 digits>.pack`, where `to` is the last block the
 * chain uses: the pack's own last block, or an earlier one when a restore took an older backup whose head falls inside
 * a pack (the blocks after it are then not part of the chain). Its bytes are a segment header (firstHeight = the
 * pack's first block) followed by one record (height = the pack's last block, hash = its last hash) whose payload is
 * the pack's stored form (crypto/packs.ts encodePack). The record's CRCs tell a changed byte at open and at read.
 */
export const PACK_FILE = /^(\d{12})-(\d{12})\.pack$/;
/** PACK_HASHES_AT is where a pack file's clear hashes start: block h's hash is at PACK_HASHES_AT + 32 * (h - from). */
export const PACK_HASHES_AT = SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES + 20;

/** packFileName is the file name of a pack whose blocks from..to the chain uses. */
export function packFileName(from: number, to: number): string {
  return `${String(from).padStart(12, '0')}-${String(to).padStart(12, '0')}.pack`;
}

/** encodePackFile is a pack file's bytes. */
export function encodePackFile(ledgerId: string, pack: SealedPack): Buffer {
  const header = encodeSegmentHeader({ firstHeight: pack.from, ledgerId });
  return Buffer.concat([header, encodeRecord(pack.to, pack.hashes.at(-1)!, encodePack(pack))]);
}

/** ScannedPack is what a scan learned of one pack file. */
export interface ScannedPack {
  ledgerId: string;
  /** from and packTo are the pack's own first and last block; `to` (from the name) the last one the chain uses. */
  from: number;
  to: number;
  packTo: number;
  /** hash is the hash of block `to`. */
  hash: string;
}

/**
 * scanPackFile checks a pack file's framing and checksums against its name, and returns where it lies. Anything
 * that does not add up (a changed byte, a file cut short, a name that disagrees with the contents) throws
 * IntegrityError naming the file.
 */
export function scanPackFile(path: string, name: string, buf: Buffer): ScannedPack {
  const named = PACK_FILE.exec(name);
  if (!named) throw new IntegrityError(`${path} is not named as a pack file`);
  const header = decodeSegmentHeader(buf);
  if (typeof header === 'string') throw new IntegrityError(`pack file ${path} ${header}`);
  const pack = packOf(path, buf);
  const to = Number(named[2]);
  if (Number(named[1]) !== header.firstHeight || pack.from !== header.firstHeight || to < pack.from || to > pack.to)
    throw new IntegrityError(`pack file ${path} holds blocks ${pack.from}-${pack.to}, which its name disagrees with`);
  return {
    ledgerId: header.ledgerId,
    from: pack.from,
    to,
    packTo: pack.to,
    hash: pack.hashes[to - pack.from]!,
  };
}

/** packOf reads the pack a pack file holds, checking its record's checksums (not its seal: a reader opens that). */
export function packOf(path: string, buf: Buffer): SealedPack {
  const at = SEGMENT_HEADER_BYTES;
  if (buf.length < at + RECORD_HEADER_BYTES) throw new IntegrityError(`pack file ${path} is cut short`);
  const rec = decodeRecordHeader(buf, at);
  if (typeof rec === 'string') throw new IntegrityError(`pack file ${path} at offset ${at}: ${rec}`);
  const end = at + RECORD_HEADER_BYTES + rec.payloadBytes;
  if (end !== buf.length) throw new IntegrityError(`pack file ${path} is ${buf.length} bytes, its record says ${end}`);
  const payload = buf.subarray(at + RECORD_HEADER_BYTES, end);
  if (!payloadIntact(rec, payload)) throw new IntegrityError(`pack file ${path}: payload checksum mismatch`);
  const pack = decodePack(payload, `pack file ${path}`);
  if (pack.to !== rec.height || pack.hashes.at(-1) !== rec.hash)
    throw new IntegrityError(`pack file ${path}: its record and its pack disagree`);
  return pack;
}
