/**
 * Stores and export files written before packs (test/fixtures/v1, written by the code of commit 132d269: a store of
 * 60 blocks in 5 segments, and a version 1 export of the same chain) keep working: the store opens unchanged, reads,
 * takes packs and saves, and reopens; the v1 export imports. An export of a compacted store (version 2, holding
 * packs) holds every block and imports too.
 */
import { cp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseKey } from '../../src/crypto/key.js';
import { pageHashes, sealPack, type PackEntry } from '../../src/crypto/packs.js';
import { Sealer } from '../../src/crypto/seal.js';
import { openBody, sealBlock } from '../../src/crypto/sealed-blocks.js';
import { replayChain } from '../../src/engine/replay.js';
import { importFile } from '../../src/engine/startup.js';
import { makeBlock } from '../../src/ledger/block.js';
import { silentLogger } from '../../src/log.js';
import { readExport, writeExport } from '../../src/store/export-file.js';
import { LocalStore } from '../../src/store/local-store.js';
import { collect } from '../support/chain.js';
import { REPO, tempDir } from '../support/durability.js';

const FIXTURE = join(REPO, 'test/fixtures/v1');
const SEGMENT_BYTES = 4096;

let dir: string;
let cleanup: () => Promise<void>;
let sealer: Sealer;
let expected: { ledgerId: string; hashes: string[] };
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('local-compat'));
  sealer = new Sealer(parseKey((await readFile(join(FIXTURE, 'TEST-KEY.txt'), 'utf8')).trim()));
  expected = JSON.parse(await readFile(join(FIXTURE, 'chain.json'), 'utf8')) as typeof expected;
});
afterEach(async () => {
  await cleanup();
});

async function verify(store: LocalStore) {
  return (await replayChain(store.readPages(), sealer, {
    where: 'test',
    ledgerId: expected.ledgerId,
    expectHead: { height: store.height, hash: store.headHash! },
  }))!;
}

// Seal blocks from..to of the store as one pack, as the compactor does.
async function packFrom(store: LocalStore, from: number, to: number) {
  const entries: PackEntry[] = [];
  for await (const page of store.readPages(from, to)) {
    if (!('blocks' in page)) throw new Error('expected loose blocks');
    for (const b of page.blocks)
      entries.push({ height: b.height, hash: b.hash, body: openBody(sealer, expected.ledgerId, b, 'test') });
  }
  return sealPack(sealer, expected.ledgerId, entries);
}

describe('stores and exports written before packs', () => {
  it('a store written by the previous version opens unchanged, reads, takes packs, saves and reopens', async () => {
    const data = join(dir, 'store');
    await cp(join(FIXTURE, 'store'), data, { recursive: true });
    let { store } = await LocalStore.open(data, { segmentBytes: SEGMENT_BYTES });
    expect(store.height).toBe(59);
    expect(store.packedThrough()).toBe(-1);
    const pages = await collect(store.readPages());
    expect(pages.flatMap(pageHashes)).toEqual(expected.hashes);
    const chain = await verify(store);
    await store.putPack(expected.ledgerId, await packFrom(store, 0, 29));
    await store.putPack(expected.ledgerId, await packFrom(store, 30, 44));
    // Saves go on after packing.
    const next = makeBlock(chain.head, [], new Date(Date.parse(chain.head.timestamp) + 1000).toISOString());
    await store.append(expected.ledgerId, [sealBlock(sealer, expected.ledgerId, next)]);
    await store.close();

    ({ store } = await LocalStore.open(data, { segmentBytes: SEGMENT_BYTES }));
    expect(store.packedThrough()).toBe(44);
    expect(store.height).toBe(60);
    const again = await verify(store);
    expect(again.head.hash).toBe(next.block.hash);
    expect((await collect(store.readPages(0, 59))).flatMap(pageHashes)).toEqual(expected.hashes);
    await store.close();
  });

  it('a version 1 export file imports', async () => {
    const { store } = await LocalStore.open(join(dir, 'store'));
    const replayed = await importFile({ store, sealer, log: silentLogger() }, join(FIXTURE, 'chain-v1.pwlx'), false);
    expect(replayed.head.hash).toBe(expected.hashes.at(-1));
    expect((await collect(store.readPages())).flatMap(pageHashes)).toEqual(expected.hashes);
    await store.close();
  });

  it('an export of a compacted store holds every block, as packs, and imports', async () => {
    const source = join(dir, 'source');
    await cp(join(FIXTURE, 'store'), source, { recursive: true });
    const { store } = await LocalStore.open(source, { segmentBytes: SEGMENT_BYTES });
    await store.putPack(expected.ledgerId, await packFrom(store, 0, 39));
    const file = join(dir, 'chain-v2.pwlx');
    const head = { ledgerId: expected.ledgerId, height: 59, hash: expected.hashes[59]! };
    await writeExport(file, head, store.readPages(), sealer);
    await store.close();
    expect((await readFile(file))[4]).toBe(2);
    const read = await collect((await readExport(file, sealer)).pages);
    expect(read.filter((p) => 'pack' in p)).toHaveLength(1);
    expect(read.flatMap(pageHashes)).toEqual(expected.hashes);

    const { store: target } = await LocalStore.open(join(dir, 'target'));
    const replayed = await importFile({ store: target, sealer, log: silentLogger() }, file, false);
    expect(replayed.head.hash).toBe(expected.hashes[59]);
    expect(target.packedThrough()).toBe(39);
    expect((await collect(target.readPages())).flatMap(pageHashes)).toEqual(expected.hashes);
    await target.close();
  });
});
