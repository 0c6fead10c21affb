import { latestBackup } from '../../src/engine/restore.js';
import type { Sealer } from '../../src/crypto/seal.js';
import type { PackTier } from '../../src/tiers/packs/pack-tier.js';
import type { PostgresTier } from '../../src/tiers/postgres.js';
import type { BackupTier } from '../../src/tiers/tier.js';
import type { BackupRecord } from '../../src/crypto/records.js';

// Each tier's modules are imported only when that tier is opened: a restore child then loads only what it restores
// from, and starts sooner.

/**
 * RestoreSource names a tier holding a ledger: a database, a local store folder, an embedded IPFS folder with the
 * pointer file that names its newest manifest, or a backup folder (the dir tier, LEDGER_BACKUP_DIR: a folder of
 * objects that lists its own backups).
 */
export type RestoreSource =
  | { tier: 'db'; url: string }
  | { tier: 'local'; dir: string }
  | { tier: 'ipfs'; dir: string; pointerFile: string }
  | { tier: 'dir'; dir: string };

/** RestoreTierName is the name of a tier a restore reads from. */
export type RestoreTierName = RestoreSource['tier'];

/** dbTier is the database tier over a PostgreSQL URL, unfenced (no writer lease), with a long statement timeout. */
export async function dbTier(url: string): Promise<PostgresTier> {
  const [{ PostgresTier }, { connectPostgres }] = await Promise.all([
    import('../../src/tiers/postgres.js'),
    import('../../src/db/postgres.js'),
  ]);
  return new PostgresTier({
    label: 'bench database',
    connect: async () => connectPostgres(url, { timeoutMs: 600_000 }),
  });
}

/** ipfsTier is the IPFS tier over an embedded folder, remembering its newest manifest in `pointerFile`. */
export async function ipfsTier(dir: string, pointerFile: string, sealer: Sealer): Promise<PackTier> {
  const [{ PackTier }, { PointerCatalog }, { EmbeddedIpfsStore }, { FilePointerStore }, { silentLogger }] =
    await Promise.all([
      import('../../src/tiers/packs/pack-tier.js'),
      import('../../src/tiers/packs/pointer-catalog.js'),
      import('../../src/objects/embedded.js'),
      import('../../src/pointers/file.js'),
      import('../../src/log.js'),
    ]);
  const store = new EmbeddedIpfsStore({ dir });
  let tier: PackTier | null = null;
  const catalog = new PointerCatalog([new FilePointerStore(pointerFile)], (id) => tier!.getRecord(id), silentLogger());
  tier = new PackTier({ name: 'ipfs', label: `IPFS via ${store.label}`, store, sealer, catalog, log: silentLogger() });
  return tier;
}

/**
 * dirTier is the dir tier over a backup folder, as the registry builds it for LEDGER_BACKUP_DIR: packs in a DirStore,
 * the backups listed by the folder itself. The folder must exist (DirStore never creates it).
 */
export async function dirTier(dir: string, sealer: Sealer): Promise<PackTier> {
  const [{ PackTier }, { ListingCatalog }, { DirStore }, { silentLogger }] = await Promise.all([
    import('../../src/tiers/packs/pack-tier.js'),
    import('../../src/tiers/packs/listing-catalog.js'),
    import('../../src/objects/dir.js'),
    import('../../src/log.js'),
  ]);
  const store = new DirStore({ root: dir });
  let tier: PackTier | null = null;
  const catalog = new ListingCatalog(store, (id) => tier!.getRecord(id));
  tier = new PackTier({
    name: 'dir',
    label: `backup ${store.label}`,
    store,
    sealer,
    catalog,
    log: silentLogger(),
    init: () => store.check(),
  });
  return tier;
}

/**
 * openSource opens the tier and finds the backup a restore would take: the tier's newest record. A local store
 * written by a Ledger keeps no records of its own; then the record is made here, sealed, for the store's head.
 */
export async function openSource(
  source: RestoreSource,
  sealer: Sealer,
): Promise<{ tier: BackupTier; record: BackupRecord }> {
  let tier: BackupTier;
  if (source.tier === 'db') tier = await dbTier(source.url);
  else if (source.tier === 'ipfs') tier = await ipfsTier(source.dir, source.pointerFile, sealer);
  else if (source.tier === 'dir') tier = await dirTier(source.dir, sealer);
  else tier = (await import('./local-store-tier.js')).localStoreTier(source.dir, sealer);
  await tier.init();
  const record = await latestBackup(tier, null);
  if (!record) throw new Error(`${tier.label} holds no backup`);
  return { tier, record };
}
