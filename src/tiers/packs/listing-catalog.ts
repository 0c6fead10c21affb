import type { BackupRecord } from '../../crypto/records.js';
import { ConfigError } from '../../errors.js';
import type { ObjectStore } from '../../objects/object-store.js';
import type { Catalog, ReadRecord } from './catalog.js';

const LEDGERS = 'ledgers/';
/** PREFIX_SUFFIX ends the key of a manifest that is a backup of an older point, not the chain's head (packs/format.ts). */
const PREFIX_SUFFIX = '-p.manifest';
const MANIFESTS = '/manifests/';

// The marker objects beside a manifest: `ledgers/<id>/protected/<name>` and `ledgers/<id>/pruned/<name>`.
function marker(id: string, kind: 'protected' | 'pruned'): string {
  return id.replace(MANIFESTS, `/${kind}/`);
}

/**
 * ListingCatalog lists a named store's backups from the store itself: every manifest sits under
 * `ledgers/<ledger id>/manifests/`, its key beginning with the time it was made, so the key order is the order the
 * backups were made in and the last key is the newest. Protection and retention are empty marker objects beside it
 * (`protected/`, `pruned/`), so the catalog needs nothing but the store: a machine with only the folder (or only the
 * bucket) finds its newest backup by listing.
 */
export class ListingCatalog implements Catalog {
  readonly name: string;
  readonly #list: (prefix: string) => AsyncIterable<string>;

  constructor(
    private readonly store: ObjectStore,
    private readonly read: ReadRecord,
  ) {
    if (!store.list) throw new ConfigError(`${store.label} cannot list its objects, so it cannot keep its own catalog`);
    this.#list = store.list.bind(store);
    this.name = `listing of ${store.label}`;
  }

  async #ids(prefix: string): Promise<string[]> {
    const out: string[] = [];
    for await (const id of this.#list(prefix)) out.push(id);
    return out;
  }

  // The live manifests of a ledger (of every ledger without one), oldest first.
  async #manifests(ledgerId?: string): Promise<string[]> {
    const prefix = ledgerId ? `${LEDGERS}${ledgerId}${MANIFESTS}` : LEDGERS;
    const ids = (await this.#ids(prefix)).filter((id) => id.includes(MANIFESTS));
    const pruned = new Set<string>();
    for (const ledger of new Set(ids.map((id) => id.slice(0, id.indexOf(MANIFESTS))))) {
      for (const p of await this.#ids(`${ledger}/pruned/`)) pruned.add(p.replace('/pruned/', MANIFESTS));
    }
    const live = ids.filter((id) => !pruned.has(id));
    // Across ledgers, order by the key's name alone: it starts with the time the backup was made.
    return ledgerId ? live : live.sort((a, b) => (a.slice(a.lastIndexOf('/')) < b.slice(b.lastIndexOf('/')) ? -1 : 1));
  }

  /** latest is the newest manifest of the chain's head: a backup of an older point (its key ends -p) is history. */
  async latest(ledgerId?: string): Promise<string | null> {
    return (await this.#manifests(ledgerId)).filter((id) => !id.endsWith(PREFIX_SUFFIX)).at(-1) ?? null;
  }

  async add(): Promise<void> {
    // The manifest object is its own entry: nothing more to write.
  }

  async list(ledgerId: string | undefined, limit: number): Promise<BackupRecord[]> {
    const ids = (await this.#manifests(ledgerId)).reverse().slice(0, limit);
    const out: BackupRecord[] = [];
    for (const id of ids) out.push({ ...(await this.read(id)), protected: await this.isProtected(id) });
    return out;
  }

  isProtected(id: string): Promise<boolean> {
    return this.store.has(marker(id, 'protected'));
  }

  async setProtected(id: string, on: boolean): Promise<boolean> {
    if (!id.includes(MANIFESTS) || !(await this.store.has(id)) || (await this.store.has(marker(id, 'pruned'))))
      return false;
    if (on)
      await this.store.put(new Uint8Array(0), { key: marker(id, 'protected'), label: 'pawledger protected backup' });
    else await this.store.delete(marker(id, 'protected'));
    return true;
  }

  async markPruned(ids: readonly string[]): Promise<number> {
    let marked = 0;
    for (const id of ids) {
      if (!id.includes(MANIFESTS) || !(await this.store.has(id)) || (await this.isProtected(id))) continue;
      if (await this.store.has(marker(id, 'pruned'))) continue;
      await this.store.put(new Uint8Array(0), { key: marker(id, 'pruned'), label: 'pawledger pruned backup' });
      marked++;
    }
    return marked;
  }

  async pruned(ledgerId: string): Promise<string[]> {
    return (await this.#ids(`${LEDGERS}${ledgerId}/pruned/`)).map((p) => p.replace('/pruned/', MANIFESTS));
  }

  async forget(ids: readonly string[]): Promise<void> {
    for (const id of ids) await this.store.delete(marker(id, 'pruned'));
  }

  async anchors(ledgerId: string): Promise<string[]> {
    const latest = await this.latest(ledgerId);
    return latest ? [latest] : [];
  }

  async close(): Promise<void> {}
}
