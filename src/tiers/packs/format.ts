import { keyIdOf } from '../../crypto/reseal.js';
import type { Sealer } from '../../crypto/seal.js';
import { IntegrityError } from '../../errors.js';
import { sha256Hex } from '../../ledger/block.js';
import { decodeRecordHeader, encodeRecord, payloadIntact, RECORD_HEADER_BYTES } from '../../crypto/framing.js';
import type { StoredBlock } from '../../crypto/stored-block.js';

/**
 * The pack tiers' objects (docs/FORMAT.md, "Packs"). A pack of sealed blocks (the tier's own form, for blocks the
 * ledger has not packed yet) is a sealed object (kind 'pack', bound to its last block's height and hash) whose body
 * is a run of sealed blocks in the local store's record framing. A manifest file is a sealed object (kind
 * 'manifest', bound to the head's height and hash) behind its clear head; manifest.ts says what its body holds.
 * PackRef is how a v1 manifest named its packs.
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

/**
 * ManifestHead is what a manifest is sealed to, kept in the clear in front of it so it opens from its id alone; with
 * the chain accumulator's root at the head, when the record has one.
 */
export interface ManifestHead {
  ledgerId: string;
  height: number;
  headHash: string;
  root?: string;
}

const MANIFEST_PREFIX = Buffer.from('PWLM', 'latin1');
const FILE_HEAD = 77;
const FILE_HEAD_WITH_ROOT = FILE_HEAD + 32;

/**
 * encodeManifestFile seals a manifest's body to its head and prefixes the clear head, so that a manifest can be opened
 * from its id alone: `PWLM` | u8 version | height u64 LE | ledger id (32) | head hash (32) | [root (32)] | sealed body.
 * Version 2 carries the chain's root in the clear (version 1, without it, is what older records make): anyone holding
 * a manifest's CID can then read which chain it commits to, (height, head hash, root), without the key, and check a
 * property's proof against it (docs/FORMAT.md, "Proofs").
 */
export function encodeManifestFile(sealer: Sealer, head: ManifestHead, body: Buffer): Buffer {
  if (head.root !== undefined && !/^[0-9a-f]{64}$/.test(head.root))
    throw new IntegrityError(`a manifest's root must be 64 hex digits, not ${JSON.stringify(head.root).slice(0, 80)}`);
  const file = Buffer.alloc(head.root ? FILE_HEAD_WITH_ROOT : FILE_HEAD);
  MANIFEST_PREFIX.copy(file, 0);
  file[4] = head.root ? 2 : 1;
  file.writeBigUInt64LE(BigInt(head.height), 5);
  file.write(head.ledgerId, 13, 32, 'hex');
  file.write(head.headHash, 45, 32, 'hex');
  if (head.root) file.write(head.root, FILE_HEAD, 32, 'hex');
  const sealed = sealer.seal(
    { ledgerId: head.ledgerId, kind: 'manifest', height: head.height, hash: head.headHash },
    body,
  );
  return Buffer.concat([file, sealed]);
}

/**
 * manifestCommitment reads, without the key, what a manifest file commits to: its ledger, head and (version 2) the
 * chain accumulator's root. It checks only the file's form; whether the bytes are the manifest a CID names is the
 * CID's check, and whether the sealed body agrees is openManifestFile's.
 */
export function manifestCommitment(file: Buffer): ManifestHead {
  const version = file[4];
  const head = version === 2 ? FILE_HEAD_WITH_ROOT : FILE_HEAD;
  if (file.length < head || !file.subarray(0, 4).equals(MANIFEST_PREFIX) || (version !== 1 && version !== 2))
    throw new IntegrityError('not a pawledger manifest');
  return {
    ledgerId: file.subarray(13, 45).toString('hex'),
    height: Number(file.readBigUInt64LE(5)),
    headHash: file.subarray(45, 77).toString('hex'),
    ...(version === 2 ? { root: file.subarray(FILE_HEAD, FILE_HEAD_WITH_ROOT).toString('hex') } : {}),
  };
}

/** manifestSealKeyId is the id of the key that sealed a manifest file's body, read from its header (not opened). */
export function manifestSealKeyId(file: Buffer): string {
  const clear = manifestCommitment(file);
  return keyIdOf(file.subarray(clear.root === undefined ? FILE_HEAD : FILE_HEAD_WITH_ROOT));
}

/**
 * openManifestFile opens a manifest file fetched by id and returns its body as JSON (v1 or v2), checked against the
 * head it is sealed to (and the root in the clear, when it has one); anything that does not verify throws
 * IntegrityError.
 */
export function openManifestFile(sealer: Sealer, id: string, file: Buffer): Record<string, unknown> & ManifestHead {
  const where = `manifest ${id}`;
  let clear: ManifestHead;
  try {
    clear = manifestCommitment(file);
  } catch {
    throw new IntegrityError(`${where} is not a pawledger manifest`);
  }
  const { ledgerId, height, headHash } = clear;
  const offset = clear.root === undefined ? FILE_HEAD : FILE_HEAD_WITH_ROOT;
  const body = sealer.open({ ledgerId, kind: 'manifest', height, hash: headHash }, file.subarray(offset), where);
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new IntegrityError(`${where} does not hold JSON`);
  }
  if (m === null || typeof m !== 'object' || m.ledgerId !== ledgerId || m.height !== height || m.headHash !== headHash)
    throw new IntegrityError(`${where} disagrees with the head it is sealed to`);
  // The root in the clear is not under the seal: it must be the one the sealed body holds.
  if (clear.root !== undefined && m.root !== clear.root)
    throw new IntegrityError(`${where}: the root in the clear is not the root it holds`);
  return m as Record<string, unknown> & ManifestHead;
}

/**
 * planMerge returns how many packs at the tail to merge into one, so that a manifest keeps O(log n) packs: like a
 * binary counter, tail packs merge while the one before is no larger than what is merged so far, up to `capBytes`.
 */
export function planMerge(packs: readonly { bytes: number }[], capBytes: number): number {
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
export function manifestKey(m: ManifestHead, file: Uint8Array, atMs: number, head: boolean): string {
  return `ledgers/${m.ledgerId}/manifests/${pad(atMs, 15)}-${pad(m.height)}-${sha256Hex(file).slice(0, 16)}-${head ? 'h' : 'p'}.manifest`;
}

/**
 * objectKey is where a named store keeps the other objects of a ledger, by the heights they cover and their SHA-256:
 * `ledgers/<id>/packs/<from>-<to>-<sha>.pwpk` a pack the ledger sealed, `ledgers/<id>/lists/<from>-<to>-<sha>.list`
 * a pack list, `ledgers/<id>/checkpoints/<height>-<to: part index>-<sha>.part` a checkpoint's part.
 */
export function objectKey(
  ledgerId: string,
  what: 'pwpk' | 'list' | 'part',
  from: number,
  to: number,
  sha256: string,
): string {
  const folder = what === 'pwpk' ? 'packs' : what === 'list' ? 'lists' : 'checkpoints';
  return `ledgers/${ledgerId}/${folder}/${pad(from)}-${pad(to)}-${sha256.slice(0, 16)}.${what}`;
}
