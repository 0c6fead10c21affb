import { readFile } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { decodePack, encodePack, isPack, pageHashes, type ChainPage } from '../crypto/packs.js';
import type { Sealer } from '../crypto/seal.js';
import type { StoredBlock } from '../crypto/stored-block.js';
import { IntegrityError, NotFoundError } from '../errors.js';
import { createFile } from './fsutil.js';
import { decodeRecordHeader, encodeRecord, payloadIntact, RECORD_HEADER_BYTES } from './segment-format.js';

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
 * readExport checks an export file's header and seal and returns its head and its chain as pages (loose blocks, and
 * packs from a version 2 file). Framing damage throws IntegrityError naming the offset; the blocks themselves are
 * authenticated when the caller opens them.
 */
export async function readExport(path: string, sealer: Sealer): Promise<{ head: ExportHead; pages: ChainPage[] }> {
  const buf = await readFile(path).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ENOENT' ? new NotFoundError(`export file ${path} does not exist`) : err;
  });
  if (buf.length < HEADER_BYTES || !buf.subarray(0, 4).equals(MAGIC)) {
    throw new IntegrityError(`${path} is not a pawledger export file`);
  }
  if (buf.readUInt32LE(84) !== crc32(buf.subarray(0, 84))) throw new IntegrityError(`${path} has a damaged header`);
  const version = buf[4]!;
  if (version !== 1 && version !== 2) throw new IntegrityError(`${path} has unknown export version ${version}`);
  const head: ExportHead = {
    height: Number(buf.readBigUInt64LE(8)),
    ledgerId: buf.subarray(16, 48).toString('hex'),
    hash: buf.subarray(48, 80).toString('hex'),
  };
  const sealEnd = HEADER_BYTES + buf.readUInt32LE(80);
  if (sealEnd > buf.length) throw new IntegrityError(`${path} is cut short inside its header`);
  sealer.open(
    { ledgerId: head.ledgerId, kind: 'export', height: head.height, hash: head.hash },
    buf.subarray(HEADER_BYTES, sealEnd),
    path,
  );
  const pages: ChainPage[] = [];
  let blocks: StoredBlock[] = [];
  let bytes = 0;
  const flush = () => {
    if (blocks.length > 0) pages.push({ blocks });
    blocks = [];
    bytes = 0;
  };
  let at = sealEnd;
  while (at < buf.length) {
    const where = `${path} at offset ${at}`;
    if (buf.length - at < RECORD_HEADER_BYTES) throw new IntegrityError(`${where}: cut short`);
    const rec = decodeRecordHeader(buf, at);
    if (typeof rec === 'string') throw new IntegrityError(`${where}: ${rec}`);
    const end = at + RECORD_HEADER_BYTES + rec.payloadBytes;
    const payload = buf.subarray(at + RECORD_HEADER_BYTES, end);
    if (end > buf.length || !payloadIntact(rec, payload))
      throw new IntegrityError(`${where}: block ${rec.height} is damaged`);
    if (version === 2 && isPack(payload)) {
      const pack = decodePack(payload, where);
      if (rec.height < pack.from || rec.height > pack.to || pack.hashes[rec.height - pack.from] !== rec.hash)
        throw new IntegrityError(
          `${where}: the record of the pack of blocks ${pack.from}-${pack.to} disagrees with it`,
        );
      flush();
      pages.push({ pack, from: pack.from, to: rec.height });
    } else {
      blocks.push({ height: rec.height, hash: rec.hash, sealed: payload });
      bytes += payload.length;
      if (bytes >= PAGE_BYTES) flush();
    }
    at = end;
  }
  flush();
  return { head, pages };
}
