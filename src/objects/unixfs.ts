/**
 * UnixFS in pawledger: how a sealed file becomes a CID, and how bytes fetched from an untrusted gateway are checked
 * against one. Every check here either returns or throws IntegrityError naming the CID.
 */
import { createHash } from 'node:crypto';
import { CarBlockIterator } from '@ipld/car/iterator';
import { MemoryBlockstore } from 'blockstore-core/memory';
import { exporter } from 'ipfs-unixfs-exporter';
import { importer, type ImporterOptions, type WritableStorage } from 'ipfs-unixfs-importer';
import { fixedSize } from 'ipfs-unixfs-importer/chunker';
import { balanced } from 'ipfs-unixfs-importer/layout';
import { CID } from 'multiformats/cid';
import { IntegrityError, ValidationError } from '../errors.js';

/** CHUNK_SIZE is Kubo's default fixed chunk size (256 KiB). */
export const CHUNK_SIZE = 262_144;

/** UnixfsProfile is one set of UnixFS import parameters: equal bytes give equal CIDs only under equal parameters. */
export interface UnixfsProfile {
  name: string;
  cidVersion: 0 | 1;
  rawLeaves: boolean;
  chunkSize: number;
  maxChildrenPerNode: number;
}

/** KUBO_V1 is `ipfs add --cid-version=1`: CIDv1, raw leaves, 256 KiB fixed chunks, balanced DAG of 174 links. */
export const KUBO_V1: UnixfsProfile = {
  name: 'kubo-v1',
  cidVersion: 1,
  rawLeaves: true,
  chunkSize: CHUNK_SIZE,
  maxChildrenPerNode: 174,
};

/** KUBO_V0 is plain `ipfs add` (and Debian's ipfs_cid): CIDv0, dag-pb leaves, 256 KiB chunks, 174 links. */
export const KUBO_V0: UnixfsProfile = {
  name: 'kubo-v0',
  cidVersion: 0,
  rawLeaves: false,
  chunkSize: CHUNK_SIZE,
  maxChildrenPerNode: 174,
};

/**
 * KNOWN_PROFILES are the parameter sets a remote service is likely to have used, tried in order when a CID must be
 * recomputed: ours, the same DAG with dag-pb leaves (v0 re-encoded as v1, what ipfs_cid prints as CIDv1), plain v0,
 * and the 2025 profile (1 MiB chunks, 1024 links). A CID none of them reproduces is "not recomputable".
 */
export const KNOWN_PROFILES: readonly UnixfsProfile[] = [
  KUBO_V1,
  { name: 'kubo-v1-dag-pb-leaves', cidVersion: 1, rawLeaves: false, chunkSize: CHUNK_SIZE, maxChildrenPerNode: 174 },
  KUBO_V0,
  { name: 'unixfs-v1-2025', cidVersion: 1, rawLeaves: true, chunkSize: 1_048_576, maxChildrenPerNode: 1024 },
];

const RAW_CODEC = 0x55;
const DAG_PB_CODEC = 0x70;
const SHA2_256 = 0x12;
const IDENTITY = 0x00;

/** importerOptions turns a profile into ipfs-unixfs-importer options (a fresh object: the importer mutates it). */
export function importerOptions(profile: UnixfsProfile = KUBO_V1): ImporterOptions {
  return {
    cidVersion: profile.cidVersion,
    rawLeaves: profile.rawLeaves,
    reduceSingleLeafToSelf: true,
    chunker: fixedSize({ chunkSize: profile.chunkSize }),
    layout: balanced({ maxChildrenPerNode: profile.maxChildrenPerNode }),
    wrapWithDirectory: false,
  };
}

/** importBytes adds `bytes` as one UnixFS file into `blockstore` and returns the root CID. */
export async function importBytes(
  bytes: Uint8Array,
  blockstore: WritableStorage,
  profile: UnixfsProfile = KUBO_V1,
): Promise<CID> {
  let root: CID | undefined;
  for await (const entry of importer([{ content: bytes }], blockstore, importerOptions(profile))) root = entry.cid;
  if (!root) throw new Error('ipfs-unixfs-importer yielded no root');
  return root;
}

/** computeCid is the CID Kubo's `ipfs add --cid-version=1` gives `bytes` (or another profile's), without storing it. */
export async function computeCid(bytes: Uint8Array, profile: UnixfsProfile = KUBO_V1): Promise<string> {
  // The blockstore only sinks the blocks; nothing is kept after the call.
  const sink: WritableStorage = { put: async (cid) => cid };
  return (await importBytes(bytes, sink, profile)).toString();
}

/** parseCid parses a CID string, throwing ValidationError (field `cid`) for anything else. */
export function parseCid(cid: string): CID {
  try {
    return CID.parse(cid);
  } catch {
    throw new ValidationError(`${JSON.stringify(cid.slice(0, 80))} is not a CID`, 'cid');
  }
}

import { sha256Hex } from './digest.js';

export { sha256Hex };

/** blockMatches tells whether `block` hashes to `cid`'s multihash (sha2-256 or identity; any other hash is refused). */
export function blockMatches(cid: CID, block: Uint8Array): boolean {
  const mh = cid.multihash;
  if (mh.code === IDENTITY) return Buffer.from(mh.digest).equals(Buffer.from(block));
  if (mh.code !== SHA2_256) return false;
  return Buffer.from(createHash('sha256').update(block).digest()).equals(Buffer.from(mh.digest));
}

/** verifyBlock throws IntegrityError unless `block` is the block `cid` names (a trustless gateway's `?format=raw`). */
export function verifyBlock(cid: string | CID, block: Uint8Array): void {
  const c = typeof cid === 'string' ? parseCid(cid) : cid;
  if (c.multihash.code !== SHA2_256 && c.multihash.code !== IDENTITY) {
    throw new IntegrityError(
      `CID ${c} uses multihash 0x${c.multihash.code.toString(16)}, which pawledger cannot check`,
    );
  }
  if (!blockMatches(c, block)) {
    throw new IntegrityError(`Block fetched for CID ${c} does not hash to that CID`, {
      hint: 'The gateway served altered or wrong content: try another gateway, or the backup on another tier',
    });
  }
}

/** matchProfile returns the first known profile under which `bytes` produce `cid`, or null if none does. */
export async function matchProfile(cid: string | CID, bytes: Uint8Array): Promise<UnixfsProfile | null> {
  const c = typeof cid === 'string' ? parseCid(cid) : cid;
  for (const profile of KNOWN_PROFILES) {
    if (profile.cidVersion !== c.version) continue;
    if ((await computeCid(bytes, profile)) === c.toString()) return profile;
  }
  return null;
}

/** Verified tells how fetched bytes were accepted: by recomputing the CID, or, failing that, by the recorded SHA-256. */
export type Verified = 'cid' | 'sha256';

/**
 * verifyBytes checks a file's bytes fetched by `cid` before anyone uses them, and returns how they were accepted.
 * - A recorded `sha256` (hex) must always match.
 * - A raw CID (one block) is checked by hashing: a mismatch is final.
 * - Otherwise the CID is recomputed under each known profile; if one reproduces it, the bytes are accepted.
 * - A CID no profile reproduces (a service that chunks differently) is accepted only on a matching `sha256`.
 * Anything else throws IntegrityError naming the CID.
 */
export async function verifyBytes(cid: string, bytes: Uint8Array, sha256hex?: string): Promise<Verified> {
  const c = parseCid(cid);
  const hint = 'The gateway served altered or wrong content: try another gateway, or the backup on another tier';
  if (sha256hex !== undefined && sha256Hex(bytes) !== sha256hex.toLowerCase()) {
    throw new IntegrityError(`Content fetched for CID ${cid} does not match its recorded SHA-256`, { hint });
  }
  if (c.code === RAW_CODEC) {
    verifyBlock(c, bytes);
    return 'cid';
  }
  if (await matchProfile(c, bytes)) return 'cid';
  if (sha256hex !== undefined) return 'sha256';
  throw new IntegrityError(
    `Content fetched for CID ${cid} does not match that CID (recomputed with ${KNOWN_PROFILES.map((p) => p.name).join(', ')}) and no SHA-256 was recorded to decide`,
    { hint },
  );
}

/**
 * bytesFromCar reads a CAR (a trustless gateway's `?format=car` answer for `cid`), checks every block's hash against
 * its CID, then walks the UnixFS file from `cid` over the checked blocks only and returns its bytes. This verifies
 * content whatever chunking made it. A block that does not hash to its CID, a missing block, or a root that is not a
 * file throws IntegrityError naming `cid`.
 */
export async function bytesFromCar(cid: string, car: Uint8Array | AsyncIterable<Uint8Array>): Promise<Buffer> {
  const root = parseCid(cid);
  const hint = 'The gateway served an altered or incomplete CAR: try another gateway, or the backup on another tier';
  const store = new MemoryBlockstore();
  let blocks: CarBlockIterator;
  try {
    blocks =
      car instanceof Uint8Array ? await CarBlockIterator.fromBytes(car) : await CarBlockIterator.fromIterable(car);
  } catch (err) {
    throw new IntegrityError(`CAR fetched for CID ${cid} is not a readable CAR`, { hint, cause: err });
  }
  try {
    for await (const block of blocks) {
      if (block.cid.code !== RAW_CODEC && block.cid.code !== DAG_PB_CODEC) continue; // never needed by a UnixFS file
      if (block.cid.multihash.code !== SHA2_256 && block.cid.multihash.code !== IDENTITY) continue;
      if (!blockMatches(block.cid, block.bytes)) {
        throw new IntegrityError(`CAR fetched for CID ${cid} holds block ${block.cid} whose bytes do not hash to it`, {
          hint,
        });
      }
      await store.put(block.cid, block.bytes);
    }
  } catch (err) {
    if (err instanceof IntegrityError) throw err;
    throw new IntegrityError(`CAR fetched for CID ${cid} is truncated or malformed`, { hint, cause: err });
  }
  if (root.multihash.code !== IDENTITY && !(await store.has(root))) {
    throw new IntegrityError(`CAR fetched for CID ${cid} does not hold its root block`, { hint });
  }
  try {
    const entry = await exporter(root, store, { offline: true });
    if (entry.type !== 'file' && entry.type !== 'raw' && entry.type !== 'identity') {
      throw new IntegrityError(`CID ${cid} is a UnixFS ${entry.type}, not a file`);
    }
    const chunks: Uint8Array[] = [];
    for await (const chunk of entry.content()) chunks.push(chunk);
    return Buffer.concat(chunks);
  } catch (err) {
    if (err instanceof IntegrityError) throw err;
    throw new IntegrityError(`CAR fetched for CID ${cid} does not hold the whole file (${(err as Error).message})`, {
      hint,
      cause: err,
    });
  }
}
