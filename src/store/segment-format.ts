import { crc32 } from 'node:zlib';

export {
  decodeRecordHeader,
  encodeRecord,
  MAX_PAYLOAD,
  payloadIntact,
  RECORD_HEADER_BYTES,
  type RecordHeader,
} from '../crypto/framing.js';

/**
 * The local store's segment file format (docs/FORMAT.md), pure code without I/O.
 *
 * A segment starts with a 52-byte header:
 *   magic "PWSG" (4) | version u8 (1) | reserved (3) | first height u64 LE (8) | ledger id (32) | crc32 of the rest (4)
 * and holds records, each a 52-byte record header followed by a sealed block:
 *   payload length u32 LE (4) | height u64 LE (8) | block hash (32) | crc32 of payload (4) | crc32 of these 48 bytes (4)
 * The CRCs tell a torn tail (a record cut short by a crash) from damage (a changed byte): the first is cut when the
 * store opens, the second is an integrity error. Authenticity comes from the sealed payload, not from the CRCs.
 */
export const SEGMENT_MAGIC = Buffer.from('PWSG', 'latin1');
export const SEGMENT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 52;

export interface SegmentHeader {
  firstHeight: number;
  ledgerId: string;
}

export function encodeSegmentHeader(h: SegmentHeader): Buffer {
  const buf = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(buf, 0);
  buf[4] = SEGMENT_VERSION;
  buf.writeBigUInt64LE(BigInt(h.firstHeight), 8);
  Buffer.from(h.ledgerId, 'hex').copy(buf, 16);
  buf.writeUInt32LE(crc32(buf.subarray(0, 48)), 48);
  return buf;
}

/** decodeSegmentHeader returns the header, or a reason it is not a valid one. */
export function decodeSegmentHeader(buf: Buffer): SegmentHeader | string {
  if (buf.length < SEGMENT_HEADER_BYTES) return 'is shorter than a segment header';
  if (!buf.subarray(0, 4).equals(SEGMENT_MAGIC)) return 'does not start with the segment magic';
  if (buf.readUInt32LE(48) !== crc32(buf.subarray(0, 48))) return 'has a damaged header (checksum mismatch)';
  if (buf[4] !== SEGMENT_VERSION) return `has unknown segment version ${buf[4]}`;
  return { firstHeight: Number(buf.readBigUInt64LE(8)), ledgerId: buf.subarray(16, 48).toString('hex') };
}
