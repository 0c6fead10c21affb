/**
 * Any tier a save waits for, not only the database: a backup folder on a stuck mount (an NFS server gone: every file
 * call blocks, forever, which is what Node sees) must not stall saves. The folder tier is real (PackTier over DirStore
 * in a temp folder); only its store's calls are gated, to block while "stuck" and go through once released, as a
 * mount that comes back does. The replicator is the product's, driven as the Ledger drives it.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sealRecord } from '../../src/crypto/records.js';
import { Replicator } from '../../src/engine/replicator.js';
import { silentLogger } from '../../src/log.js';
import { DirStore } from '../../src/objects/dir.js';
import type { ObjectStore } from '../../src/objects/object-store.js';
import { ListingCatalog } from '../../src/tiers/packs/listing-catalog.js';
import { PackTier } from '../../src/tiers/packs/pack-tier.js';
import { Mutex } from '../../src/util/mutex.js';
import { makeChain, testSealer, type TestChain } from '../support/chain.js';

/** gated wraps a store so that, while stuck, every call waits (forever, until unstuck) before it runs. */
function gated(inner: ObjectStore): { store: ObjectStore; stick(): void; unstick(): void } {
  let gate: Promise<void> | null = null;
  let open: () => void = () => {};
  const wait = async () => {
    while (gate) await gate;
  };
  const list = inner.list?.bind(inner);
  const store: ObjectStore = {
    name: inner.name,
    label: inner.label,
    contentAddressed: inner.contentAddressed,
    put: async (b, r) => (await wait(), inner.put(b, r)),
    get: async (id, o) => (await wait(), inner.get(id, o)),
    has: async (id) => (await wait(), inner.has(id)),
    delete: async (id) => (await wait(), inner.delete(id)),
    check: async () => (await wait(), inner.check()),
    close: () => inner.close(),
    ...(list
      ? {
          list: async function* (prefix: string) {
            await wait();
            yield* list(prefix);
          },
        }
      : {}),
  };
  return {
    store,
    stick: () => {
      gate ??= new Promise((r) => (open = r));
    },
    unstick: () => {
      gate = null;
      open();
    },
  };
}

describe('a sync tier on a stuck mount', () => {
  const sealer = testSealer();
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'pl-stuck-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('stalls one save for the deadline at most, then none; and it is caught up soon after the mount is back', async () => {
    const dir = join(root, 'folder');
    await mkdir(dir);
    const g = gated(new DirStore({ root: dir }));
    let tier: PackTier | null = null;
    const catalog = new ListingCatalog(g.store, (id) => tier!.getRecord(id));
    tier = new PackTier({
      name: 'dir',
      label: `backup folder ${dir}`,
      store: g.store,
      sealer,
      catalog,
      log: silentLogger(),
    });

    // The ledger's working copy, grown as saves are made.
    let chain: TestChain = makeChain(sealer, 1);
    const source = {
      get ledgerId() {
        return chain.ledgerId;
      },
      get headHeight() {
        return chain.stored.length - 1;
      },
      hashAt: async (h: number) => chain.stored[h]?.hash ?? null,
      readPages: async function* (from: number, to: number) {
        yield { blocks: chain.stored.slice(from, to + 1) };
      },
      autoRecord: async (h = chain.stored.length - 1) =>
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
    const r = new Replicator({ name: 'dir', tier, role: 'sync', describe: 'backup folder' }, source, {
      log: silentLogger(),
      serial,
      retryMs: 50,
      debounceMs: 0,
      deadlineMs: 300,
      callMs: 2000,
    });
    expect(await serial.run(() => r.catchUp())).toBe(true);

    // A save, as the Ledger makes one: in the serial section, the local chain first, then the tier.
    const save = async () => {
      const t = performance.now();
      await serial.run(async () => {
        const parent = chain.stored.at(-1)!.hash;
        chain = makeChain(sealer, 1, chain);
        await r.afterSave(parent, [chain.stored.at(-1)!], await source.autoRecord());
      });
      return performance.now() - t;
    };
    expect(await save()).toBeLessThan(300);
    expect(r.level).toBe(true);

    g.stick();
    const first = await save();
    expect(first, 'the save that found the mount stuck waits the deadline, no more').toBeGreaterThanOrEqual(280);
    expect(first).toBeLessThan(1000);
    expect(r.state).toBe('lagging');
    const later: number[] = [];
    for (let i = 0; i < 20; i++) {
      later.push(await save());
      await new Promise((res) => setTimeout(res, 25));
    }
    expect(Math.max(...later), 'a save after the mount was found stuck waited on it').toBeLessThan(100);
    expect(r.level).toBe(false);

    g.unstick();
    const t = performance.now();
    while (!r.level && performance.now() - t < 5000) await new Promise((res) => setTimeout(res, 20));
    expect(r.level, 'caught up after the mount came back').toBe(true);
    expect(r.height).toBe(chain.stored.length - 1);
    // What the folder holds is the whole chain, verified from its newest backup.
    const newest = (await tier.listBackups(chain.ledgerId, { limit: 1 }))[0]!;
    expect(newest.height).toBe(chain.stored.length - 1);
    await r.stop(0);
  }, 20_000);
});
