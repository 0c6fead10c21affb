/**
 * Test helpers for pack tiers: a PackTier over any object store with a catalog of pointer stores, as the registry
 * builds the IPFS tier (tests choose the store, the pointers and a small pack cap).
 */
import type { Sealer } from '../../src/crypto/seal.js';
import { silentLogger } from '../../src/log.js';
import type { ObjectStore } from '../../src/objects/object-store.js';
import type { PointerStore } from '../../src/pointers/pointer.js';
import { PackTier } from '../../src/tiers/packs/pack-tier.js';
import { PointerCatalog } from '../../src/tiers/packs/pointer-catalog.js';

/** pointerPackTier is a pack tier over `store` whose backups are listed through `pointers` (IPFS's arrangement). */
export function pointerPackTier(options: {
  name?: string;
  store: ObjectStore;
  pointers: PointerStore[];
  sealer: Sealer;
  packCapBytes?: number;
}): PackTier {
  let tier: PackTier | null = null;
  const log = silentLogger();
  const catalog = new PointerCatalog(options.pointers, (id) => tier!.getRecord(id), log);
  tier = new PackTier({
    name: options.name ?? 'ipfs',
    label: `IPFS via ${options.store.label}`,
    store: options.store,
    sealer: options.sealer,
    catalog,
    log,
    ...(options.packCapBytes ? { packCapBytes: options.packCapBytes } : {}),
  });
  return tier;
}
