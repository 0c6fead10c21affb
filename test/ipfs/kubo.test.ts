import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBlockstore } from 'blockstore-core/memory';
import { importFile } from 'ipfs-unixfs-importer';
import { fixedSize } from 'ipfs-unixfs-importer/chunker';
import { balanced } from 'ipfs-unixfs-importer/layout';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, IntegrityError, UnavailableError } from '../../src/errors.js';
import { KuboStore } from '../../src/objects/kubo.js';
import { startKuboStandin, type KuboStandin } from '../support/standins/kubo.js';

/** importerCid is what ipfs-unixfs-importer makes of `bytes` with Kubo's `--cid-version=1` parameters. */
async function importerCid(bytes: Uint8Array, cidVersion: 0 | 1 = 1): Promise<string> {
  const opts = {
    cidVersion,
    rawLeaves: cidVersion === 1,
    chunker: fixedSize({ chunkSize: 262_144 }),
    layout: balanced({ maxChildrenPerNode: 174 }),
  };
  return (await importFile({ content: bytes }, new MemoryBlockstore(), opts)).cid.toString();
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

const small = randomBytes(1000);
const big = randomBytes(600 * 1024); // three 256 KiB chunks

let kubo: KuboStandin;
let provider: KuboStore;
beforeAll(async () => {
  kubo = await startKuboStandin();
  provider = new KuboStore({ apiUrl: kubo.url, timeoutMs: 5_000 });
});
afterAll(async () => {
  await kubo?.close();
});

describe('KuboStore against the Kubo stand-in', () => {
  it('round-trips a one-chunk file under the CID ipfs-unixfs-importer computes', async () => {
    const cid = await provider.put(small, { key: 'test', label: 'small.bin' });
    expect(cid).toBe(await importerCid(small));
    expect(cid.startsWith('bafkrei')).toBe(true); // one raw leaf, as Kubo --cid-version=1 gives
    expect(kubo.pins.has(cid)).toBe(true);
    const add = kubo.requests.findLast((r) => r.path === '/add')!;
    expect(add.method).toBe('POST');
    expect(add.query).toMatchObject({ 'cid-version': '1', 'raw-leaves': 'true', chunker: 'size-262144', pin: 'true' });
    expect((await provider.get(cid)).equals(small)).toBe(true);
  });

  it('round-trips a multi-chunk file, and adding it twice is harmless', async () => {
    const cid = await provider.put(big, { key: 'test', label: 'big.bin' });
    expect(cid).toBe(await importerCid(big));
    expect(cid.startsWith('bafybei')).toBe(true); // a dag-pb root over raw leaves
    expect(await provider.put(big, { key: 'test', label: 'big.bin' })).toBe(cid);
    expect((await provider.get(cid)).equals(big)).toBe(true);
    expect(kubo.requests.findLast((r) => r.path === '/cat')!.query).toMatchObject({ arg: cid, offline: 'true' });
  });

  it('catches a node that returns altered bytes, naming the CID', async () => {
    const one = await provider.put(small, { key: 'test', label: 'small.bin' });
    const many = await provider.put(big, { key: 'test', label: 'big.bin' });
    kubo.alterCat = true;
    try {
      for (const cid of [one, many]) {
        const err = await rejection(provider.get(cid));
        expect(err).toBeInstanceOf(IntegrityError);
        expect(err.message).toContain(cid);
      }
    } finally {
      kubo.alterCat = false;
    }
  });

  it('refuses an add whose CID the node computed with other settings', async () => {
    // A node configured with another chunker: the client's flags are rewritten on the way.
    const odd = new KuboStore({
      apiUrl: kubo.url,
      fetch: (input, init) => fetch(String(input).replace('chunker=size-262144', 'chunker=size-1024'), init),
    });
    const err = await rejection(odd.put(big, { key: 'test', label: 'big.bin' }));
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.message).toContain(await importerCid(big));
  });

  it('reads a CID the node lacks, online, until the timeout: UnavailableError', async () => {
    const online = new KuboStore({ apiUrl: kubo.url, offline: false, timeoutMs: 300 });
    const err = await rejection(online.get(await importerCid(randomBytes(64))));
    expect(err).toBeInstanceOf(UnavailableError);
  });

  it('unpins, and unpinning what is not pinned is fine', async () => {
    const bytes = randomBytes(2000);
    const cid = await provider.put(bytes, { key: 'test', label: 'gone.bin' });
    await provider.delete(cid);
    expect(kubo.pins.has(cid)).toBe(false);
    await provider.delete(cid);
    await provider.delete(await importerCid(randomBytes(64)));
    expect(kubo.requests.findLast((r) => r.path === '/pin/rm')!.query).toMatchObject({ recursive: 'true' });
  });

  it('checks the node with a POST, and the stand-in answers GET with 405 as Kubo does', async () => {
    await provider.check();
    expect(kubo.requests.findLast((r) => r.path === '/version')!.method).toBe('POST');
    const res = await fetch(`${kubo.url}/version`);
    expect(res.status).toBe(405);
    await res.text();
  });

  it('types the failures: 5xx and resets are UnavailableError, 401 and 405 are ConfigError', async () => {
    kubo.failNext(500);
    expect(await rejection(provider.check())).toBeInstanceOf(UnavailableError);
    kubo.failNext('reset');
    expect(await rejection(provider.put(small, { key: 'test', label: 'small.bin' }))).toBeInstanceOf(UnavailableError);
    kubo.failNext(401);
    expect(await rejection(provider.get(await importerCid(small)))).toBeInstanceOf(ConfigError);
    kubo.failNext(405);
    expect(await rejection(provider.delete(await importerCid(small)))).toBeInstanceOf(ConfigError);
    const wrongPath = new KuboStore({ apiUrl: kubo.url.replace('/api/v0', '/ipfs') });
    expect(await rejection(wrongPath.check())).toBeInstanceOf(ConfigError);
  });

  it('a Kubo that is down (closed port) is UnavailableError', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const down = new KuboStore({ apiUrl: `http://127.0.0.1:${port}/api/v0`, timeoutMs: 2_000 });
    for (const call of [
      down.check(),
      down.put(small, { key: 'test', label: 'x' }),
      down.get(await importerCid(small)),
      down.delete(await importerCid(small)),
    ]) {
      const err = await rejection(call);
      expect(err).toBeInstanceOf(UnavailableError);
      expect(err.message).toContain('ECONNREFUSED');
    }
  });

  it('keeps credentials out of its label and validates options up front', () => {
    const p = new KuboStore({ apiUrl: 'http://admin:s3cret@127.0.0.1:5001/api/v0' });
    expect(p.label).not.toContain('s3cret');
    expect(() => new KuboStore({ apiUrl: 'not a url' })).toThrow(ConfigError);
    expect(() => new KuboStore({ timeoutMs: 0 })).toThrow(ConfigError);
  });

  // Debian's ipfs_cid computes Kubo's default DAG independently: the stand-in's plain (v0) add must agree with it.
  it.skipIf(!existsSync('/usr/bin/ipfs_cid'))('builds the same DAG as the independent ipfs_cid tool', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pl-kubo-cid-'));
    try {
      await writeFile(join(dir, 'big.bin'), big);
      const tool = JSON.parse(
        execFileSync('/usr/bin/ipfs_cid', [join(dir, 'big.bin')], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore'],
        }),
      ) as { CIDv0: string };
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(big)]), 'big.bin');
      const res = await fetch(`${kubo.url}/add?only-hash=true`, { method: 'POST', body: form });
      const line = JSON.parse((await res.text()).trim()) as { Hash: string };
      expect(line.Hash).toBe(tool.CIDv0);
      expect(await importerCid(big, 0)).toBe(tool.CIDv0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
