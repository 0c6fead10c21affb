/**
 * The local store holding packs: putPack replaces loose blocks by their pack (and frees the segments packs hold
 * whole), reads yield pack pages and loose pages in order, hashAt reads inside packs, checkpoints are kept and found,
 * replace stores a restore's packs, and everything survives a reopen. Real files in a temporary folder.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openCheckpoint, sealCheckpoint } from '../../src/crypto/checkpoints.js';
import { openPack, pageHashes, pageRange, wholePack, type ChainPage } from '../../src/crypto/packs.js';
import type { CheckpointSink } from '../../src/engine/checkpointer.js';
import type { PackStore } from '../../src/engine/compactor.js';
import { replayChain } from '../../src/engine/replay.js';
import { ConflictError, ValidationError } from '../../src/errors.js';
import { LocalStore } from '../../src/store/local-store.js';
import { packOf, stateAt } from '../conformance/pack-suite.js';
import { collect, makeChain, testSealer, type TestChain } from '../support/chain.js';
import { generationDir, tempDir } from '../support/durability.js';

const sealer = testSealer();
const SEGMENT_BYTES = 4096;

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('local-packs'));
});
afterEach(async () => {
  await cleanup();
});

async function storeWith(chain: TestChain, n = chain.stored.length): Promise<LocalStore> {
  const { store } = await LocalStore.open(dir, { segmentBytes: SEGMENT_BYTES });
  for (let i = 0; i < n; i += 5) await store.append(chain.ledgerId, chain.stored.slice(i, Math.min(i + 5, n)));
  return store;
}

// What pages a read yields: each pack, and each run of loose blocks (however many pages it takes).
function ranges(pages: ChainPage[]): string[] {
  const out: { kind: string; from: number; to: number }[] = [];
  for (const p of pages) {
    const { from, to } = pageRange(p);
    const last = out.at(-1);
    if (!('pack' in p) && last?.kind === 'blocks' && last.to + 1 === from) last.to = to;
    else out.push({ kind: 'pack' in p ? 'pack' : 'blocks', from, to });
  }
  return out.map((r) => `${r.kind} ${r.from}-${r.to}`);
}

async function verified(store: LocalStore, chain: TestChain) {
  const head = store.height;
  return replayChain(store.readPages(0, head), sealer, {
    where: 'test',
    ledgerId: chain.ledgerId,
    expectHead: { height: head, hash: chain.blocks[head]!.hash },
  });
}

async function segments(): Promise<string[]> {
  return (await readdir(await generationDir(dir))).filter((n) => n.endsWith('.seg'));
}

describe('local store packs', () => {
  it('replaces loose blocks by packs, reads both in order, frees packed segments, and keeps it all on reopen', async () => {
    const chain = makeChain(sealer, 120);
    let store = await storeWith(chain);
    // What the compactor and the checkpointer are wired against.
    const asPackStore: PackStore = store;
    const asCheckpointSink: CheckpointSink = store;
    expect(asPackStore.packedThrough()).toBe(-1);
    expect(asCheckpointSink.putCheckpoint).toBeTypeOf('function');
    const before = await segments();
    expect(before.length).toBeGreaterThan(4);
    expect(store.packedThrough()).toBe(-1);
    for (const [from, to] of [
      [0, 29],
      [30, 59],
      [60, 89],
    ] as const) {
      const { bytesWritten } = await store.putPack(chain.ledgerId, packOf(sealer, chain, from, to));
      expect(bytesWritten).toBeGreaterThan(0);
    }
    expect(store.packedThrough()).toBe(89);
    expect(store.packs()).toEqual([
      { from: 0, to: 29, hash: chain.blocks[29]!.hash },
      { from: 30, to: 59, hash: chain.blocks[59]!.hash },
      { from: 60, to: 89, hash: chain.blocks[89]!.hash },
    ]);
    const pages = await collect(store.readPages(0, 119));
    expect(ranges(pages)).toEqual(['pack 0-29', 'pack 30-59', 'pack 60-89', 'blocks 90-119']);
    expect(pages.flatMap(pageHashes)).toEqual(chain.blocks.map((b) => b.hash));
    // Each pack opens with the key.
    for (const p of pages) if ('pack' in p) expect(openPack(sealer, chain.ledgerId, p.pack, 'test')).toHaveLength(30);
    expect((await verified(store, chain))!.head.hash).toBe(chain.blocks[119]!.hash);
    expect(await store.hashAt(45)).toBe(chain.blocks[45]!.hash);
    expect(await store.hashAt(100)).toBe(chain.blocks[100]!.hash);
    // A read starting inside a pack gets the whole pack, clipped.
    const inside = await collect(store.readPages(35, 40));
    expect(inside).toHaveLength(1);
    expect(inside[0]).toMatchObject({ from: 35, to: 40 });
    expect(pageHashes(inside[0]!)).toEqual(chain.blocks.slice(35, 41).map((b) => b.hash));
    // Space: the segments packs hold whole are gone.
    const after = await segments();
    expect(after.length).toBeLessThan(before.length);
    await store.close();

    ({ store } = await LocalStore.open(dir, { segmentBytes: SEGMENT_BYTES }));
    expect(store.packedThrough()).toBe(89);
    expect(store.height).toBe(119);
    expect(store.headHash).toBe(chain.blocks[119]!.hash);
    expect(ranges(await collect(store.readPages(0, 119)))).toEqual([
      'pack 0-29',
      'pack 30-59',
      'pack 60-89',
      'blocks 90-119',
    ]);
    // It carries on: saves after packs, and packs after those.
    const more = makeChain(sealer, 10, chain);
    await store.append(chain.ledgerId, more.stored.slice(120));
    await store.putPack(chain.ledgerId, packOf(sealer, more, 90, 125));
    expect((await verified(store, more))!.head.hash).toBe(more.blocks[129]!.hash);
    await store.close();
  });

  it('refuses a pack that does not replace the loose blocks after the packed ones, and loses nothing', async () => {
    const chain = makeChain(sealer, 40);
    const other = makeChain(sealer, 40, undefined, 'q');
    const store = await storeWith(chain);
    await expect(store.putPack(chain.ledgerId, packOf(sealer, chain, 5, 10))).rejects.toThrow(ConflictError);
    expect((await store.putPack(chain.ledgerId, packOf(sealer, chain, 0, 19))).bytesWritten).toBeGreaterThan(0);
    // Putting the same pack again does nothing.
    expect(await store.putPack(chain.ledgerId, packOf(sealer, chain, 0, 19))).toEqual({ bytesWritten: 0 });
    await expect(store.putPack(chain.ledgerId, packOf(sealer, chain, 25, 30))).rejects.toThrow(/next pack starts/);
    await expect(store.putPack(chain.ledgerId, packOf(sealer, makeChain(sealer, 6, chain), 20, 45))).rejects.toThrow(
      /ends by the head/,
    );
    // Another chain's blocks at the right heights: the hashes differ.
    const forged = { ...packOf(sealer, other, 0, 5), from: 20, to: 25 };
    await expect(store.putPack(chain.ledgerId, forged)).rejects.toThrow(ConflictError);
    const short = { ...packOf(sealer, chain, 20, 23), to: 25 };
    await expect(store.putPack(chain.ledgerId, short)).rejects.toThrow(ValidationError);
    const empty = { ...packOf(sealer, chain, 20, 25), sealed: Buffer.alloc(0) };
    await expect(store.putPack(chain.ledgerId, empty)).rejects.toThrow(/holds no sealed object/);
    await expect(store.putPack(other.ledgerId, packOf(sealer, other, 0, 3))).rejects.toThrow(ConflictError);
    expect(store.packedThrough()).toBe(19);
    expect((await verified(store, chain))!.head.hash).toBe(chain.blocks[39]!.hash);
    await store.close();
  });

  it('keeps the newest two checkpoints, finds the newest on the chain, and keeps them across a reopen', async () => {
    const chain = makeChain(sealer, 30);
    let store = await storeWith(chain);
    const cpAt = (h: number) => sealCheckpoint(sealer, chain.ledgerId, chain.blocks[h]!.hash, stateAt(chain, h));
    expect(await store.checkpoint()).toBeNull();
    for (const h of [10, 20, 25]) expect((await store.putCheckpoint(cpAt(h))).bytesWritten).toBeGreaterThan(0);
    const files = (await readdir(await generationDir(dir))).filter((n) => n.endsWith('.checkpoint'));
    expect(files.sort()).toEqual(['000000000020.checkpoint', '000000000025.checkpoint']);
    const wrong = { ...cpAt(12), hash: chain.blocks[13]!.hash };
    await expect(store.putCheckpoint(wrong)).rejects.toThrow(ConflictError);
    await expect(store.putCheckpoint({ ...cpAt(12), height: 31 })).rejects.toThrow(/past the local head/);
    await store.close();

    ({ store } = await LocalStore.open(dir, { segmentBytes: SEGMENT_BYTES }));
    const cp = (await store.checkpoint())!;
    // A stored checkpoint (as a tier hands it over) is taken as well: written part by part.
    const copy = join(dir, 'copy');
    const { store: other } = await LocalStore.open(copy, { segmentBytes: SEGMENT_BYTES });
    await other.append(chain.ledgerId, chain.stored);
    await other.putCheckpoint(cp);
    expect((await other.checkpoint())?.height).toBe(25);
    await other.close();
    expect({ height: cp.height, hash: cp.hash }).toEqual({ height: 25, hash: chain.blocks[25]!.hash });
    const { state } = await openCheckpoint(sealer, chain.ledgerId, cp, cp.parts(), 'test');
    expect(state.totalProperties).toBe(25);
    await store.close();
  });

  it('replace stores a restore’s packs, an older head inside a pack, and the checkpoint it is given', async () => {
    const chain = makeChain(sealer, 80);
    const store = await storeWith(chain, 10);
    const cp = sealCheckpoint(sealer, chain.ledgerId, chain.blocks[50]!.hash, stateAt(chain, 50));
    const restored: ChainPage[] = [
      wholePack(packOf(sealer, chain, 0, 39)),
      { pack: packOf(sealer, chain, 40, 79), from: 40, to: 60 },
    ];
    await store.replace(chain.ledgerId, [restored], cp);
    expect(store.height).toBe(60);
    expect(store.packedThrough()).toBe(60);
    expect(store.headHash).toBe(chain.blocks[60]!.hash);
    expect((await store.checkpoint())?.height).toBe(50);
    // Saves go on from the head inside the pack (another branch than the pack's own blocks after it).
    const branch = makeChain(sealer, 5, { ...chain, blocks: chain.blocks.slice(0, 61), stored: [] }, 'b');
    await store.append(chain.ledgerId, branch.stored);
    expect(ranges(await collect(store.readPages()))).toEqual(['pack 0-39', 'pack 40-60', 'blocks 61-65']);
    expect(await store.hashAt(63)).toBe(branch.blocks[63]!.hash);
    await store.close();
    const { store: again } = await LocalStore.open(dir, { segmentBytes: SEGMENT_BYTES });
    expect(again.height).toBe(65);
    expect(ranges(await collect(again.readPages()))).toEqual(['pack 0-39', 'pack 40-60', 'blocks 61-65']);
    await again.close();
  });

  it('replace refuses a page that starts inside a pack, and keeps the chain it had', async () => {
    const chain = makeChain(sealer, 40);
    const store = await storeWith(chain);
    const bad: ChainPage[] = [{ pack: packOf(sealer, chain, 0, 39), from: 10, to: 39 }];
    await expect(store.replace(chain.ledgerId, [bad])).rejects.toThrow(/stored from its first block/);
    expect(store.height).toBe(39);
    expect((await verified(store, chain))!.head.hash).toBe(chain.blocks[39]!.hash);
    expect((await readdir(dir)).filter((n) => n.startsWith('chain-'))).toHaveLength(1);
    await store.close();
  });

  it('a read-only store beside a writer that packs reads on from the packs when the segments it knew are gone', async () => {
    const chain = makeChain(sealer, 90);
    const writer = await storeWith(chain);
    const { store: reader } = await LocalStore.open(dir, { readOnly: true });
    const before = await segments();
    await writer.putPack(chain.ledgerId, packOf(sealer, chain, 0, 59));
    expect((await segments()).length).toBeLessThan(before.length);
    expect(await reader.hashAt(10)).toBe(chain.blocks[10]!.hash);
    expect((await collect(reader.readPages())).flatMap(pageHashes)).toEqual(chain.blocks.map((b) => b.hash));
    await reader.close();
    await writer.close();
  });
});
