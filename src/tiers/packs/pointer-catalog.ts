import type { BackupRecord } from '../../crypto/records.js';
import { ConfigError, describeError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { hasHistory, type PointerHistory, type PointerStore } from '../../pointers/pointer.js';
import type { Catalog, ReadRecord } from './catalog.js';

/**
 * PointerCatalog lists a content-addressed tier's backups through pointer stores: the database keeps every backup
 * (ipfs_backups, with protection and retention marks), a file beside the local store and Render's env var keep the
 * newest, so that a wiped disk and database still lead to it. Protecting and pruning need the database.
 */
export class PointerCatalog implements Catalog {
  readonly name: string;

  constructor(
    private readonly pointers: PointerStore[],
    private readonly read: ReadRecord,
    private readonly log: Logger,
  ) {
    this.name = pointers.map((p) => p.name).join(', ');
  }

  /**
   * latest asks every pointer store and takes the newest backup (by the time its record was made) of the ledger. A
   * store that fails is skipped; if every one that named something failed, the failure goes up: "unreachable" must
   * not read as "no backup", or an upload would start over from block 0.
   */
  async latest(ledgerId?: string): Promise<string | null> {
    let best: BackupRecord | null = null;
    let failure: unknown = null;
    for (const store of this.pointers) {
      try {
        const p = await store.latest(ledgerId);
        if (!p || best?.id === p.cid) continue;
        const record = await this.read(p.cid);
        if (ledgerId && record.ledgerId !== ledgerId) continue;
        if (!best || (record.ledgerId === best.ledgerId && record.createdAt > best.createdAt)) best = record;
      } catch (err) {
        failure ??= err;
        this.log.warn(
          { pointer: store.name, err: describeError(err) },
          `Backup pointer in ${store.name} skipped: ${describeError(err)}`,
        );
      }
    }
    if (!best && failure) throw failure;
    return best?.id ?? null;
  }

  async add(record: BackupRecord, head: boolean): Promise<void> {
    for (const store of this.pointers) {
      await store.save(record, head).catch((err: unknown) => {
        this.log.warn(
          { pointer: store.name, err: describeError(err) },
          `Could not remember backup ${record.id} in ${store.name}: ${describeError(err)}`,
        );
      });
    }
  }

  /**
   * list answers from the database's history. A new, recreated or unreachable database has none to give while a
   * file or Render may still name the newest manifest: then null, and the tier walks from there rather than answer
   * "no backup" (startup would begin a new ledger).
   */
  async list(ledgerId: string | undefined, limit: number): Promise<BackupRecord[] | null> {
    const history = this.#history();
    if (!history) return null;
    const listed = await history.list(ledgerId, limit).catch((err: unknown) => {
      this.log.warn(
        { pointer: history.name, err: describeError(err) },
        `Backup history in ${history.name} unavailable: ${describeError(err)}`,
      );
      return [];
    });
    return listed.length > 0 ? listed : null;
  }

  async isProtected(id: string): Promise<boolean> {
    return (
      (
        await this.#history()
          ?.get(id)
          .catch(() => null)
      )?.protected ?? false
    );
  }

  setProtected(id: string, on: boolean): Promise<boolean> {
    return this.#require('Protecting a backup').setProtected(id, on);
  }

  markPruned(ids: readonly string[]): Promise<number> {
    return this.#require('Deleting backups').markPruned(ids);
  }

  async pruned(ledgerId: string): Promise<string[]> {
    return (await this.#history()?.pruned(ledgerId)) ?? [];
  }

  async forget(ids: readonly string[]): Promise<void> {
    await this.#history()?.forget(ids);
  }

  /** anchors are the newest backup each pointer store names: a wiped machine may be led to any of them. */
  async anchors(ledgerId: string): Promise<string[]> {
    const out: string[] = [];
    for (const p of this.pointers) {
      const latest = await p.latest(ledgerId).catch(() => null);
      if (latest) out.push(latest.cid);
    }
    return out;
  }

  /** flush waits for the pointer stores that write in the background (Render's env var). */
  async flush(): Promise<void> {
    for (const p of this.pointers) await p.flush?.();
  }

  /** diagnose reads every pointer store once (Render's API included): a failing one throws its typed error. */
  async diagnose(): Promise<string> {
    const seen: string[] = [];
    for (const p of this.pointers) seen.push(`${p.name} pointer: ${(await p.latest())?.cid ?? 'none yet'}`);
    return seen.join(', ');
  }

  async close(): Promise<void> {
    for (const p of this.pointers) await p.close?.();
  }

  #history(): PointerHistory | undefined {
    return this.pointers.find(hasHistory);
  }

  #require(what: string): PointerHistory {
    const history = this.#history();
    if (!history) {
      throw new ConfigError(
        `${what} on IPFS needs the database: it is where IPFS backups are listed, protected and pruned`,
        {
          hint: 'Turn the database tier on (DATABASE_URL, or unset LEDGER_DB=off)',
        },
      );
    }
    return history;
  }
}
