import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NextToLast } from 'blockstore-fs/sharding';
import { importFile } from 'ipfs-unixfs-importer';
import { fixedSize } from 'ipfs-unixfs-importer/chunker';
import { balanced } from 'ipfs-unixfs-importer/layout';
import { CID } from 'multiformats/cid';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, IntegrityError, NotFoundError } from '../../src/errors.js';
import { EmbeddedIpfsStore } from '../../src/objects/embedded.js';

/** imported is what ipfs-unixfs-importer makes of `bytes` with Kubo's `--cid-version=1` parameters: root and blocks. */
async function imported(bytes: Uint8Array): Promise<{ cid: string; leaves: CID[] }> {
  const blocks: CID[] = [];
  const sink = { put: async (cid: CID) => (blocks.push(cid), cid) };
  const opts = {
    cidVersion: 1 as const,
    rawLeaves: true,
    chunker: fixedSize({ chunkSize: 262_144 }),
    layout: balanced({ maxChildrenPerNode: 174 }),
  };
  const { cid } = await importFile({ content: bytes }, sink, opts);
  return { cid: cid.toString(), leaves: blocks.filter((b) => b.code === 0x55) };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pl-ipfs-embedded-'));
  dirs.push(dir);
  return dir;
}

const sharding = new NextToLast();
const blockFile = (dir: string, cid: CID | string) => {
  const { dir: shard, file } = sharding.encode(typeof cid === 'string' ? CID.parse(cid) : cid);
  return join(dir, 'blocks', shard, file);
};
async function countBlocks(dir: string): Promise<number> {
  let n = 0;
  for (const shard of await readdir(join(dir, 'blocks')))
    n += (await readdir(join(dir, 'blocks', shard))).filter((f) => f.endsWith('.data')).length;
  return n;
}

const small = randomBytes(1000);
const big = randomBytes(600 * 1024); // three 256 KiB chunks

describe('EmbeddedIpfsStore over blockstore-fs', () => {
  it('round-trips small and multi-chunk files under the CIDs ipfs-unixfs-importer computes', async () => {
    const dir = await tempDir();
    const p = new EmbeddedIpfsStore({ dir });
    for (const bytes of [small, big]) {
      const cid = await p.put(bytes, { key: 'test', label: 'f.bin', keyvalues: { k: 'v' } });
      expect(cid).toBe((await imported(bytes)).cid);
      expect((await p.get(cid)).equals(bytes)).toBe(true);
      expect(await p.put(bytes, { key: 'test', label: 'again.bin' })).toBe(cid);
    }
    const pins = await readdir(join(dir, 'pins'));
    expect(pins.sort()).toEqual([`${(await imported(small)).cid}.json`, `${(await imported(big)).cid}.json`].sort());
    await p.close();
  });

  it('reports a missing block under a pinned root as damage, an unknown CID as NotFoundError', async () => {
    const dir = await tempDir();
    const p = new EmbeddedIpfsStore({ dir });
    const { cid, leaves } = await imported(big);
    await p.put(big, { key: 'test', label: 'big.bin' });
    await unlink(blockFile(dir, leaves[1]!));
    const damaged = await rejection(p.get(cid));
    expect(damaged).toBeInstanceOf(IntegrityError);
    expect(damaged.message).toContain(cid);
    const absent = (await imported(randomBytes(64))).cid;
    const err = await rejection(p.get(absent));
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.message).toContain(absent);
  });

  it('unpins and collects blocks no other pin needs; unpinning what is not pinned is fine', async () => {
    const dir = await tempDir();
    const p = new EmbeddedIpfsStore({ dir });
    const longer = Buffer.concat([big, randomBytes(300 * 1024)]); // shares big's first two chunks
    const a = await p.put(big, { key: 'test', label: 'a' });
    const b = await p.put(longer, { key: 'test', label: 'b' });
    const c = await p.put(small, { key: 'test', label: 'c' });
    const before = await countBlocks(dir);
    await p.delete(a);
    expect(await rejection(p.get(a))).toBeInstanceOf(NotFoundError);
    expect((await p.get(b)).equals(longer)).toBe(true);
    expect((await p.get(c)).equals(small)).toBe(true);
    // a's root and its third leaf (not shared with b) are gone; the two shared leaves stay
    expect(await countBlocks(dir)).toBe(before - 2);
    await p.delete(a);
    await p.delete((await imported(randomBytes(64))).cid);
    await p.delete(b);
    await p.delete(c);
    expect(await countBlocks(dir)).toBe(0);
  });

  it('keeps every block when a remaining pin cannot be walked', async () => {
    const dir = await tempDir();
    const p = new EmbeddedIpfsStore({ dir });
    const a = await p.put(small, { key: 'test', label: 'a' });
    const b = await p.put(big, { key: 'test', label: 'b' });
    const root = blockFile(dir, b); // b's dag-pb root: the sweep must read it to know b's leaves
    const data = await readFile(root);
    data[data.length - 1]! ^= 0x01;
    await writeFile(root, data);
    const before = await countBlocks(dir);
    await p.delete(a);
    expect(await countBlocks(dir)).toBe(before);
    expect((await p.get(a)).equals(small)).toBe(true); // unpinned, but not collected: read like any present block
    expect(await rejection(p.get(b))).toBeInstanceOf(IntegrityError);
  });

  it('check proves the folder is writable; a folder it cannot create is ConfigError', async () => {
    const dir = await tempDir();
    await new EmbeddedIpfsStore({ dir: join(dir, 'ipfs') }).check();
    expect((await readdir(join(dir, 'ipfs'))).sort()).toEqual(['blocks', 'pins']);
    await writeFile(join(dir, 'a-file'), 'x');
    const err = await rejection(new EmbeddedIpfsStore({ dir: join(dir, 'a-file', 'ipfs') }).check());
    expect(err).toBeInstanceOf(ConfigError);
    expect(() => new EmbeddedIpfsStore({ dir: '' })).toThrow(ConfigError);
  });
});
