import { open } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { decodePack, encodePack, isPack, pageHashes, type ChainPage } from '../crypto/packs.js';
import type { Sealer } from '../crypto/seal.js';
import type { StoredBlock } from '../crypto/stored-block.js';
import { IntegrityError, NotFoundError } from '../errors.js';
import { createFile } from './fsutil.js';
import { decodeRecordHeader, encodeRecord, MAX_PAYLOAD, payloadIntact, RECORD_HEADER_BYTES } from './segment-format.js';

/**
 * The export file (docs/FORMAT.md): the whole chain in one file, for `pawledger export` and `import`.
 *
 *   magic "PWLX" (4) | version u8 (1) | reserved (3) | head height u64 LE (8) | ledger id (32) | head hash (32)
 *   | seal length u32 LE (4) | crc32 of the preceding 84 bytes (4) | sealed export object | records...
 *
 * The sealed export object binds (ledger id, 'export', head height, head hash), so the clear header cannot be edited
 * to pass off a shorter chain; the records are the local store's framing, heights 0..head in order. In version 1
 * every record is a sealed block; version 2 (written now) also holds packs: a record whose payload is a pack's
 * stored form (crypto/packs.ts, magic "PWPK"), its height and hash those of the last block of the pack the chain
 * uses (a pack may run past the head of an older backup's chain). Both versions import.
 */
const MAGIC = Buffer.from('PWLX', 'latin1');
const HEADER_BYTES = 88;
/** EXPORT_VERSION is the version writeExport writes; readExport reads it and version 1. */
export const EXPORT_VERSION = 2;
// Loose blocks are handed on in pages of about this many bytes.
const PAGE_BYTES = 4 * 1024 * 1024;

/** ExportHead is what an export file claims to hold. */
export interface ExportHead {
  ledgerId: string;
  height: number;
  hash: string;
}

/**
 * writeExport writes the chain to a new file at `path` atomically (temp file, fsync, then into place); an existing
 * file is replaced only with `replace`, and never anything that is not a regular file (createFile).
 */
export async function writeExport(
  path: string,
  head: ExportHead,
  pages: AsyncIterable<ChainPage>,
  sealer: Sealer,
  replace = false,
): Promise<{ bytes: number }> {
  const seal = sealer.seal(
    { ledgerId: head.ledgerId, kind: 'export', height: head.height, hash: head.hash },
    Buffer.from(`pawledger export v${EXPORT_VERSION}`),
  );
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header[4] = EXPORT_VERSION;
  header.writeBigUInt64LE(BigInt(head.height), 8);
  header.write(head.ledgerId, 16, 32, 'hex');
  header.write(head.hash, 48, 32, 'hex');
  header.writeUInt32LE(seal.length, 80);
  header.writeUInt32LE(crc32(header.subarray(0, 84)), 84);
  let bytes = 0;
  async function* frames(): AsyncGenerator<Buffer> {
    yield Buffer.concat([header, seal]);
    bytes += header.length + seal.length;
    for await (const page of pages) {
      if ('blocks' in page) {
        const f = Buffer.concat(page.blocks.map((b) => encodeRecord(b.height, b.hash, b.sealed)));
        bytes += f.length;
        yield f;
        continue;
      }
      // The chain is exported from block 0, so a pack is always taken from its first block.
      if (page.from !== page.pack.from) throw new Error(`an export cannot start inside a pack (block ${page.from})`);
      const f = encodeRecord(page.to, pageHashes(page).at(-1)!, encodePack(page.pack));
      bytes += f.length;
      yield f;
    }
  }
  await createFile(path, frames(), { mode: 0o400, replace });
  return { bytes };
}

/**
 * readExport checks an export file's header and seal and returns its head, and its chain as pages read from the file
 * as they are consumed (loose blocks about 4 MiB at a time, and packs whole from a version 2 file): memory stays
 * bounded whatever the chain's length. Framing damage throws IntegrityError naming the offset, from readExport for
 * the header and from the pages for a record; the blocks themselves are authenticated when the caller opens them.
 */
export async function readExport(
  path: string,
  sealer: Sealer,
): Promise<{ head: ExportHead; pages: AsyncIterable<ChainPage> }> {
  const fh = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ENOENT' ? new NotFoundError(`export file ${path} does not exist`) : err;
  });
  try {
    const buf = Buffer.alloc(HEADER_BYTES);
    const got = (await fh.read(buf, 0, HEADER_BYTES, 0)).bytesRead;
    if (got < HEADER_BYTES || !buf.subarray(0, 4).equals(MAGIC))
      throw new IntegrityError(`${path} is not a pawledger export file`);
    if (buf.readUInt32LE(84) !== crc32(buf.subarray(0, 84))) throw new IntegrityError(`${path} has a damaged header`);
    const version = buf[4]!;
    if (version !== 1 && version !== 2) throw new IntegrityError(`${path} has unknown export version ${version}`);
    const head: ExportHead = {
      height: Number(buf.readBigUInt64LE(8)),
      ledgerId: buf.subarray(16, 48).toString('hex'),
      hash: buf.subarray(48, 80).toString('hex'),
    };
    const seal = Buffer.alloc(Math.min(buf.readUInt32LE(80), MAX_PAYLOAD));
    if ((await fh.read(seal, 0, seal.length, HEADER_BYTES)).bytesRead !== buf.readUInt32LE(80))
      throw new IntegrityError(`${path} is cut short inside its header`);
    sealer.open({ ledgerId: head.ledgerId, kind: 'export', height: head.height, hash: head.hash }, seal, path);
    return { head, pages: pagesOf(path, version, HEADER_BYTES + seal.length) };
  } finally {
    await fh.close();
  }
}

// The records of an export file from `start` on, as pages.
async function* pagesOf(path: string, version: number, start: number): AsyncGenerator<ChainPage> {
  const fh = await open(path, 'r');
  try {
    let buf = Buffer.alloc(0);
    let at = start;
    let eof = false;
    // Have at least n bytes from `at` in buf, unless the file ends first.
    const fill = async (n: number): Promise<boolean> => {
      while (buf.length < n && !eof) {
        const chunk = Buffer.allocUnsafe(Math.max(PAGE_BYTES, n - buf.length));
        const { bytesRead } = await fh.read(chunk, 0, chunk.length, at + buf.length);
        eof = bytesRead === 0;
        buf = Buffer.concat([buf, chunk.subarray(0, bytesRead)]);
      }
      return buf.length >= n;
    };
    let blocks: StoredBlock[] = [];
    let bytes = 0;
    while (await fill(1)) {
      const where = `${path} at offset ${at}`;
      if (!(await fill(RECORD_HEADER_BYTES))) throw new IntegrityError(`${where}: cut short`);
      const rec = decodeRecordHeader(buf, 0);
      if (typeof rec === 'string') throw new IntegrityError(`${where}: ${rec}`);
      const end = RECORD_HEADER_BYTES + rec.payloadBytes;
      const whole = await fill(end);
      const payload = buf.subarray(RECORD_HEADER_BYTES, end);
      if (!whole || !payloadIntact(rec, payload)) throw new IntegrityError(`${where}: block ${rec.height} is damaged`);
      if (version === 2 && isPack(payload)) {
        const pack = decodePack(payload, where);
        if (rec.height < pack.from || rec.height > pack.to || pack.hashes[rec.height - pack.from] !== rec.hash)
          throw new IntegrityError(
            `${where}: the record of the pack of blocks ${pack.from}-${pack.to} disagrees with it`,
          );
        if (blocks.length > 0) yield { blocks };
        blocks = [];
        bytes = 0;
        yield { pack, from: pack.from, to: rec.height };
      } else {
        blocks.push({ height: rec.height, hash: rec.hash, sealed: payload });
        bytes += payload.length;
        if (bytes >= PAGE_BYTES) {
          yield { blocks };
          blocks = [];
          bytes = 0;
        }
      }
      buf = buf.subarray(end);
      at += end;
    }
    if (blocks.length > 0) yield { blocks };
  } finally {
    await fh.close();
  }
}
