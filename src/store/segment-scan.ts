import { IntegrityError } from '../errors.js';
import {
  decodeRecordHeader,
  decodeSegmentHeader,
  payloadIntact,
  RECORD_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
} from './segment-format.js';

/** ScannedSegment is what a scan learned of one segment file. */
export interface ScannedSegment {
  firstHeight: number;
  ledgerId: string;
  /** offsets holds the file offset of each record, in height order. */
  offsets: number[];
  /** size is where the last whole record ends: the file's length once a torn tail is cut. */
  size: number;
  lastHash: string | null;
  /** tornBytes is the length of an incomplete final record (only ever in the last segment). */
  tornBytes: number;
}

/**
 * scanSegment checks a segment's framing and checksums. In the last segment, a final record cut short (the file ends
 * inside it) is a torn write from a crash: the scan reports its length so the caller can cut it. Anything else that
 * does not add up (a checksum mismatch, a height out of order, a torn record in an earlier segment) is damage and
 * throws IntegrityError naming the file and offset. A last segment shorter than its header is 'torn-header'. It must
 * start at `expectedFirst`, or up to `maxFirst` where packs hold the blocks between.
 */
export function scanSegment(
  path: string,
  buf: Buffer,
  opts: { last: boolean; expectedFirst: number; maxFirst?: number; ledgerId: string | null },
): ScannedSegment | 'torn-header' {
  if (buf.length < SEGMENT_HEADER_BYTES && opts.last) return 'torn-header';
  const decoded = decodeSegmentHeader(buf);
  if (typeof decoded === 'string') throw new IntegrityError(`segment ${path} ${decoded}`);
  const header = decoded;
  if (opts.ledgerId !== null && header.ledgerId !== opts.ledgerId) {
    throw new IntegrityError(
      `segment ${path} belongs to ledger ${header.ledgerId.slice(0, 16)}, not ${opts.ledgerId.slice(0, 16)}`,
    );
  }
  const maxFirst = opts.maxFirst ?? opts.expectedFirst;
  if (header.firstHeight < opts.expectedFirst || header.firstHeight > maxFirst) {
    const expected = maxFirst === opts.expectedFirst ? `${maxFirst}` : `${opts.expectedFirst}-${maxFirst}`;
    throw new IntegrityError(`segment ${path} starts at block ${header.firstHeight}, expected ${expected}`);
  }
  const offsets: number[] = [];
  let lastHash: string | null = null;
  let at = SEGMENT_HEADER_BYTES;
  const torn = (why: string): number => {
    if (!opts.last) throw new IntegrityError(`segment ${path} at offset ${at}: ${why} in a finished segment`);
    return buf.length - at;
  };
  while (at < buf.length) {
    if (buf.length - at < RECORD_HEADER_BYTES) return done(torn('record header cut short'));
    const rec = decodeRecordHeader(buf, at);
    if (typeof rec === 'string') throw new IntegrityError(`segment ${path} at offset ${at}: ${rec}`);
    const end = at + RECORD_HEADER_BYTES + rec.payloadBytes;
    if (end > buf.length) return done(torn('record cut short'));
    const height = header.firstHeight + offsets.length;
    if (rec.height !== height) {
      throw new IntegrityError(
        `segment ${path} at offset ${at}: holds block ${rec.height} where block ${height} belongs`,
      );
    }
    if (!payloadIntact(rec, buf.subarray(at + RECORD_HEADER_BYTES, end))) {
      throw new IntegrityError(`segment ${path} at offset ${at}: block ${height} payload checksum mismatch`);
    }
    offsets.push(at);
    lastHash = rec.hash;
    at = end;
  }
  return done(0);

  function done(tornBytes: number): ScannedSegment {
    return { firstHeight: header.firstHeight, ledgerId: header.ledgerId, offsets, size: at, lastHash, tornBytes };
  }
}
