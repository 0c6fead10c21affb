import { afterEach, describe, expect, it } from 'vitest';
import { sealRecord } from '../../src/crypto/records.js';
import { Replicator } from '../../src/engine/replicator.js';
import { silentLogger } from '../../src/log.js';
import { LocalStore } from '../../src/store/local-store.js';
import { PostgresTier } from '../../src/tiers/postgres.js';
import { Mutex } from '../../src/util/mutex.js';
import { expected, opened, packOf } from '../conformance/pack-suite.js';
import { makeChain, testSealer } from '../support/chain.js';
import { tempDir } from '../support/durability.js';

const sealer = testSealer();

describe('a catch-up that meets a pack from its middle', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  }, 60_000);

  // Most of its time is the embedded database's first start (initdb and the migrations, in WebAssembly): about 20 s
  // alone, over 30 s on a loaded 2-core machine.
  it('sends every earlier local pack first, so the tier ends holding all of them', { timeout: 180_000 }, async () => {
    const chain = makeChain(sealer, 31);
    const { dir, cleanup } = await tempDir('replicator-packs');
    cleanups.push(cleanup);
    const { store } = await LocalStore.open(`${dir}/local`);
    cleanups.push(() => store.close());
    await store.append(chain.ledgerId, chain.stored);
    await store.putPack(chain.ledgerId, packOf(sealer, chain, 0, 9));
    await store.putPack(chain.ledgerId, packOf(sealer, chain, 10, 19));
    // The tier (the embedded database) lags: it holds blocks 0-15 loose, so its catch-up starts inside pack 10-19.
    const tier = new PostgresTier({
      label: 'PGlite',
      connect: async () => (await import('../../src/db/pglite.js')).openPglite(`${dir}/pg`),
    });
    await tier.init();
    cleanups.push(() => tier.close());
    await tier.append(chain.ledgerId, null, chain.stored.slice(0, 16));

    const source = {
      ledgerId: chain.ledgerId,
      headHeight: 30,
      hashAt: (h: number) => store.hashAt(h),
      readPages: (from: number, to: number) => store.readPages(from, to),
      packs: () => store.packs(),
      checkpoint: () => store.checkpoint(),
      autoRecord: async (h = 30) =>
        sealRecord(sealer, {
          ledgerId: chain.ledgerId,
          name: 'auto',
          kind: 'auto',
          createdAt: new Date(),
          createdBy: null,
          height: h,
          headHash: chain.stored[h]!.hash,
          sizeBytes: 0,
        }),
    };
    const serial = new Mutex();
    const r = new Replicator({ name: 'db', tier, role: 'sync', describe: 'embedded database' }, source, {
      log: silentLogger(),
      serial,
      retryMs: 50,
      debounceMs: 0,
    });
    expect(await serial.run(() => r.catchUp())).toBe(true);
    expect(await tier.hasPack!(chain.ledgerId, 9, chain.stored[9]!.hash)).toBe(true);
    expect(await tier.hasPack!(chain.ledgerId, 19, chain.stored[19]!.hash)).toBe(true);
    const record = (await tier.listBackups(chain.ledgerId, { limit: 1 }))[0]!;
    const read = await opened(tier, sealer, record);
    expect(read.blocks).toEqual(expected(chain));
    expect(read.pages.filter((p) => 'pack' in p)).toHaveLength(2);
    await r.stop();
  });
});
