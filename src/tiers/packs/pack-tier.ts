import { CID } from 'multiformats/cid';
import { sealRecord, type BackupRecord, type NewBackup } from '../../crypto/records.js';
import type { Sealer } from '../../crypto/seal.js';
import type { ChainPage } from '../../crypto/packs.js';
import type { StoredBlock } from '../../crypto/stored-block.js';
import { IntegrityError, NotFoundError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { ObjectStore } from '../../objects/object-store.js';
import type { BackupTier, Diagnosis } from '../tier.js';
import type { Catalog } from './catalog.js';
import {
  decodeManifestFile,
  encodeManifestFile,
  manifestKey,
  openPack,
  packKey,
  planMerge,
  sealManifest,
  sealPack,
  type Manifest,
  type PackRef,
} from './format.js';

/** PackTierOptions configure a pack tier. */
export interface PackTierOptions {
  /** name is the tier's name in configuration, status and logs ('ipfs', 'dir'). */
  name: string;
  /** label describes where the tier keeps data, secrets redacted. */
  label: string;
  store: ObjectStore;
  /** sealer seals packs and manifests (the blocks inside are sealed already). */
  sealer: Sealer;
  /** catalog lists the tier's backups (one per manifest): the database's pointers for IPFS, the store's listing else. */
  catalog: Catalog;
  log: Logger;
  /** packCapBytes bounds one pack (and so one merge). @default 16 MiB */
  packCapBytes?: number;
  /** init prepares what the tier leans on (the database its catalog lists in). */
  init?: () => Promise<void>;
}

interface Latest {
  id: string;
  manifest: Manifest;
}

function toRecord(id: string, m: Manifest, tier: string): BackupRecord {
  return {
    id,
    tier,
    ledgerId: m.ledgerId,
    name: m.name,
    kind: m.kind,
    createdAt: new Date(m.createdAt),
    createdBy: m.createdBy,
    height: m.height,
    headHash: m.headHash,
    sizeBytes: m.sizeBytes,
    protected: false,
    seal: Buffer.from(m.recordSeal, 'base64'),
  };
}

/**
 * PackTier keeps a ledger in an object store as sealed packs of blocks named by a sealed manifest; a backup is a
 * manifest, and its id is the manifest's id in the store (a CID on IPFS, a key in a folder or a bucket). An append
 * stores one new pack (merging small tail packs, like a binary counter, so a manifest names O(log n) packs) and a new
 * manifest that reuses every older pack, and every manifest becomes its ledger's newest backup in the catalog.
 * Everything fetched is checked by the store (against its CID, or the SHA-256 the manifest records), then against
 * its seal here. Retention marks records in the catalog; collectGarbage deletes the packs only they named, then
 * their manifests, then forgets them.
 */
export class PackTier implements BackupTier {
  readonly name: string;
  readonly label: string;
  readonly #o: PackTierOptions;
  readonly #cap: number;
  readonly #latest = new Map<string, Latest>();
  readonly #manifests = new Map<string, Manifest>();
  // Packs this process built or fetched recently: a merge needs the tail packs' blocks without fetching them again.
  readonly #packs = new Map<string, StoredBlock[]>();
  // The newest manifest this process wrote per ledger, head or not: a new manifest's `previous`, so walking back
  // from the head lists named backups of older points too.
  readonly #newest = new Map<string, string>();
  // The time of the last manifest this process made: manifest keys must sort in the order they were made.
  #lastMs = 0;

  constructor(options: PackTierOptions) {
    this.#o = options;
    this.name = options.name;
    this.label = options.label;
    this.#cap = options.packCapBytes ?? 16 * 1024 * 1024;
  }

  async init(): Promise<void> {
    await this.#o.init?.();
  }

  /** uncached is this tier over the same store and catalog with nothing remembered: every read goes to the store. */
  uncached(): BackupTier {
    return new PackTier(this.#o);
  }

  /** probe checks the store answers (credentials, node, folder or bucket), writing nothing. */
  probe(): Promise<void> {
    return this.#o.store.check();
  }

  /**
   * diagnose checks the store's configuration (credentials, node or folder) and, with `write`, stores, reads back and
   * deletes a tiny probe object: proof that it may write (a Pinata key without the pinning scope passes the check).
   */
  async diagnose(options: { write: boolean }): Promise<Diagnosis> {
    const { store } = this.#o;
    await store.check();
    let detail = `${store.label}: reachable, credentials accepted`;
    if (options.write) {
      const id = await store.put(Buffer.from(`pawledger doctor ${new Date().toISOString()}`), {
        key: `probes/doctor-${Date.now()}`,
        label: 'pawledger doctor probe',
        keyvalues: { kind: 'probe' },
      });
      await store.get(id);
      await store.delete(id);
      detail += `; stored, fetched and deleted a probe (${id})`;
    }
    const pointers = await this.#o.catalog.diagnose?.();
    if (pointers) detail += `; ${pointers}`;
    return {
      status: 'ok',
      detail,
      ...(options.write
        ? {}
        : { fix: 'Run `pawledger doctor --write` to prove the tier may write (it stores and deletes a tiny object)' }),
    };
  }

  /** manifest fetches, verifies and opens a manifest by id (a malformed CID is NotFoundError saying so). */
  async manifest(id: string): Promise<Manifest> {
    const cached = this.#manifests.get(id);
    if (cached) return cached;
    if (this.#o.store.contentAddressed) {
      try {
        CID.parse(id);
      } catch {
        throw new NotFoundError(`${JSON.stringify(id)} is not a CID`, {
          hint: `A backup id on ${this.label} looks like bafy…; list them with \`pawledger backups list --tier ${this.name}\``,
        });
      }
    }
    const m = decodeManifestFile(this.#o.sealer, id, await this.#o.store.get(id));
    this.#manifests.set(id, m);
    return m;
  }

  /** getRecord is the backup record a manifest holds, without asking the catalog (protected reads false). */
  async getRecord(id: string): Promise<BackupRecord> {
    return this.#record(id, await this.manifest(id));
  }

  #record(id: string, m: Manifest): BackupRecord {
    return toRecord(id, m, this.name);
  }

  async #pack(ledgerId: string, ref: PackRef): Promise<StoredBlock[]> {
    const cached = this.#packs.get(ref.cid);
    if (cached) return cached;
    const blocks = openPack(this.#o.sealer, ledgerId, ref, await this.#o.store.get(ref.cid, { sha256: ref.sha256 }));
    this.#remember(ref.cid, blocks);
    return blocks;
  }

  #remember(cid: string, blocks: StoredBlock[]): void {
    this.#packs.set(cid, blocks);
    if (this.#packs.size > 32) this.#packs.delete(this.#packs.keys().next().value!);
  }

  /** latest is the newest manifest of a ledger (of any ledger if none given) the catalog knows of, or null. */
  async latest(ledgerId?: string): Promise<Latest | null> {
    const known = ledgerId ? this.#latest.get(ledgerId) : undefined;
    if (known) return known;
    const id = await this.#o.catalog.latest(ledgerId);
    if (!id) return null;
    const found = { id, manifest: await this.manifest(id) };
    this.#latest.set(found.manifest.ledgerId, found);
    return found;
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
    return latest !== null && (await this.hashAt(this.#record(latest.id, latest.manifest), height)) === hash;
  }

  async append(
    ledgerId: string,
    parentHash: string | null,
    all: readonly StoredBlock[],
    record?: NewBackup,
  ): Promise<{ bytesWritten: number; record: BackupRecord }> {
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
      const head = latest ? this.#record(latest.id, latest.manifest) : null;
      if (!head || (await this.hashAt(head, parentHeight)) !== (all.length > 0 ? parentHash : record!.headHash)) {
        throw new NotFoundError(
          `${this.label} lacks block ${parentHeight} that the new blocks follow (its newest manifest ends at block ${head?.height ?? 'none'})`,
        );
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
      const id = await this.#o.store.put(sealed, {
        key: packKey(ledgerId, ref),
        label: `pawledger pack ${ledgerId.slice(0, 12)} ${ref.from}-${ref.to}`,
        keyvalues: { ledger: ledgerId.slice(0, 16), kind: 'pack', from: String(ref.from), to: String(ref.to) },
      });
      bytesWritten += sealed.length;
      this.#remember(id, blocks);
      return { cid: id, ...ref };
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
    const fields =
      record ??
      sealRecord(this.#o.sealer, {
        ledgerId,
        name: `Auto-backup ${new Date().toISOString().slice(0, 19).replace('T', ' ')}`,
        kind: 'auto',
        createdAt: new Date(),
        createdBy: null,
        height: last.to,
        headHash: last.lastHash,
        sizeBytes: latest && all.length ? latest.manifest.sizeBytes + all.reduce((n, b) => n + b.sealed.length, 0) : 0,
      });
    if (fields.height !== last.to || fields.headHash !== last.lastHash) {
      throw new IntegrityError(`the backup names block ${fields.height}, but the blocks end at ${last.to}`);
    }
    const manifest: Manifest = {
      version: 1,
      ledgerId,
      name: fields.name,
      kind: fields.kind,
      recordSeal: fields.seal.toString('base64'),
      createdAt: fields.createdAt.toISOString(),
      createdBy: fields.createdBy,
      height: fields.height,
      headHash: fields.headHash,
      sizeBytes: fields.sizeBytes,
      packs,
      previous: this.#newest.get(ledgerId) ?? latest?.id ?? null,
    };
    const file = encodeManifestFile(manifest, sealManifest(this.#o.sealer, manifest));
    // A backup of an older point is history, and the chain's head stays the newest, unless it records a restore:
    // then that point is the chain's head now (a rollback), and the tier must come back to it.
    const head = all.length > 0 || !latest || manifest.height >= latest.manifest.height || fields.kind === 'restore';
    this.#lastMs = Math.max(Date.now(), this.#lastMs + 1);
    const id = await this.#o.store.put(file, {
      key: manifestKey(manifest, file, this.#lastMs, head),
      label: `pawledger manifest ${ledgerId.slice(0, 12)} @${manifest.height}`,
      keyvalues: {
        ledger: ledgerId.slice(0, 16),
        kind: 'manifest',
        height: String(manifest.height),
        head: manifest.headHash.slice(0, 16),
      },
    });
    bytesWritten += file.length;
    this.#manifests.set(id, manifest);
    this.#newest.set(ledgerId, id);
    if (head) this.#latest.set(ledgerId, { id, manifest });
    const result = this.#record(id, manifest);
    await this.#o.catalog.add(result, head);
    return { bytesWritten, record: result };
  }

  async putBackup(record: NewBackup): Promise<BackupRecord> {
    return (await this.append(record.ledgerId, record.headHash, [], record)).record;
  }

  async listBackups(ledgerId?: string, options: { limit?: number } = {}): Promise<BackupRecord[]> {
    const limit = options.limit ?? 100;
    const listed = await this.#o.catalog.list(ledgerId, limit);
    if (listed) return this.#heal(ledgerId, listed, limit);
    // Without a history, walk the manifests back from the newest.
    const out: BackupRecord[] = [];
    const head = await this.latest(ledgerId);
    let id = (head && this.#newest.get(head.manifest.ledgerId)) ?? head?.id ?? null;
    while (id && out.length < limit) {
      // Retention deletes old manifests: the walk ends at the first one that is gone.
      const m = await this.manifest(id).catch((err: unknown) => {
        if (err instanceof NotFoundError && out.length > 0) return null;
        throw err;
      });
      if (!m) break;
      out.push(this.#record(id, m));
      id = m.previous;
    }
    return out;
  }

  /**
   * heal puts back in the catalog's list the manifests it lacks above its newest: an upload that landed while the
   * database (IPFS's list) was down is named by the other pointers but missing there, and a list that stops short of
   * the newest backup would offer a restore less than the tier holds. It walks back from the newest manifest through
   * `previous` until it meets one the list has, adds those it passed (oldest first), and answers the whole list.
   */
  async #heal(ledgerId: string | undefined, listed: BackupRecord[], limit: number): Promise<BackupRecord[]> {
    const head = await this.latest(ledgerId).catch(() => null);
    if (!head || listed.some((r) => r.id === head.id)) return listed;
    const known = new Set(listed.map((r) => r.id));
    const missing: BackupRecord[] = [];
    for (let id: string | null = head.id; id && !known.has(id) && missing.length < limit; ) {
      const m: Manifest | null = await this.manifest(id).catch(() => null);
      if (!m) break;
      missing.push(this.#record(id, m));
      id = m.previous;
    }
    this.#o.log.warn(
      { tier: this.name, missing: missing.length, catalog: this.#o.catalog.name },
      `${this.label}: the list in ${this.#o.catalog.name} lacked the ${missing.length} newest backup(s) (written while it was unreachable); added them back`,
    );
    for (const r of [...missing].reverse()) await this.#o.catalog.add(r, true);
    return [...missing, ...listed].slice(0, limit);
  }

  async getBackup(id: string): Promise<BackupRecord> {
    const record = this.#record(id, await this.manifest(id));
    // The protected flag lives in the catalog, not in the (immutable) manifest.
    return { ...record, protected: await this.#o.catalog.isProtected(id) };
  }

  async deleteBackups(ids: readonly string[]): Promise<number> {
    const deleted = await this.#o.catalog.markPruned(ids);
    for (const [ledgerId, l] of this.#latest) if (ids.includes(l.id)) this.#latest.delete(ledgerId);
    return deleted;
  }

  async setProtected(id: string, on: boolean): Promise<void> {
    if (!(await this.#o.catalog.setProtected(id, on))) {
      throw new NotFoundError(`there is no backup ${JSON.stringify(id)} on ${this.label}`, {
        hint: `List them with \`pawledger backups list --tier ${this.name}\``,
      });
    }
  }

  /**
   * collectGarbage deletes, for each backup deleteBackups marked, the packs no remaining manifest names, then its
   * manifest, then forgets it. Remaining manifests are the live backups and the ones the catalog must keep (the
   * newest each pointer names); if one cannot be read (other than already gone) nothing is deleted.
   */
  async collectGarbage(ledgerId: string): Promise<{ blocks: number; bytes: number }> {
    const catalog = this.#o.catalog;
    const pruned = new Set(await catalog.pruned(ledgerId));
    if (pruned.size === 0) return { blocks: 0, bytes: 0 };
    const kept = new Set(((await catalog.list(ledgerId, 1_000_000)) ?? []).map((r) => r.id));
    for (const id of [this.#latest.get(ledgerId)?.id, this.#newest.get(ledgerId), ...(await catalog.anchors(ledgerId))])
      if (id) kept.add(id);
    const named = new Set<string>();
    for (const id of kept) {
      if (pruned.has(id)) continue;
      const m = await this.manifest(id).catch((err: unknown) => {
        if (err instanceof NotFoundError) return null;
        throw err;
      });
      named.add(id);
      for (const p of m?.packs ?? []) named.add(p.cid);
    }
    let blocks = 0;
    let bytes = 0;
    const remove = async (id: string, size: number) => {
      if (named.has(id)) return;
      named.add(id);
      await this.#o.store.delete(id);
      this.#packs.delete(id);
      this.#manifests.delete(id);
      blocks++;
      bytes += size;
    };
    for (const id of pruned) {
      // A manifest already gone, or unreadable, names packs we cannot know: those stay.
      const file = await this.#o.store.get(id).catch((err: unknown) => {
        if (err instanceof NotFoundError || err instanceof IntegrityError) return null;
        throw err;
      });
      let packs: PackRef[] = [];
      try {
        if (file) packs = decodeManifestFile(this.#o.sealer, id, file).packs;
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err;
      }
      for (const p of packs) await remove(p.cid, p.bytes);
      await remove(id, file?.length ?? 0);
    }
    for (const [l, latest] of this.#latest) if (pruned.has(latest.id)) this.#latest.delete(l);
    await catalog.forget([...pruned]);
    return { blocks, bytes };
  }

  async *readChainPages(record: BackupRecord, start = 0): AsyncGenerator<ChainPage> {
    const m = await this.manifest(record.id);
    for (const ref of m.packs) {
      if (ref.to < start) continue;
      const blocks = await this.#pack(m.ledgerId, ref);
      yield { blocks: ref.from >= start ? blocks : blocks.slice(start - ref.from) };
    }
  }

  async close(): Promise<void> {
    await this.#o.catalog.close();
    await this.#o.store.close();
  }
}
