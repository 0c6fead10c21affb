/**
 * Opening a chain's blocks on a worker thread (the built dist/engine/open-worker.js, which `npm test` builds first)
 * gives exactly what opening them in this thread gives: the same bodies, the same Merkle roots, and the same first
 * failure, named the same way, for a flipped byte or a wrong key. A restore then verifies the same chain either way.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { generateKey, parseKey } from '../../src/crypto/key.js';
import { Sealer } from '../../src/crypto/seal.js';
import { IntegrityError } from '../../src/errors.js';
import { makeBlock } from '../../src/ledger/block.js';
import { parseRegister } from '../../src/ledger/transactions.js';
import type { Block } from '../../src/ledger/types.js';
import { openedPages } from '../../src/engine/parallel-open.js';
import { replayChain } from '../../src/engine/replay.js';
import { sealBlock } from '../../src/crypto/sealed-blocks.js';
import type { ChainPage } from '../../src/crypto/packs.js';
import type { StoredBlock } from '../../src/crypto/stored-block.js';

const WORKER = new URL('../../dist/engine/open-worker.js', import.meta.url);
const sealer = new Sealer(parseKey(generateKey()));

function chain(n: number): StoredBlock[] {
  const out: StoredBlock[] = [];
  let prev: Block | null = null;
  let ledgerId = '';
  for (let i = 0; i < n; i++) {
    const ts = new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();
    const enc = makeBlock(
      prev,
      prev ? [parseRegister({ id: `p${i}`, name: `P ${i}`, address: `${i} Way`, owner: 'o' }, ts)] : [],
      ts,
    );
    if (!prev) ledgerId = enc.block.hash;
    out.push(sealBlock(sealer, ledgerId, enc));
    prev = enc.block;
  }
  return out;
}

// Blocks arrive 500 at a time with a pause between, as from a database: the worker comes online meanwhile.
async function* arriving(blocks: StoredBlock[]): AsyncGenerator<ChainPage> {
  for (let i = 0; i < blocks.length; i += 500) {
    await new Promise((r) => setTimeout(r, 50));
    yield { blocks: blocks.slice(i, i + 500) };
  }
}

async function collect(blocks: StoredBlock[], workerUrl: URL | null, key = sealer) {
  const pages = [];
  for await (const p of openedPages(arriving(blocks), key, 'test chain', undefined, {
    workerUrl,
    expectedBlocks: 100_000,
  }))
    pages.push(p);
  return pages.map(({ page, opened, onWorker }) => ({
    heights: 'blocks' in page ? page.blocks.map((b) => b.height) : [],
    bodies: Buffer.concat(opened.bodies).toString('hex'),
    roots: opened.roots,
    fail: opened.fail,
    onWorker,
  }));
}

describe('opening blocks on a worker thread', () => {
  const blocks = chain(10_500);

  it('has the built worker to test (npm test builds before it runs)', () => {
    expect(existsSync(fileURLToPath(WORKER))).toBe(true);
  });

  it('opens a short chain in this thread: a worker would cost more than it saves', async () => {
    const pages = [];
    for await (const p of openedPages(arriving(blocks), sealer, 'test chain', undefined, { workerUrl: WORKER }))
      pages.push(p);
    expect(pages.every((p) => !p.onWorker)).toBe(true);
  });

  it('gives the same bodies and Merkle roots as this thread, page by page, in order', async () => {
    const here = await collect(blocks, null);
    const there = await collect(blocks, WORKER);
    expect(there.map((p) => p.heights.length)).toEqual([2000, 2000, 2000, 2000, 2000, 500]);
    // The first page is opened here while the worker starts; once it is online, pages go to it.
    expect(there.filter((p) => p.onWorker).length).toBeGreaterThan(0);
    expect(here.every((p) => !p.onWorker)).toBe(true);
    expect(there.map(({ onWorker: _, ...p }) => p)).toEqual(here.map(({ onWorker: _, ...p }) => p));
    expect(there.every((p) => p.fail === null)).toBe(true);
  });

  it('names the same first bad block for a flipped byte, and a replay through it fails there', async () => {
    const bad = blocks.map((b) => ({ ...b, sealed: Buffer.from(b.sealed) }));
    bad[9217]!.sealed[40]! ^= 1;
    const here = await collect(bad, null);
    const there = await collect(bad, WORKER);
    expect(there.map(({ onWorker: _, ...p }) => p)).toEqual(here.map(({ onWorker: _, ...p }) => p));
    expect(there[4]!.fail).toMatchObject({ index: 1217, message: expect.stringContaining('9217') });
    expect(there[4]!.onWorker).toBe(true);
    await expect(replayChain([{ blocks: bad }], sealer, { where: 'test chain' })).rejects.toThrow(IntegrityError);
    await expect(replayChain([{ blocks: bad }], sealer, { where: 'test chain' })).rejects.toThrow(/9217/);
  });

  it('fails at block 0 with a wrong key, the same way in both', async () => {
    const other = new Sealer(parseKey(generateKey()));
    const here = await collect(blocks, null, other);
    const there = await collect(blocks, WORKER, other);
    expect(there.map((p) => p.fail)).toEqual(here.map((p) => p.fail));
    expect(there.every((p) => p.fail?.index === 0)).toBe(true);
    expect(there.some((p) => p.onWorker)).toBe(true);
  });
});
