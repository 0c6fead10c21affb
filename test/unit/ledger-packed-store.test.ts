/**
 * A compacted local store as a user meets it through the Ledger: it opens, serves the chain and histories, takes
 * saves and verifies; its export holds every block (packs included) and imports into a fresh data folder with the
 * same head and properties.
 */
import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseKey } from '../../src/crypto/key.js';
import { sealPack, type PackEntry } from '../../src/crypto/packs.js';
import { Sealer } from '../../src/crypto/seal.js';
import { openBody } from '../../src/crypto/sealed-blocks.js';
import { Ledger } from '../../src/service/ledger.js';
import { LocalStore } from '../../src/store/local-store.js';
import { encodePackFile } from '../../src/store/pack-file.js';
import { tempDir, testConfig } from '../support/durability.js';
import { TEST_KEY } from '../support/pg.js';

const sealer = new Sealer(parseKey(TEST_KEY));
const config = (dataDir: string) => ({ ...testConfig(dataDir, 4096), encryptionKey: TEST_KEY });

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('ledger-packed'));
});
afterEach(async () => {
  await cleanup();
});

async function packStore(dataDir: string, from: number, to: number): Promise<void> {
  const { store } = await LocalStore.open(dataDir, { segmentBytes: 4096 });
  const ledgerId = store.ledgerId!;
  const entries: PackEntry[] = [];
  for await (const page of store.readPages(from, to)) {
    if (!('blocks' in page)) throw new Error('expected loose blocks');
    for (const b of page.blocks) entries.push({ height: b.height, hash: b.hash, body: openBody(sealer, ledgerId, b) });
  }
  await store.putPack(ledgerId, sealPack(sealer, ledgerId, entries));
  await store.close();
}

describe('a compacted local store through the Ledger', () => {
  it('serves, saves, verifies, exports every block and imports', async () => {
    const source = join(dir, 'source');
    let ledger = await Ledger.open({ config: config(source) });
    for (let i = 0; i < 30; i++)
      await ledger.register({ id: `h-${i}`, name: `House ${i}`, address: `${i} Pack Lane`, owner: 'ann' });
    await ledger.transfer('h-3', { from: 'ann', to: 'bob' });
    const before = await ledger.chain(0, 100);
    await ledger.close();
    await packStore(source, 0, 24);

    ledger = await Ledger.open({ config: config(source) });
    try {
      expect(await ledger.chain(0, 100)).toEqual(before);
      await ledger.update('h-3', { name: 'Blue House' });
      expect(await ledger.verify()).toMatchObject({ ok: true, totalBlocks: 33 });
      const file = join(dir, 'ledger.export');
      expect(await ledger.exportTo(file)).toEqual({ bytes: expect.any(Number), totalBlocks: 33 });
    } finally {
      await ledger.close();
    }

    const target = join(dir, 'target');
    const fresh = await Ledger.open({ config: config(target) });
    try {
      await fresh.importFrom(join(dir, 'ledger.export'), { force: true });
      expect(fresh.head.index).toBe(32);
      expect(fresh.properties().find((p) => p.id === 'h-3')).toMatchObject({ name: 'Blue House', owner: 'bob' });
      expect(await fresh.chain(0, 32)).toEqual(before);
    } finally {
      await fresh.close();
    }
  });

  it('reads one block of a pack by hashing only that block, and names a block whose body is not its hash', async () => {
    const source = join(dir, 'source');
    let ledger = await Ledger.open({ config: config(source) });
    for (let i = 0; i < 30; i++)
      await ledger.register({ id: `h-${i}`, name: `House ${i}`, address: `${i} Pack Lane`, owner: 'ann' });
    await ledger.close();
    const { store } = await LocalStore.open(source, { readOnly: true });
    const ledgerId = store.ledgerId!;
    const entries: PackEntry[] = [];
    for await (const page of store.readPages(0, 24))
      if ('blocks' in page)
        for (const b of page.blocks)
          entries.push({ height: b.height, hash: b.hash, body: openBody(sealer, ledgerId, b) });
    await store.close();
    await packStore(source, 0, 24);
    ledger = await Ledger.open({ config: config(source) });
    try {
      // Underneath the running ledger, the pack file is replaced by one sealed with the key (it authenticates) whose
      // block 10 holds another body than the one its hash names: a read of block 10 refuses it, naming it; its
      // neighbours in the pack still read.
      const generation = (await readFile(join(source, 'CURRENT'), 'utf8')).trim();
      const [name] = (await readdir(join(source, generation))).filter((n) => n.endsWith('.pack'));
      const forged = Buffer.from(entries[10]!.body.toString('utf8').replace('House 9', 'House X'));
      expect(forged.equals(entries[10]!.body)).toBe(false);
      entries[10] = { ...entries[10]!, body: forged };
      await chmod(join(source, generation, name!), 0o600);
      await writeFile(join(source, generation, name!), encodePackFile(ledgerId, sealPack(sealer, ledgerId, entries)));
      await expect(ledger.chain(10, 1)).rejects.toThrow(/block 10 in the pack of blocks 0-24 .* hashes to/);
      expect((await ledger.chain(11, 1))[0]!.index).toBe(11);
      expect((await ledger.property('h-12')).history).toHaveLength(1);
    } finally {
      await ledger.close();
    }
  });
});
