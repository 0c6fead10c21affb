import { join, resolve } from 'node:path';
import type { Config } from '../config.js';
import type { Sealer } from '../crypto/seal.js';
import type { Logger } from '../log.js';
import { DatabasePointerStore } from '../pointers/database.js';
import { FilePointerStore } from '../pointers/file.js';
import type { PointerStore } from '../pointers/pointer.js';
import { RenderPointerStore } from '../pointers/render-pointer.js';
import { EmbeddedIpfsStore } from '../objects/embedded.js';
import { KuboStore } from '../objects/kubo.js';
import { PinataStore } from '../objects/pinata.js';
import type { ObjectStore } from '../objects/object-store.js';
import { retryingStore } from '../objects/retry.js';
import { IpfsTier } from './packs/pack-tier.js';
import type { PostgresTier } from './postgres.js';
import { createDbTier } from './select.js';

/** OpenTiers are the configured remote tiers, in restore priority order (database, then IPFS). */
export interface OpenTiers {
  db: PostgresTier | null;
  ipfs: IpfsTier | null;
}

/** POINTER_FILE is the local file that remembers the newest IPFS backup, beside the local store. */
export const POINTER_FILE = 'ipfs-latest.json';

/** createObjectStore makes the provider the configuration names, wrapped in retries with backoff, or null. */
export function createObjectStore(config: Config, log: Logger): ObjectStore | null {
  const c = config.ipfs;
  let provider: ObjectStore;
  switch (c.kind) {
    case 'off':
      return null;
    case 'embedded':
      provider = new EmbeddedIpfsStore({ dir: resolve(c.dir) });
      break;
    case 'kubo':
      provider = new KuboStore({ apiUrl: c.apiUrl });
      break;
    case 'pinata':
      provider = new PinataStore({ apiUrl: c.apiUrl, gatewayUrl: c.gatewayUrl, ...(c.gatewayToken ? { gatewayToken: c.gatewayToken } : {}), auth: c.auth, log });
      break;
  }
  return retryingStore(provider, { attempts: 5, baseMs: Math.min(500, config.retryMs), maxMs: 30_000, log });
}

/**
 * openTiers builds the remote tiers from the configuration (nothing connects until init). The IPFS tier remembers
 * its newest manifest in the database (with history), a file beside the local store, and Render when configured.
 */
export function openTiers(config: Config, sealer: Sealer, log: Logger, extraPointers: PointerStore[] = []): OpenTiers {
  const db = createDbTier(config);
  const provider = createObjectStore(config, log);
  if (!provider) return { db, ipfs: null };
  const pointers: PointerStore[] = [];
  if (db) pointers.push(new DatabasePointerStore(() => db.db, () => db.writer));
  pointers.push(new FilePointerStore(join(resolve(config.dataDir), POINTER_FILE)), ...extraPointers);
  // The embedded blockstore's own folder outlives a lost local store: remember the newest manifest there too.
  if (config.ipfs.kind === 'embedded') pointers.push(new FilePointerStore(join(resolve(config.ipfs.dir), POINTER_FILE)));
  if (config.render) pointers.push(new RenderPointerStore({ ...config.render, log }));
  return { db, ipfs: new IpfsTier({ provider, sealer, pointers, log }) };
}
