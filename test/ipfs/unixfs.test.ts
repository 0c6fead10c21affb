import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CarWriter } from '@ipld/car/writer';
import * as dagPb from '@ipld/dag-pb';
import { MemoryBlockstore } from 'blockstore-core/memory';
import { importer } from 'ipfs-unixfs-importer';
import { fixedSize } from 'ipfs-unixfs-importer/chunker';
import { balanced } from 'ipfs-unixfs-importer/layout';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { sha256 } from 'multiformats/hashes/sha2';
import { afterAll, describe, expect, it } from 'vitest';
import { IntegrityError } from '../../src/errors.js';
import {
  bytesFromCar,
  computeCid,
  importBytes,
  KUBO_V0,
  verifyBytes,
  type UnixfsProfile,
} from '../../src/objects/unixfs.js';

const KIB = 1024;
const small = randomBytes(3000);
const big = randomBytes(600 * KIB); // three 256 KiB chunks
const ODD: UnixfsProfile = { name: 'odd', cidVersion: 1, rawLeaves: true, chunkSize: 100_000, maxChildrenPerNode: 174 };

/** Straight from ipfs-unixfs-importer with Kubo's `--cid-version=1` parameters, not through our helper. */
async function importerCid(bytes: Uint8Array, blockstore = new MemoryBlockstore()): Promise<CID> {
  let root: CID | undefined;
  const options = {
    cidVersion: 1 as const,
    rawLeaves: true,
    chunker: fixedSize({ chunkSize: 262_144 }),
    layout: balanced({ maxChildrenPerNode: 174 }),
  };
  for await (const e of importer([{ content: bytes }], blockstore, options)) root = e.cid;
  return root!;
}

/** carOf writes the DAG under `root` as a CAR, optionally altering one block's bytes or leaving one out. */
async function carOf(
  store: MemoryBlockstore,
  root: CID,
  change: { flip?: number; drop?: number } = {},
): Promise<Uint8Array> {
  const { writer, out } = CarWriter.create([root]);
  const parts: Uint8Array[] = [];
  const collected = (async () => {
    for await (const p of out) parts.push(p);
  })();
  const order: CID[] = [];
  const walk = async (c: CID): Promise<void> => {
    order.push(c);
    if (c.code === dagPb.code) for (const l of dagPb.decode(await get(store, c)).Links) await walk(l.Hash);
  };
  await walk(root);
  for (const [i, c] of order.entries()) {
    if (i === change.drop) continue;
    const bytes = Buffer.from(await get(store, c));
    if (i === change.flip) bytes[10] = (bytes[10] ?? 0) ^ 1;
    await writer.put({ cid: c, bytes });
  }
  await writer.close();
  await collected;
  return Buffer.concat(parts);
}

async function get(store: MemoryBlockstore, cid: CID): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of store.get(cid)) parts.push(p);
  return Buffer.concat(parts);
}

describe('computeCid', () => {
  it('gives a one-chunk file the raw CID of its SHA-256, as Kubo --cid-version=1 does', async () => {
    const expected = CID.createV1(raw.code, await sha256.digest(small)).toString();
    expect(await computeCid(small)).toBe(expected);
    expect(expected.startsWith('bafkrei')).toBe(true);
  });

  it('equals ipfs-unixfs-importer for a multi-chunk file (dag-pb root over 256 KiB raw leaves)', async () => {
    const store = new MemoryBlockstore();
    const root = await importerCid(big, store);
    expect(await computeCid(big)).toBe(root.toString());
    expect(root.code).toBe(dagPb.code);
    const links = dagPb.decode(await get(store, root)).Links;
    expect(links.map((l) => l.Hash.code)).toEqual([raw.code, raw.code, raw.code]);
    expect(await computeCid(Buffer.alloc(262_144, 7))).toBe((await importerCid(Buffer.alloc(262_144, 7))).toString());
  });

  const ipfsCid = '/usr/bin/ipfs_cid';
  describe.skipIf(!existsSync(ipfsCid))('against Debian ipfs_cid (CIDv0)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pawledger-cid-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    for (const [label, bytes] of [
      ['one chunk', small],
      ['exactly 256 KiB', randomBytes(262_144)],
      ['three chunks', big],
    ] as const) {
      it(`agrees on ${label}`, async () => {
        const file = join(dir, `${label.replace(/\W/g, '_')}.bin`);
        writeFileSync(file, bytes);
        const printed = JSON.parse(
          execFileSync(ipfsCid, [file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
        ) as { CIDv0: string; CIDv1: string };
        const store = new MemoryBlockstore();
        expect((await importBytes(bytes, store, KUBO_V0)).toString()).toBe(printed.CIDv0);
        expect(await computeCid(bytes, KUBO_V0)).toBe(printed.CIDv0);
        // ipfs_cid's "CIDv1" is the same dag-pb DAG renamed, not Kubo's --cid-version=1 (raw leaves) CID.
        expect(CID.parse(printed.CIDv0).toV1().toString()).toBe(printed.CIDv1);
      });
    }
  });
});

describe('verifyBytes', () => {
  it('accepts the bytes a CID names, by recomputing it', async () => {
    expect(await verifyBytes(await computeCid(small), small)).toBe('cid');
    expect(await verifyBytes(await computeCid(big), big)).toBe('cid');
    expect(await verifyBytes(await computeCid(big, KUBO_V0), big)).toBe('cid');
  });

  it('refuses altered bytes with IntegrityError naming the CID', async () => {
    for (const bytes of [small, big]) {
      const cid = await computeCid(bytes);
      const altered = Buffer.from(bytes);
      altered[altered.length - 1] = (altered[altered.length - 1] ?? 0) ^ 1;
      const err = await verifyBytes(cid, altered).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IntegrityError);
      expect((err as Error).message).toContain(cid);
    }
  });

  it('lets a recorded SHA-256 decide only where the CID cannot be recomputed', async () => {
    const cid = await computeCid(big, ODD); // a service that chunks at 100 000 bytes
    const hex = createHash('sha256').update(big).digest('hex');
    expect(await verifyBytes(cid, big, hex)).toBe('sha256');
    await expect(verifyBytes(cid, big)).rejects.toThrow(IntegrityError);
    await expect(verifyBytes(cid, big, '00'.repeat(32))).rejects.toThrow(IntegrityError);
    // A raw CID is checked by its hash, whatever SHA-256 is recorded.
    const other = randomBytes(100);
    await expect(
      verifyBytes(await computeCid(small), other, createHash('sha256').update(other).digest('hex')),
    ).rejects.toThrow(IntegrityError);
  });
});

describe('bytesFromCar', () => {
  it('returns the file from a CAR whose every block checks out, whatever its chunking', async () => {
    for (const profile of [undefined, ODD]) {
      const store = new MemoryBlockstore();
      const root = await importBytes(big, store, profile);
      expect((await bytesFromCar(root.toString(), await carOf(store, root))).equals(big)).toBe(true);
    }
    const store = new MemoryBlockstore();
    const root = await importBytes(small, store);
    expect((await bytesFromCar(root.toString(), await carOf(store, root))).equals(small)).toBe(true);
  });

  it('refuses an altered block, a missing block, and a non-CAR with IntegrityError naming the root', async () => {
    const store = new MemoryBlockstore();
    const root = await importBytes(big, store);
    const cid = root.toString();
    for (const car of [
      await carOf(store, root, { flip: 2 }),
      await carOf(store, root, { flip: 0 }),
      await carOf(store, root, { drop: 3 }),
      await carOf(store, root, { drop: 0 }),
      big,
    ]) {
      const err = await bytesFromCar(cid, car).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IntegrityError);
      expect((err as Error).message).toContain(cid);
    }
  });
});
