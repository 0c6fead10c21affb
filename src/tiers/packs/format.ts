import type { BackupKind } from '../../crypto/records.js';
import type { Sealer } from '../../crypto/seal.js';
import { IntegrityError } from '../../errors.js';
import { sha256Hex } from '../../ledger/block.js';
import { canonicalJson } from '../../ledger/canonical.js';
import { decodeRecordHeader, encodeRecord, payloadIntact, RECORD_HEADER_BYTES } from '../../crypto/framing.js';
import type { StoredBlock } from '../../crypto/stored-block.js';

/**
 * The IPFS format (docs/FORMAT.md). A pack is a sealed object (kind 'pack', bound to its last block's height and
 * hash) whose body is a run of sealed blocks in the local store's record framing. A manifest is a sealed object
 * (kind 'manifest', bound to the head's height and hash) whose body is canonical JSON naming every pack of the
 * chain, oldest first, with each pack's CID and SHA-256. A manifest's CID is a backup's restore handle.
 */
export interface PackRef {
  cid: string;
  /** sha256 of the sealed pack bytes (hex): checked on fetch, whatever the gateway. */
  sha256: string;
  from: number;
  to: number;
  lastHash: string;
  bytes: number;
}

/** Manifest is what a backup on IPFS holds. */
export interface Manifest {
  version: 1;
  ledgerId: string;
  name: string;
  kind: BackupKind;
  /** recordSeal is the backup record's seal (base64), the same MAC a database record carries. */
  recordSeal: string;
  createdAt: string;
  createdBy: number | null;
  height: number;
  headHash: string;
  /** sizeBytes is the chain's sealed size, as in a database record. */
  sizeBytes: number;
  packs: PackRef[];
  /** root is the chain accumulator's root at the head (hex), as the backup record has it; absent in older manifests. */
  root?: string;
  /** previous is the CID of the manifest this one followed, so history can be walked from the newest. */
  previous: string | null;
}

/** sealPack frames and seals a run of consecutive blocks. */
export function sealPack(
  sealer: Sealer,
  ledgerId: string,
  blocks: readonly StoredBlock[],
): { sealed: Buffer; ref: Omit<PackRef, 'cid'> } {
  const body = Buffer.concat(blocks.map((b) => encodeRecord(b.height, b.hash, b.sealed)));
  const last = blocks.at(-1)!;
  const sealed = sealer.seal({ ledgerId, kind: 'pack', height: last.height, hash: last.hash }, body);
  return {
    sealed,
    ref: {
      sha256: sha256Hex(sealed),
      from: blocks[0]!.height,
      to: last.height,
      lastHash: last.hash,
      bytes: sealed.length,
    },
  };
}

/** openPack checks a fetched pack against its reference and returns its blocks. */
export function openPack(sealer: Sealer, ledgerId: string, ref: PackRef, sealed: Buffer): StoredBlock[] {
  const where = `pack ${ref.cid}`;
  if (sha256Hex(sealed) !== ref.sha256)
    throw new IntegrityError(`${where} does not match the SHA-256 its manifest records`);
  const body = sealer.open({ ledgerId, kind: 'pack', height: ref.to, hash: ref.lastHash }, sealed, where);
  const blocks: StoredBlock[] = [];
  for (let at = 0; at < body.length; ) {
    const rec = body.length - at >= RECORD_HEADER_BYTES ? decodeRecordHeader(body, at) : 'cut short';
    if (typeof rec === 'string') throw new IntegrityError(`${where} at offset ${at}: ${rec}`);
    const payload = body.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + rec.payloadBytes);
    if (!payloadIntact(rec, payload)) throw new IntegrityError(`${where}: block ${rec.height} is damaged`);
    blocks.push({ height: rec.height, hash: rec.hash, sealed: payload });
    at += RECORD_HEADER_BYTES + rec.payloadBytes;
  }
  if (blocks[0]?.height !== ref.from || blocks.at(-1)?.height !== ref.to || blocks.at(-1)?.hash !== ref.lastHash) {
    throw new IntegrityError(`${where} holds blocks other than ${ref.from}..${ref.to} its manifest names`);
  }
  return blocks;
}

/** sealManifest seals a manifest, bound to its head. */
export function sealManifest(sealer: Sealer, m: Manifest): Buffer {
  return sealer.seal(
    { ledgerId: m.ledgerId, kind: 'manifest', height: m.height, hash: m.headHash },
    Buffer.from(canonicalJson(m)),
  );
}

const MANIFEST_PREFIX = Buffer.from('PWLM', 'latin1');

/**
 * encodeManifestFile prefixes the sealed manifest with the clear (ledger id, height, head hash) it is bound to, so a
 * manifest can be opened from its CID alone: `PWLM` | u8 version | height u64 LE | ledger id (32) | head hash (32).
 */
export function encodeManifestFile(m: Manifest, sealed: Buffer): Buffer {
  const head = Buffer.alloc(77);
  MANIFEST_PREFIX.copy(head, 0);
  head[4] = 1;
  head.writeBigUInt64LE(BigInt(m.height), 5);
  head.write(m.ledgerId, 13, 32, 'hex');
  head.write(m.headHash, 45, 32, 'hex');
  return Buffer.concat([head, sealed]);
}

/** decodeManifestFile opens a manifest file fetched by CID; anything that does not verify throws IntegrityError. */
export function decodeManifestFile(sealer: Sealer, cid: string, file: Buffer): Manifest {
  const where = `manifest ${cid}`;
  if (file.length < 77 || !file.subarray(0, 4).equals(MANIFEST_PREFIX) || file[4] !== 1) {
    throw new IntegrityError(`${where} is not a pawledger manifest`);
  }
  const height = Number(file.readBigUInt64LE(5));
  const ledgerId = file.subarray(13, 45).toString('hex');
  const headHash = file.subarray(45, 77).toString('hex');
  const body = sealer.open({ ledgerId, kind: 'manifest', height, hash: headHash }, file.subarray(77), where);
  let m: Manifest;
  try {
    m = JSON.parse(body.toString('utf8')) as Manifest;
  } catch {
    throw new IntegrityError(`${where} does not hold JSON`);
  }
  if (m.ledgerId !== ledgerId || m.height !== height || m.headHash !== headHash || !Array.isArray(m.packs)) {
    throw new IntegrityError(`${where} disagrees with the head it is sealed to`);
  }
  let next = 0;
  for (const p of m.packs) {
    if (p.from !== next || p.to < p.from) throw new IntegrityError(`${where} has a gap or overlap at block ${next}`);
    next = p.to + 1;
  }
  if (next !== height + 1)
    throw new IntegrityError(`${where} packs end at block ${next - 1}, not at its head ${height}`);
  return m;
}

/**
 * planMerge returns how many packs at the tail to merge into one, so that a manifest keeps O(log n) packs: like a
 * binary counter, tail packs merge while the one before is no larger than what is merged so far, up to `capBytes`.
 */
export function planMerge(packs: readonly PackRef[], capBytes: number): number {
  let n = 1;
  let bytes = packs.at(-1)?.bytes ?? 0;
  while (n < packs.length) {
    const before = packs[packs.length - n - 1]!;
    if (before.bytes > bytes || bytes + before.bytes > capBytes) break;
    bytes += before.bytes;
    n++;
  }
  return n;
}

const pad = (n: number, width = 12) => String(n).padStart(width, '0');

/** packKey is where a named store keeps a pack: under its ledger, by its first and last height and its SHA-256. */
export function packKey(ledgerId: string, ref: Omit<PackRef, 'cid'>): string {
  return `ledgers/${ledgerId}/packs/${pad(ref.from)}-${pad(ref.to)}-${ref.sha256.slice(0, 16)}.pack`;
}

/**
 * manifestKey is where a named store keeps a manifest: under its ledger, by the time it was written first (`atMs`,
 * increasing within a process), so that the key order is the order the backups were made in (a rollback's manifest
 * sorts after the longer chain it left), and ending -h for the chain's head or -p for a backup of an older point.
 */
export function manifestKey(m: Manifest, file: Uint8Array, atMs: number, head: boolean): string {
  return `ledgers/${m.ledgerId}/manifests/${pad(atMs, 15)}-${pad(m.height)}-${sha256Hex(file).slice(0, 16)}-${head ? 'h' : 'p'}.manifest`;
}
