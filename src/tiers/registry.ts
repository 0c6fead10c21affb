import { join, resolve } from 'node:path';
import type { Config } from '../config.js';
import type { Sealer } from '../crypto/seal.js';
import type { SqlClient } from '../db/client.js';
import { openPglite } from '../db/pglite.js';
import { connectPostgres } from '../db/postgres.js';
import { parseDatabaseUrl } from '../db/url.js';
import { ConfigError, NotFoundError, ValidationError } from '../errors.js';
import type { Logger } from '../log.js';
import { kuboPlace } from '../objects/kubo-place.js';
import type { ObjectStore } from '../objects/object-store.js';
import { PinataStore } from '../objects/pinata.js';
import { retryingStore } from '../objects/retry.js';
import { DatabasePointerStore } from '../pointers/database.js';
import { FilePointerStore } from '../pointers/file.js';
import type { PointerStore } from '../pointers/pointer.js';
import { RenderPointerStore } from '../pointers/render-pointer.js';
import { DirStore } from '../objects/dir.js';
import { lazyStore } from '../objects/lazy-store.js';
import { s3Place } from '../objects/s3-options.js';
import { ListingCatalog } from './packs/listing-catalog.js';
import { PackTier } from './packs/pack-tier.js';
import { PointerCatalog } from './packs/pointer-catalog.js';
import { PostgresTier } from './postgres.js';
import type { BackupTier } from './tier.js';

/** TierRole says whether a save waits for a tier ('sync') or the tier catches up in the background ('async'). */
export type TierRole = 'sync' | 'async';

/** TierEntry is one configured tier: the tier, whether a save waits for it, and how logs name it. */
export interface TierEntry {
  /** name is the tier's name in configuration, the command line, the HTTP API and status ('db', 'ipfs', 'dir'). */
  readonly name: string;
  readonly tier: BackupTier;
  readonly role: TierRole;
  /** describe names the tier in log lines ("database", "embedded database", "IPFS", "backup folder"). */
  readonly describe: string;
}

/** OpenedTiers are the configured tiers in restore priority order, with where the local store stands among them. */
export interface OpenedTiers {
  entries: TierEntry[];
  /** localPriority is how many tiers come before the local store in the restore order (LEDGER_TIER_ORDER). */
  localPriority: number;
  /** lease is the tier that holds the writer lease (the database, with LEDGER_LEASE), or null. */
  lease: PostgresTier | null;
  /** close closes every tier built, including one built only for another's sake (the database under IPFS). */
  close(): Promise<void>;
}

/** WRITER_LEASE is the name of the one writer lease a database holds (pawledger_lease.name). */
export const WRITER_LEASE = 'writer';

/** POINTER_FILE is the file, beside the local store, that remembers the newest IPFS backup. */
export const POINTER_FILE = 'ipfs-latest.json';

/** LEASE_TIER is the tier the writer lease lives in (a row of its database), the one LEDGER_LEASE=on waits for. */
export const LEASE_TIER = 'db';

/** CID_TIER is the tier a bare CID names (`--cid`, `{"cid"}`: the seed's convenience): IPFS, whose ids are CIDs. */
export const CID_TIER = 'ipfs';

/** BACKUP_ID_TIER is the tier the seed's `{"backupId"}` names when no tier is given: the database. */
export const BACKUP_ID_TIER = 'db';

/** DEFAULT_SYNC_TIERS are the tiers a save waits for unless LEDGER_SYNC_TIERS says otherwise. */
export const DEFAULT_SYNC_TIERS: readonly string[] = ['db'];

/** LOCAL is the local store's name in LEDGER_TIER_ORDER and in status. */
export const LOCAL = 'local';

interface FactoryContext {
  config: Config;
  sealer: Sealer | null;
  log: Logger;
  /** built holds the tiers made so far, by name: a tier may lean on one before it (IPFS keeps its list in the database). */
  built: Map<string, BackupTier>;
}

interface TierFactory {
  /** on tells whether the configuration turns the tier on. */
  on(config: Config): boolean;
  /** hint says how to turn the tier on. */
  hint: string;
  describe(config: Config): string;
  /** create builds the tier; nothing connects until init(). */
  create(ctx: FactoryContext): BackupTier;
}

function needSealer(ctx: FactoryContext, name: string): Sealer {
  if (!ctx.sealer)
    throw new ConfigError(`the ${name} tier seals what it stores and needs the key`, {
      hint: 'Set LEDGER_ENCRYPTION_KEY',
    });
  return ctx.sealer;
}

/** createIpfsStore makes the IPFS store the configuration names, wrapped in retries with backoff, or null. */
export function createIpfsStore(config: Config, log: Logger): ObjectStore | null {
  const c = config.ipfs;
  let store: ObjectStore;
  switch (c.kind) {
    case 'off':
      return null;
    // The IPFS stack (a UnixFS importer and exporter) loads at the store's first call: a start that does not reach
    // IPFS (the database was fresher) must not pay its import.
    case 'embedded': {
      const dir = resolve(c.dir);
      const facts = {
        name: 'embedded',
        label: `embedded IPFS blockstore ${dir}`,
        contentAddressed: true,
        listable: false,
      };
      store = lazyStore(facts, async () => new (await import('../objects/embedded.js')).EmbeddedIpfsStore({ dir }));
      break;
    }
    case 'kubo': {
      const { label } = kuboPlace(c.apiUrl);
      const facts = { name: 'kubo', label, contentAddressed: true, listable: false };
      store = lazyStore(facts, async () => new (await import('../objects/kubo.js')).KuboStore({ apiUrl: c.apiUrl }));
      break;
    }
    case 'pinata':
      store = new PinataStore({
        apiUrl: c.apiUrl,
        gatewayUrl: c.gatewayUrl,
        ...(c.gatewayToken ? { gatewayToken: c.gatewayToken } : {}),
        auth: c.auth,
        log,
      });
      break;
  }
  return retryingStore(store, { attempts: 5, baseMs: Math.min(500, config.retryMs), maxMs: 30_000, log });
}

/** namedStoreTier is a pack tier over a named store that lists its own backups (a folder, a bucket). */
function namedStoreTier(ctx: FactoryContext, name: string, store: ObjectStore, label: string): PackTier {
  let tier: PackTier | null = null;
  const catalog = new ListingCatalog(store, async (id) => tier!.getRecord(id));
  tier = new PackTier({
    name,
    label,
    store,
    sealer: needSealer(ctx, name),
    catalog,
    log: ctx.log,
    init: () => store.check(),
  });
  return tier;
}

/** S3_TIER is the s3 tier: packs in a bucket of AWS S3 or an S3-compatible service (S3_BUCKET), listed by the bucket. */
const S3_TIER: TierFactory = {
  on: (config) => config.s3 !== null,
  hint: 'Set S3_BUCKET (with S3_ENDPOINT and S3_REGION for R2, B2 or MinIO) and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY',
  describe: () => 'S3 bucket',
  create: (ctx) => {
    const c = ctx.config.s3!;
    const options = {
      bucket: c.bucket,
      prefix: c.prefix,
      ...(c.endpoint ? { endpoint: c.endpoint } : {}),
      region: c.region,
      forcePathStyle: c.forcePathStyle,
    };
    // The S3 SDK loads at the tier's first call, not at every start of a deployment that may not use it.
    const { label } = s3Place(options);
    const store = lazyStore({ name: 's3', label, contentAddressed: false, listable: true }, async () => {
      const { S3Store } = await import('../objects/s3.js');
      return new S3Store(options);
    });
    const { retryMs } = ctx.config;
    const retrying = retryingStore(store, { attempts: 5, baseMs: Math.min(500, retryMs), maxMs: 30_000, log: ctx.log });
    return namedStoreTier(ctx, 's3', retrying, label);
  },
};

/** FACTORIES is the registry: every tier pawledger knows, by name. Adding a tier is one entry here and its own file. */
const FACTORIES: Record<string, TierFactory> = {
  db: {
    on: (config) => config.database.kind !== 'off',
    hint: 'Set DATABASE_URL, or unset LEDGER_DB=off to use the embedded database',
    describe: (config) => (config.database.kind === 'pglite' ? 'embedded database' : 'database'),
    create: ({ config }) => {
      const db = config.database;
      if (db.kind === 'postgres') {
        const { label } = parseDatabaseUrl(db.url);
        return new PostgresTier({
          label,
          connect: async () =>
            connectPostgres(db.url, {
              timeoutMs: config.dbTimeoutMs,
              statementTimeoutMs: config.tierTimeoutMs,
              keepAliveMs: config.dbKeepAliveMs,
            }),
          ...(config.lease ? { lease: WRITER_LEASE } : {}),
        });
      }
      if (db.kind === 'pglite')
        return new PostgresTier({ label: `PGlite at ${resolve(db.dir)}`, connect: () => openPglite(db.dir) });
      throw new NotFoundError('the database tier is off');
    },
  },
  s3: S3_TIER,
  ipfs: {
    on: (config) => config.ipfs.kind !== 'off',
    hint: 'Set PINATA_JWT (or PINATA_API_KEY and PINATA_SECRET_KEY), IPFS_API_URL, or IPFS_PROVIDER=embedded',
    describe: () => 'IPFS',
    create: (ctx) => {
      const { config, log } = ctx;
      const sealer = needSealer(ctx, 'IPFS');
      const store = createIpfsStore(config, log)!;
      // The newest manifest is remembered in the database (with history), a file beside the local store, the embedded
      // blockstore's own folder (it outlives a lost local store) and Render's env var, so that any of them leads to it.
      const pointers: PointerStore[] = [];
      const db = ctx.built.get('db');
      if (db instanceof PostgresTier)
        pointers.push(
          new DatabasePointerStore(
            () => db.db,
            () => db.writer,
          ),
        );
      pointers.push(new FilePointerStore(join(resolve(config.dataDir), POINTER_FILE)));
      if (config.ipfs.kind === 'embedded')
        pointers.push(new FilePointerStore(join(resolve(config.ipfs.dir), POINTER_FILE)));
      if (config.render) pointers.push(new RenderPointerStore({ ...config.render, log }));
      let tier: PackTier | null = null;
      const catalog = new PointerCatalog(pointers, async (id) => tier!.getRecord(id), log);
      // The database's list is one pointer among several: a database that is down must not stop IPFS.
      const init = async () => void (await (db instanceof PostgresTier ? db.init().catch(() => {}) : undefined));
      tier = new PackTier({ name: 'ipfs', label: `IPFS via ${store.label}`, store, sealer, catalog, log, init });
      return tier;
    },
  },
};

/** FOLDER_TIER is the dir tier: packs in a folder on another disk (LEDGER_BACKUP_DIR), listed by the folder itself. */
const FOLDER_TIER: TierFactory = {
  on: (config) => config.backupDir !== null,
  hint: 'Set LEDGER_BACKUP_DIR to a folder on another disk (a Render persistent disk, an NFS mount)',
  describe: () => 'backup folder',
  create: (ctx) => {
    const store = new DirStore({ root: ctx.config.backupDir! });
    return namedStoreTier(ctx, 'dir', store, `backup ${store.label}`);
  },
};
FACTORIES.dir = FOLDER_TIER;

/** TIER_NAMES are the names of every tier the registry knows, in the default restore order. */
export const TIER_NAMES = Object.keys(FACTORIES);

/** localPriority is how many of these tiers come before the local store in the restore order (LEDGER_TIER_ORDER). */
export function localPriority(config: Config, names: string[] = configuredTiers(config)): number {
  const before = config.tierOrder.slice(0, config.tierOrder.indexOf(LOCAL));
  return names.filter((n) => before.includes(n)).length;
}

/** offTiers are the tiers the configuration leaves off, each with how to turn it on (status lists them as off). */
export function offTiers(config: Config): { name: string; hint: string }[] {
  return TIER_NAMES.filter((n) => !FACTORIES[n]!.on(config)).map((name) => ({ name, hint: FACTORIES[name]!.hint }));
}

/** configuredTiers is the names of the tiers the configuration turns on, in restore priority order. */
export function configuredTiers(config: Config): string[] {
  return config.tierOrder.filter((n) => n !== LOCAL && FACTORIES[n]!.on(config));
}

/**
 * requireTier checks that `name` is a tier the configuration turns on: ValidationError for a name no tier has,
 * NotFoundError (saying how to turn it on) for a tier that is off.
 */
export function requireTier(config: Config, name: string, field = 'tier'): void {
  const factory = FACTORIES[name];
  if (!factory)
    throw new ValidationError(`${field} must be one of ${TIER_NAMES.join(', ')}, got ${JSON.stringify(name)}`, field);
  if (!factory.on(config)) throw new NotFoundError(`the ${name} tier is off`, { hint: factory.hint });
}

/**
 * openTiers builds the configured tiers in restore priority order (LEDGER_TIER_ORDER), each with its role (a save
 * waits for the tiers in LEDGER_SYNC_TIERS). With `only`, it builds that tier alone (and the database, where the
 * tier keeps its list there). Nothing connects until a tier's init().
 */
export function openTiers(config: Config, options: { sealer: Sealer | null; log: Logger; only?: string }): OpenedTiers {
  const ctx: FactoryContext = { config, sealer: options.sealer, log: options.log, built: new Map() };
  const names = options.only ? [options.only] : configuredTiers(config);
  if (options.only) requireTier(config, options.only);
  // The database is built first whenever it is on: other tiers keep their lists in it.
  const order = FACTORIES.db!.on(config) && !names.includes('db') ? ['db', ...names] : names;
  const built = [...TIER_NAMES]
    .sort((a, b) => Number(b === 'db') - Number(a === 'db'))
    .filter((n) => order.includes(n));
  for (const name of built) ctx.built.set(name, FACTORIES[name]!.create(ctx));
  const entries: TierEntry[] = names.map((name) => ({
    name,
    tier: ctx.built.get(name)!,
    role: config.syncTiers.includes(name) ? 'sync' : 'async',
    describe: FACTORIES[name]!.describe(config),
  }));
  const db = ctx.built.get('db');
  return {
    entries,
    localPriority: localPriority(config, names),
    lease: config.lease && db instanceof PostgresTier ? db : null,
    close: async () => {
      for (const t of ctx.built.values()) await t.close().catch(() => {});
    },
  };
}

/**
 * openLeaseTier opens the tier the writer lease lives in (the database, when LEDGER_LEASE is on), for readers that
 * only want to know who holds it; null when the lease is off. The caller closes it.
 */
export function openLeaseTier(config: Config, log: Logger): PostgresTier | null {
  if (!config.lease) return null;
  const tier = openTiers(config, { sealer: null, log, only: LEASE_TIER }).entries[0]!.tier;
  return tier instanceof PostgresTier ? tier : null;
}

/**
 * deployChecks are the doctor's findings about the tiers the configuration chooses, before any is reached: a
 * database that is off or embedded where the disk is wiped at each deploy, IPFS on Render without a place for its
 * newest CID that outlives the database.
 */
export function deployChecks(
  config: Config,
): { name: string; status: 'ok' | 'warn' | 'fail'; detail: string; fix?: string }[] {
  const out: { name: string; status: 'ok' | 'warn' | 'fail'; detail: string; fix?: string }[] = [];
  if (config.database.kind === 'off') {
    out.push({
      name: 'db',
      status: config.onRender ? 'fail' : 'warn',
      detail: 'the database tier is off (LEDGER_DB=off)',
      fix: 'Set DATABASE_URL to keep backups off this machine',
    });
  } else if (config.database.kind === 'pglite' && config.onRender) {
    out.push({
      name: 'db deploy',
      status: 'fail',
      detail: `embedded PGlite at ${resolve(config.database.dir)} on Render`,
      fix: 'On Render the embedded database is wiped at each deploy: set DATABASE_URL to a Render PostgreSQL',
    });
  }
  if (config.onRender && config.ipfs.kind !== 'off' && !config.render) {
    out.push({
      name: 'render',
      status: 'warn',
      detail: 'RENDER_API_KEY/RENDER_SERVICE_ID are not set',
      fix: 'Set them so the newest IPFS CID survives a deploy that loses the database',
    });
  }
  return out;
}

/** databaseServer is the tier that can hold the writer lease (a PostgreSQL server, not the embedded one), or null. */
export function databaseServer(config: Config, opened: OpenedTiers): PostgresTier | null {
  const db = opened.entries.find((e) => e.tier instanceof PostgresTier)?.tier;
  return config.database.kind === 'postgres' && db instanceof PostgresTier ? db : null;
}

/**
 * databaseClient is the database tier's SQL client (PostgreSQL or the embedded PGlite), the tier initialized on first
 * use, or null when the database tier is off: where records that are not backups (drills) are kept.
 */
export function databaseClient(opened: OpenedTiers): (() => Promise<SqlClient>) | null {
  const db = opened.entries.find((e) => e.tier instanceof PostgresTier)?.tier;
  if (!(db instanceof PostgresTier)) return null;
  let ready: Promise<void> | null = null;
  return async () => {
    try {
      return db.db;
    } catch {
      ready ??= db.init().finally(() => (ready = null));
      await ready;
      return db.db;
    }
  };
}

/**
 * openDatabaseTier opens the database tier alone, needing no key (for readers of what it keeps besides backups, such
 * as drill verdicts), or returns null when the database tier is off. The caller closes it.
 */
export function openDatabaseTier(config: Config, log: Logger): OpenedTiers | null {
  return FACTORIES.db!.on(config) ? openTiers(config, { sealer: null, log, only: 'db' }) : null;
}
