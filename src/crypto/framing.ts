import { crc32 } from 'node:zlib';

/**
 * Record framing (docs/FORMAT.md), pure code without I/O: the way one stored object (a sealed block, or a pack) is
 * laid out in a local segment, an export file, or a pack's body:
 *   payload length u32 LE (4) | height u64 LE (8) | hash (32) | crc32 of payload (4) | crc32 of these 48 bytes (4)
 * then the payload. The CRCs tell a torn tail (a record cut short by a crash) from damage (a changed byte);
 * authenticity comes from the seal, not from them.
 */
export const RECORD_HEADER_BYTES = 52;
/** MAX_PAYLOAD bounds one record, so that a damaged length field cannot make us allocate gigabytes. */
export const MAX_PAYLOAD = 64 * 1024 * 1024;

/** RecordHeader describes one stored block. */
export interface RecordHeader {
  payloadBytes: number;
  height: number;
  hash: string;
  payloadCrc: number;
}

/** encodeRecord frames one sealed block. */
export function encodeRecord(height: number, hash: string, payload: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  buf.writeUInt32LE(payload.length, 0);
  buf.writeBigUInt64LE(BigInt(height), 4);
  buf.write(hash, 12, 32, 'hex');
  buf.writeUInt32LE(crc32(payload), 44);
  buf.writeUInt32LE(crc32(buf.subarray(0, 48)), 48);
  buf.set(payload, RECORD_HEADER_BYTES);
  return buf;
}

/** decodeRecordHeader reads a record header, or returns why it is damaged. */
export function decodeRecordHeader(buf: Buffer, at: number): RecordHeader | string {
  if (buf.readUInt32LE(at + 48) !== crc32(buf.subarray(at, at + 48))) return 'record header checksum mismatch';
  const payloadBytes = buf.readUInt32LE(at);
  if (payloadBytes > MAX_PAYLOAD) return `record claims ${payloadBytes} bytes`;
  return {
    payloadBytes,
    height: Number(buf.readBigUInt64LE(at + 4)),
    hash: buf.subarray(at + 12, at + 44).toString('hex'),
    payloadCrc: buf.readUInt32LE(at + 44),
  };
}

/** payloadIntact checks a record's payload against its header's CRC. */
export function payloadIntact(header: RecordHeader, payload: Buffer): boolean {
  return crc32(payload) === header.payloadCrc;
}
