import { CID } from 'multiformats/cid';
import type { Sealer } from '../../crypto/seal.js';
import { ConfigError, describeError, IntegrityError, NotFoundError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { hasHistory, type PointerHistory, type PointerStore } from '../../pointers/pointer.js';
import { sealRecord } from '../../crypto/records.js';
import type { StoredBlock } from '../../crypto/stored-block.js';
import type { BackupTier } from '../tier.js';
import type { BackupRecord, NewBackup } from '../../crypto/records.js';
import { decodeManifestFile, encodeManifestFile, manifestKey, openPack, packKey, planMerge, sealManifest, sealPack, type Manifest, type PackRef } from './format.js';
import type { ObjectStore } from '../../objects/object-store.js';

/** IpfsTierOptions configure the IPFS tier. */
export interface IpfsTierOptions {
  provider: ObjectStore;
  /** sealer seals packs and manifests (the blocks inside are sealed already). */
  sealer: Sealer;
  /** pointers remember the newest manifest CID; the first that answers is the default for listing. */
  pointers: PointerStore[];
  log: Logger;
  /** packCapBytes bounds one pack (and so one merge). @default 16 MiB */
  packCapBytes?: number;
}

interface Latest {
  cid: string;
  manifest: Manifest;
}

function toRecord(cid: string, m: Manifest): BackupRecord {
  return {
    id: cid, tier: 'ipfs', ledgerId: m.ledgerId, name: m.name, kind: m.kind, createdAt: new Date(m.createdAt), createdBy: m.createdBy,
    height: m.height, headHash: m.headHash, sizeBytes: m.sizeBytes, protected: false, seal: Buffer.from(m.recordSeal, 'base64'),
  };
}

/**
 * IpfsTier keeps a ledger on IPFS as sealed packs of blocks named by a sealed manifest; a backup is a manifest and
 * its id is the manifest's CID. An append uploads one new pack (merging small tail packs, like a binary counter, so a
 * manifest names O(log n) packs) and a new manifest that reuses every older pack. Everything fetched is checked
 * against its CID or recorded SHA-256 by the provider, then against its seal here.
 *
 * Retention needs the pointer store with history (the database): deleting a record marks its row there, and
 * collectGarbage unpins the packs it alone named, then its manifest, then forgets the row.
 */
export class IpfsTier implements BackupTier {
  readonly name = 'ipfs';
  readonly label: string;
  readonly #o: IpfsTierOptions;
  readonly #cap: number;
  readonly #latest = new Map<string, Latest>();
  // The newest manifest this process wrote per ledger, head or not: a new manifest's `previous`, so walking back
  // from the head lists named backups of older points too.
  readonly #newest = new Map<string, string>();
  readonly #manifests = new Map<string, Manifest>();
  // Packs this process built or fetched recently: a merge needs the tail packs' blocks without downloading them.
  readonly #packs = new Map<string, StoredBlock[]>();

  constructor(options: IpfsTierOptions) {
    this.#o = options;
    this.label = `IPFS via ${options.provider.label}`;
    this.#cap = options.packCapBytes ?? 16 * 1024 * 1024;
  }

  async init(): Promise<void> {}

  /** manifest fetches, verifies and opens a manifest by CID (a malformed CID is NotFoundError saying so). */
  async manifest(cid: string): Promise<Manifest> {
    const cached = this.#manifests.get(cid);
    if (cached) return cached;
    try {
      CID.parse(cid);
    } catch {
      throw new NotFoundError(`${JSON.stringify(cid)} is not a CID`, { hint: 'An IPFS backup id looks like bafy…; list them with `pawledger backups list --tier ipfs`' });
    }
    const m = decodeManifestFile(this.#o.sealer, cid, await this.#o.provider.get(cid));
    this.#manifests.set(cid, m);
    return m;
  }

  async #pack(ledgerId: string, ref: PackRef): Promise<StoredBlock[]> {
    const cached = this.#packs.get(ref.cid);
    if (cached) return cached;
    const blocks = openPack(this.#o.sealer, ledgerId, ref, await this.#o.provider.get(ref.cid, { sha256: ref.sha256 }));
    this.#remember(ref.cid, blocks);
    return blocks;
  }

  #remember(cid: string, blocks: StoredBlock[]): void {
    this.#packs.set(cid, blocks);
    if (this.#packs.size > 32) this.#packs.delete(this.#packs.keys().next().value!);
  }

  /** latest is the newest manifest of a ledger (of any ledger if none given) the pointer stores know of, or null. */
  async latest(ledgerId?: string): Promise<Latest | null> {
    const known = ledgerId ? this.#latest.get(ledgerId) : undefined;
    if (known) return known;
    let best = null as Latest | null;
    let failure: unknown = null;
    for (const store of this.#o.pointers) {
      try {
        const p = await store.latest(ledgerId);
        if (!p || best?.cid === p.cid) continue;
        const manifest = await this.manifest(p.cid);
        if (ledgerId && manifest.ledgerId !== ledgerId) continue;
        if (!best || (manifest.ledgerId === best.manifest.ledgerId && manifest.height > best.manifest.height)) best = { cid: p.cid, manifest };
      } catch (err) {
        failure ??= err;
        this.#o.log.warn({ tier: 'ipfs', pointer: store.name, err: describeError(err) }, `IPFS pointer in ${store.name} skipped: ${describeError(err)}`);
      }
    }
    // Every pointer that named something failed (IPFS or the database unreachable): that is not "no backup", and an
    // upload must not start over from block 0 because of it.
    if (!best && failure) throw failure;
    if (best) this.#latest.set(best.manifest.ledgerId, best);
    return best;
  }

  async hashAt(record: BackupRecord, height: number): Promise<string | null> {
    if (height < 0 || height > record.height) return null;
    const m = await this.manifest(record.id);
    const ref = m.packs.find((p) => height >= p.from && height <= p.to)!;
    if (height === ref.to) return ref.lastHash;
    return (await this.#pack(m.ledgerId, ref))[height - ref.from]!.hash;
  }

  async hasBlock(ledgerId: string, height: number, hash: string): Promise<boolean> {
    const latest = await this.latest(ledgerId);
    return latest !== null && (await this.hashAt(toRecord(latest.cid, latest.manifest), height)) === hash;
  }

  async append(ledgerId: string, parentHash: string | null, all: readonly StoredBlock[], record?: NewBackup): Promise<{ bytesWritten: number; record: BackupRecord }> {
    if (record && all.length > 0 && record.height !== all.at(-1)!.height) {
      // A record inside the new run: store the run (its own manifest), then a manifest for the record's prefix.
      const first = await this.append(ledgerId, parentHash, all);
      const second = await this.append(ledgerId, record.headHash, [], record);
      return { bytesWritten: first.bytesWritten + second.bytesWritten, record: second.record };
    }
    const latest = await this.latest(ledgerId);
    const parentHeight = all.length > 0 ? all[0]!.height - 1 : record ? record.height : -1;
    let packs: PackRef[] = [];
    let run: StoredBlock[] = [];
    if (parentHeight >= 0) {
      const head = latest ? toRecord(latest.cid, latest.manifest) : null;
      if (!head || (await this.hashAt(head, parentHeight)) !== (all.length > 0 ? parentHash : record!.headHash)) {
        throw new NotFoundError(`${this.label} lacks block ${parentHeight} that the new blocks follow (its newest manifest ends at block ${head?.height ?? 'none'})`);
      }
      // Reuse every pack below the parent; re-pack the blocks of the pack it falls inside, up to the parent.
      const at = latest!.manifest.packs.findIndex((p) => parentHeight >= p.from && parentHeight <= p.to);
      const ref = latest!.manifest.packs[at]!;
      packs = latest!.manifest.packs.slice(0, parentHeight === ref.to ? at + 1 : at);
      if (parentHeight !== ref.to) run = (await this.#pack(ledgerId, ref)).slice(0, parentHeight - ref.from + 1);
    }
    run.push(...all);
    let bytesWritten = 0;
    const upload = async (blocks: StoredBlock[]): Promise<PackRef> => {
      const { sealed, ref } = sealPack(this.#o.sealer, ledgerId, blocks);
      const cid = await this.#o.provider.put(sealed, {
        key: packKey(ledgerId, ref), label: `pawledger pack ${ledgerId.slice(0, 12)} ${ref.from}-${ref.to}`,
        keyvalues: { ledger: ledgerId.slice(0, 16), kind: 'pack', from: String(ref.from), to: String(ref.to) },
      });
      bytesWritten += sealed.length;
      this.#remember(cid, blocks);
      return { cid, ...ref };
    };
    for (let i = 0; i < run.length; ) {
      const chunk: StoredBlock[] = [];
      let bytes = 0;
      while (i < run.length && (chunk.length === 0 || bytes + run[i]!.sealed.length <= this.#cap)) {
        bytes += run[i]!.sealed.length;
        chunk.push(run[i++]!);
      }
      packs.push(await upload(chunk));
      const n = planMerge(packs, this.#cap);
      if (n > 1) {
        const merged: StoredBlock[] = [];
        for (const p of packs.slice(-n)) merged.push(...(await this.#pack(ledgerId, p)));
        packs.splice(-n, n, await upload(merged));
      }
    }
    const last = packs.at(-1)!;
    const fields = record ?? sealRecord(this.#o.sealer, {
      ledgerId, name: `Auto-backup ${new Date().toISOString().slice(0, 19).replace('T', ' ')}`, kind: 'auto', createdAt: new Date(),
      createdBy: null, height: last.to, headHash: last.lastHash, sizeBytes: latest && all.length ? latest.manifest.sizeBytes + all.reduce((n, b) => n + b.sealed.length, 0) : 0,
    });
    if (fields.height !== last.to || fields.headHash !== last.lastHash) {
      throw new IntegrityError(`the backup names block ${fields.height}, but the blocks end at ${last.to}`);
    }
    const manifest: Manifest = {
      version: 1, ledgerId, name: fields.name, kind: fields.kind, recordSeal: fields.seal.toString('base64'), createdAt: fields.createdAt.toISOString(),
      createdBy: fields.createdBy, height: fields.height, headHash: fields.headHash, sizeBytes: fields.sizeBytes, packs,
      previous: this.#newest.get(ledgerId) ?? latest?.cid ?? null,
    };
    const file = encodeManifestFile(manifest, sealManifest(this.#o.sealer, manifest));
    const cid = await this.#o.provider.put(file, {
      key: manifestKey(manifest, file), label: `pawledger manifest ${ledgerId.slice(0, 12)} @${manifest.height}`,
      keyvalues: { ledger: ledgerId.slice(0, 16), kind: 'manifest', height: String(manifest.height), head: manifest.headHash.slice(0, 16) },
    });
    bytesWritten += file.length;
    this.#manifests.set(cid, manifest);
    this.#newest.set(ledgerId, cid);
    // A manifest of an older point (a named backup of a prefix) is history; the chain's head stays the latest.
    const head = all.length > 0 || !latest || manifest.height >= latest.manifest.height;
    if (head) this.#latest.set(ledgerId, { cid, manifest });
    const result = toRecord(cid, manifest);
    for (const store of this.#o.pointers) {
      await store.save(result, head).catch((err: unknown) => {
        this.#o.log.warn({ tier: 'ipfs', pointer: store.name, err: describeError(err) }, `Could not remember IPFS backup ${cid} in ${store.name}: ${describeError(err)}`);
      });
    }
    return { bytesWritten, record: result };
  }

  async putBackup(record: NewBackup): Promise<BackupRecord> {
    return (await this.append(record.ledgerId, record.headHash, [], record)).record;
  }

  async listBackups(ledgerId?: string, options: { limit?: number } = {}): Promise<BackupRecord[]> {
    const limit = options.limit ?? 100;
    const withHistory = this.#o.pointers.find((p) => p.list);
    if (withHistory) {
      // A new, recreated or unreachable database has no history to give while a file or Render may still name the
      // newest manifest: then walk from there rather than answer "no backup" (startup would begin a new ledger).
      const listed = await withHistory.list!(ledgerId, limit).catch((err: unknown) => {
        this.#o.log.warn({ tier: 'ipfs', pointer: withHistory.name, err: describeError(err) }, `IPFS backup history in ${withHistory.name} unavailable: ${describeError(err)}`);
        return [];
      });
      if (listed.length > 0) return listed;
    }
    // Without a history, walk the manifests back from the newest.
    const out: BackupRecord[] = [];
    const head = await this.latest(ledgerId);
    let cid = (head && this.#newest.get(head.manifest.ledgerId)) ?? head?.cid ?? null;
    while (cid && out.length < limit) {
      // Retention unpins old manifests: the walk ends at the first one that is gone.
      const m = await this.manifest(cid).catch((err: unknown) => {
        if (err instanceof NotFoundError && out.length > 0) return null;
        throw err;
      });
      if (!m) break;
      out.push(toRecord(cid, m));
      cid = m.previous;
    }
    return out;
  }

  async getBackup(id: string): Promise<BackupRecord> {
    const record = toRecord(id, await this.manifest(id));
    // The protected flag lives with the history, not in the (immutable) manifest.
    const known = await this.#history()?.get(id).catch(() => null);
    return known ? { ...record, protected: known.protected } : record;
  }

  #history(): PointerHistory | undefined {
    return this.#o.pointers.find(hasHistory);
  }

  #requireHistory(what: string): PointerHistory {
    const history = this.#history();
    if (!history) {
      throw new ConfigError(`${what} on IPFS needs the database: it is where IPFS backups are listed, protected and pruned`, {
        hint: 'Turn the database tier on (DATABASE_URL, or unset LEDGER_DB=off)',
      });
    }
    return history;
  }

  async deleteBackups(ids: readonly string[]): Promise<number> {
    const deleted = await this.#requireHistory('Deleting backups').markPruned(ids);
    for (const [ledgerId, l] of this.#latest) if (ids.includes(l.cid)) this.#latest.delete(ledgerId);
    return deleted;
  }

  async setProtected(id: string, on: boolean): Promise<void> {
    const history = this.#requireHistory('Protecting a backup');
    if (!(await history.setProtected(id, on))) {
      throw new NotFoundError(`there is no IPFS backup ${JSON.stringify(id)}`, { hint: 'List them with `pawledger backups list --tier ipfs`' });
    }
  }

  /**
   * collectGarbage unpins, for each record deleteBackups marked, the packs no remaining manifest names, then its
   * manifest, then forgets the record. Remaining manifests are the live records and the newest heads the pointer
   * stores and this process know of; if one cannot be read (other than already gone) nothing is unpinned.
   */
  async collectGarbage(ledgerId: string): Promise<{ blocks: number; bytes: number }> {
    const history = this.#history();
    const pruned = new Set(history ? await history.pruned(ledgerId) : []);
    if (!history || pruned.size === 0) return { blocks: 0, bytes: 0 };
    const kept = new Set((await history.list(ledgerId, 1_000_000)).map((r) => r.id));
    for (const cid of [this.#latest.get(ledgerId)?.cid, this.#newest.get(ledgerId)]) if (cid) kept.add(cid);
    for (const p of this.#o.pointers) if (p !== history) kept.add((await p.latest(ledgerId).catch(() => null))?.cid ?? '');
    const named = new Set<string>();
    for (const cid of kept) {
      if (!cid || pruned.has(cid)) continue;
      const m = await this.manifest(cid).catch((err: unknown) => {
        if (err instanceof NotFoundError) return null;
        throw err;
      });
      named.add(cid);
      for (const p of m?.packs ?? []) named.add(p.cid);
    }
    let blocks = 0;
    let bytes = 0;
    const unpin = async (cid: string, size: number) => {
      if (named.has(cid)) return;
      named.add(cid);
      await this.#o.provider.delete(cid);
      this.#packs.delete(cid);
      this.#manifests.delete(cid);
      blocks++;
      bytes += size;
    };
    for (const cid of pruned) {
      // A manifest already gone, or unreadable, names packs we cannot know: those stay pinned.
      const file = await this.#o.provider.get(cid).catch((err: unknown) => {
        if (err instanceof NotFoundError || err instanceof IntegrityError) return null;
        throw err;
      });
      let packs: PackRef[] = [];
      try {
        if (file) packs = decodeManifestFile(this.#o.sealer, cid, file).packs;
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err;
      }
      for (const p of packs) await unpin(p.cid, p.bytes);
      await unpin(cid, file?.length ?? 0);
    }
    for (const [id, l] of this.#latest) if (pruned.has(l.cid)) this.#latest.delete(id);
    await history.forget([...pruned]);
    return { blocks, bytes };
  }

  async *readChain(record: BackupRecord): AsyncGenerator<StoredBlock> {
    for await (const page of this.readChainPages(record)) yield* page;
  }

  async *readChainPages(record: BackupRecord): AsyncGenerator<StoredBlock[]> {
    const m = await this.manifest(record.id);
    for (const ref of m.packs) yield await this.#pack(m.ledgerId, ref);
  }

  async close(): Promise<void> {
    for (const p of this.#o.pointers) await p.close?.();
    await this.#o.provider.close();
  }
}
