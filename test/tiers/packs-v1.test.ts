import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseKey } from '../../src/crypto/key.js';
import { Sealer } from '../../src/crypto/seal.js';
import type { StoredBlock } from '../../src/crypto/stored-block.js';
import { verifyBackup } from '../../src/engine/restore.js';
import { silentLogger } from '../../src/log.js';
import { DirStore } from '../../src/objects/dir.js';
import { EmbeddedIpfsStore } from '../../src/objects/embedded.js';
import { FilePointerStore } from '../../src/pointers/file.js';
import { ListingCatalog } from '../../src/tiers/packs/listing-catalog.js';
import { PackTier } from '../../src/tiers/packs/pack-tier.js';
import type { BackupTier } from '../../src/tiers/tier.js';
import type { Block } from '../../src/ledger/types.js';
import { collect, makeChain } from '../support/chain.js';
import { pointerPackTier } from '../support/packs.js';
import { opened, packOf } from '../conformance/pack-suite.js';
import { pageRange } from '../../src/crypto/packs.js';

// Stores written before manifest v2 (test/fixtures/packs-v1, made by make-v1-packs.ts with that code) still restore,
// and a new backup on top of them reuses their packs.
const fixtures = join(import.meta.dirname, '..', 'fixtures', 'packs-v1');
interface Expected {
  key: string;
  ledgerId: string;
  records: Record<'ipfs' | 'dir', string[]>;
  chain: Block[];
  blocks: [number, string, string][];
}
let expected: Expected;
let sealer: Sealer;
let root: string;
beforeAll(async () => {
  expected = JSON.parse(await readFile(join(fixtures, 'expected.json'), 'utf8')) as Expected;
  sealer = new Sealer(parseKey(expected.key));
  root = await mkdtemp(join(tmpdir(), 'pl-packs-v1-'));
  await cp(fixtures, root, { recursive: true });
});
afterAll(() => rm(root, { recursive: true, force: true }));

const tiers: Record<'ipfs' | 'dir', () => PackTier> = {
  ipfs: () =>
    pointerPackTier({
      store: new EmbeddedIpfsStore({ dir: join(root, 'ipfs') }),
      sealer,
      pointers: [new FilePointerStore(join(root, 'ipfs', 'latest.json'))],
    }),
  dir: () => {
    const store = new DirStore({ root: join(root, 'dir') });
    const tier: PackTier = new PackTier({
      name: 'dir',
      label: 'fixture folder',
      store,
      sealer,
      catalog: new ListingCatalog(store, (id) => tier.getRecord(id)),
      log: silentLogger(),
    });
    return tier;
  },
};

const blocksOf = (stored: StoredBlock[]) => stored.map((b) => [b.height, b.hash, b.sealed.toString('base64')]);

for (const kind of ['ipfs', 'dir'] as const) {
  describe(`manifest v1 written before packs from the ledger: ${kind}`, () => {
    it('restores both backups, block for block, and verifies them', async () => {
      const tier: BackupTier = tiers[kind]();
      await tier.init();
      const listed = await tier.listBackups(expected.ledgerId);
      expect(listed.map((r) => r.id)).toEqual([...expected.records[kind]].reverse());
      for (const record of listed) {
        const pages = await collect(tier.readChainPages(record));
        const got = blocksOf(pages.flatMap((p) => ('blocks' in p ? p.blocks : [])));
        expect(got).toEqual(expected.blocks.slice(0, record.height + 1));
        await verifyBackup(tier, record, sealer);
      }
      await tier.close();
    });

    it('takes new blocks on top: the new backup reads back whole and the old ones stay', async () => {
      const tier: BackupTier = tiers[kind]();
      await tier.init();
      // The fixture chain's blocks are sealed with the fixture key; continue it with three more.
      const base = {
        ledgerId: expected.ledgerId,
        blocks: expected.chain,
        stored: expected.blocks.map(([height, hash, sealed]) => ({
          height,
          hash,
          sealed: Buffer.from(sealed, 'base64'),
        })),
      };
      const head = (await tier.listBackups(expected.ledgerId))[0]!;
      expect(head.height).toBe(9);
      const more = makeChain(sealer, 3, base).stored.slice(10);
      expect(more).toHaveLength(3);
      const { record } = await tier.append(expected.ledgerId, head.headHash, more);
      const all = [...base.stored, ...more];
      const { blocks } = await opened(tier, sealer, record!);
      expect(blocks.map(([h, hash]) => [h, hash])).toEqual(all.map((b) => [b.height, b.hash]));
      await verifyBackup(tier, record!, sealer);
      await verifyBackup(tier, await tier.getBackup(expected.records[kind][0]!), sealer);
      // The ledger's pack of blocks 0..9 replaces the v1 packs: both the new and the v1 backups read through it.
      const chain = makeChain(sealer, 3, base);
      await tier.putPack!(expected.ledgerId, null, packOf(sealer, chain, 0, 9));
      for (const r of [record!, await tier.getBackup(expected.records[kind][1]!)]) {
        const read = await opened(tier, sealer, r);
        expect(read.pages.filter((p) => 'pack' in p).map((p) => [pageRange(p).from, pageRange(p).to])).toEqual([
          [0, 9],
        ]);
        expect(read.blocks.map(([h]) => h)).toEqual([...Array(r.height + 1).keys()]);
        await verifyBackup(tier, r, sealer);
      }
      await tier.close();
    });
  });
}
