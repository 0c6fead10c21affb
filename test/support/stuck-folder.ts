/**
 * A folder tier whose store calls can be held up, as on a stuck mount (an NFS server gone: every file call blocks
 * until it is back), and a working copy that grows as saves are made: what a Replicator is driven with in unit tests.
 * The tier is real (PackTier over DirStore); only its store's calls are gated.
 */
import { type NewBackup, sealRecord } from '../../src/crypto/records.js';
import type { ReplicaSource } from '../../src/engine/replicator.js';
import { silentLogger } from '../../src/log.js';
import { DirStore } from '../../src/objects/dir.js';
import type { ObjectStore } from '../../src/objects/object-store.js';
import { ListingCatalog } from '../../src/tiers/packs/listing-catalog.js';
import { PackTier } from '../../src/tiers/packs/pack-tier.js';
import type { Sealer } from '../../src/crypto/seal.js';
import { makeChain, type TestChain } from './chain.js';

/** Gated is a store that, while stuck, holds every call until unstuck. */
export interface Gated {
  store: ObjectStore;
  stick(): void;
  unstick(): void;
}

/** gated wraps a store so that, while stuck, every call waits (forever, until unstuck) before it runs. */
export function gated(inner: ObjectStore): Gated {
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

/** gatedFolderTier is a real folder tier in `dir` whose store calls go through a gate. */
export function gatedFolderTier(dir: string, sealer: Sealer): { tier: PackTier; gate: Gated } {
  const gate = gated(new DirStore({ root: dir }));
  let tier: PackTier | null = null;
  const catalog = new ListingCatalog(gate.store, (id) => tier!.getRecord(id));
  tier = new PackTier({
    name: 'dir',
    label: `backup folder ${dir}`,
    store: gate.store,
    sealer,
    catalog,
    log: silentLogger(),
  });
  return { tier, gate };
}

/** GrowingSource is a ledger's working copy for a replicator; grow() adds a block as a save would. */
export interface GrowingSource extends ReplicaSource {
  chain(): TestChain;
  grow(): void;
  autoRecord(height?: number): Promise<NewBackup>;
}

export function growingSource(sealer: Sealer, blocks = 1): GrowingSource {
  let chain: TestChain = makeChain(sealer, blocks);
  return {
    chain: () => chain,
    grow: () => {
      chain = makeChain(sealer, 1, chain);
    },
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
}
