import { CID } from 'multiformats/cid';
import type { SealedCheckpoint } from '../../crypto/checkpoints.js';
import type { ChainPage, SealedPack } from '../../crypto/packs.js';
import { sealRecord, type BackupRecord, type NewBackup } from '../../crypto/records.js';
import type { Sealer } from '../../crypto/seal.js';
import type { StoredBlock } from '../../crypto/stored-block.js';
import { IntegrityError, NotFoundError, ValidationError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { ObjectStore } from '../../objects/object-store.js';
import type { BackupTier, Diagnosis, KeyCounts, ResealStep, StoredCheckpoint } from '../tier.js';
import type { Catalog } from './catalog.js';
import {
  clip,
  KEEP_CHECKPOINTS,
  spanAt,
  type CheckpointRef,
  type Manifest,
  type RecordFields,
  type Span,
} from './manifest.js';
import { ManifestStore } from './manifests.js';
import { collectPackGarbage } from './pack-gc.js';
import { walkBack } from './history.js';
import { Rotation } from './reseal.js';
import { PackObjects } from './pack-objects.js';
import { Uploads } from './uploads.js';

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

function toRecord(id: string, m: RecordFields, tier: string): BackupRecord {
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
    ...(m.root !== undefined ? { root: m.root } : {}),
    protected: false,
    seal: Buffer.from(m.recordSeal, 'base64'),
  };
}

/**
 * PackTier keeps a ledger in an object store as packs named by a sealed manifest (manifest.ts); a backup is a
 * manifest, and its id is the manifest's id in the store (a CID on IPFS, a key in a folder or a bucket). The ledger's
 * packs (putPack) are stored once each, as they are; blocks not packed yet go in packs this tier seals (an append
 * stores one, merging small tail packs like a binary counter). Every manifest reuses every object and pack list it
 * can from the one before, so a backup uploads what is new, and names the newest checkpoints on its chain.
 * Everything fetched is checked by the store (against its CID, or the SHA-256 the manifest records), then against
 * its seal. Retention marks records in the catalog; collectGarbage frees what only they named (pack-gc.ts).
 */
export class PackTier implements BackupTier {
  readonly name: string;
  readonly label: string;
  readonly #o: PackTierOptions;
  readonly #cap: number;
  readonly #latest = new Map<string, Latest>();
  readonly #manifests: ManifestStore;
  readonly #objects: PackObjects;
  // The newest manifest this process wrote per ledger, head or not: a new manifest's `previous`, so walking back
  // from the head lists named backups of older points too.
  readonly #newest = new Map<string, string>();
  // The time of the last manifest this process made: manifest keys must sort in the order they were made.
  #lastMs = 0;
  // Key rotation's memory (reseal.ts): the key ids each immutable object holds, and manifests it replaced.
  readonly #keyIds = new Map<string, KeyCounts>();
  readonly #resealed = new Map<string, string>();

  constructor(options: PackTierOptions) {
    this.#o = options;
    this.name = options.name;
    this.label = options.label;
    this.#cap = options.packCapBytes ?? 16 * 1024 * 1024;
    this.#manifests = new ManifestStore(options.store, options.sealer);
    this.#objects = new PackObjects(options.store, options.sealer);
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
    this.#checkId(id);
    return this.#manifests.read(id);
  }

  #checkId(id: string): void {
    if (this.#o.store.contentAddressed) {
      try {
        CID.parse(id);
      } catch {
        throw new NotFoundError(`${JSON.stringify(id)} is not a CID`, {
          hint: `A backup id on ${this.label} looks like bafy…; list them with \`pawledger backups list --tier ${this.name}\``,
        });
      }
    }
  }

  /**
   * getRecord is the backup record a manifest holds, without asking the catalog (protected reads false), and without
   * fetching its pack lists: listing a thousand backups reads a thousand small manifests, nothing more.
   */
  async getRecord(id: string): Promise<BackupRecord> {
    this.#checkId(id);
    return this.#record(id, await this.#manifests.record(id));
  }

  #record(id: string, m: RecordFields): BackupRecord {
    return toRecord(id, m, this.name);
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

  // The hash of block `height` on a manifest's chain, or null past it.
  async #hashIn(m: Manifest, height: number): Promise<string | null> {
    const span = height >= 0 && height <= m.height ? spanAt(m.spans, height) : undefined;
    return span ? this.#objects.hashAt(m.ledgerId, span, height) : null;
  }

  async hashAt(record: BackupRecord, height: number): Promise<string | null> {
    if (height < 0 || height > record.height) return null;
    return this.#hashIn(await this.manifest(record.id), height);
  }

  async hasBlock(ledgerId: string, height: number, hash: string): Promise<boolean> {
    const latest = await this.latest(ledgerId);
    return latest !== null && (await this.#hashIn(latest.manifest, height)) === hash;
  }

  /** hasPack tells whether the newest manifest names the ledger's pack that ends at block `to` with `hash`. */
  async hasPack(ledgerId: string, to: number, hash: string): Promise<boolean> {
    const latest = await this.latest(ledgerId);
    return !!latest?.manifest.spans.some((s) => s.ref.form === 'pack' && s.ref.to === to && s.ref.lastHash === hash);
  }

  // Refuses (NotFoundError) unless the newest manifest holds block `height` with `hash`, which new blocks follow.
  async #mustHold(latest: Latest | null, height: number, hash: string | null, what: string): Promise<void> {
    if (height < 0) return;
    if (latest && hash !== null && (await this.#hashIn(latest.manifest, height)) === hash) return;
    throw new NotFoundError(
      `${this.label} lacks block ${height} that ${what} follows (its newest manifest ends at block ${latest?.manifest.height ?? 'none'})`,
    );
  }

  async append(
    ledgerId: string,
    parentHash: string | null,
    all: readonly StoredBlock[],
    record?: NewBackup,
    root?: string,
  ): Promise<{ bytesWritten: number; record: BackupRecord }> {
    if (record && all.length > 0 && record.height !== all.at(-1)!.height) {
      // A record inside the new run: store the run (its own manifest), then a manifest for the record's prefix.
      const first = await this.append(ledgerId, parentHash, all);
      const second = await this.append(ledgerId, record.headHash, [], record);
      return { bytesWritten: first.bytesWritten + second.bytesWritten, record: second.record };
    }
    const latest = await this.latest(ledgerId);
    const parentHeight = all.length > 0 ? all[0]!.height - 1 : record ? record.height : -1;
    const parent = all.length > 0 ? parentHash : (record?.headHash ?? null);
    await this.#mustHold(latest, parentHeight, parent, 'the new blocks');
    // Every span up to the parent is reused as it is (a span cut at the parent where it falls inside one).
    const spans = parentHeight >= 0 ? clip(latest!.manifest.spans, 0, parentHeight, parent!) : [];
    const uploads = this.#uploads();
    await uploads.looseBlocks(ledgerId, spans, all);
    const last = spans.at(-1)!;
    const fields =
      record ??
      this.#autoRecord(
        ledgerId,
        last.to,
        last.hash,
        latest && all.length ? latest.manifest.sizeBytes + all.reduce((n, b) => n + b.sealed.length, 0) : 0,
        // The root at the run's end, when the caller has it (a catch-up's batch); else the newest manifest's, when
        // the run adds nothing to it.
        all.length > 0
          ? root
          : latest?.manifest.height === last.to && latest.manifest.headHash === last.hash
            ? latest.manifest.root
            : undefined,
      );
    if (fields.height !== last.to || fields.headHash !== last.hash) {
      throw new IntegrityError(`the backup names block ${fields.height}, but the blocks end at ${last.to}`);
    }
    const checkpoints = (latest?.manifest.checkpoints ?? []).filter((c) => c.height <= parentHeight);
    // A backup of an older point is history, and the chain's head stays the newest, unless it records a restore:
    // then that point is the chain's head now (a rollback), and the tier must come back to it.
    const head = all.length > 0 || !latest || fields.height >= latest.manifest.height || fields.kind === 'restore';
    return this.#commit(fields, spans, checkpoints, latest, head, uploads.bytes);
  }

  /**
   * putPack stores the ledger's pack as one object, as it is, and a manifest that names it in place of the spans it
   * covers: the newest manifest's chain with the pack in it (or, for blocks the tier lacked, extended by it; for a
   * pack that leaves that chain, the new branch up to the pack's end). The manifest is an auto backup of that head.
   */
  async putPack(
    ledgerId: string,
    parentHash: string | null,
    pack: SealedPack,
    packRoot?: string,
  ): Promise<{ bytesWritten: number }> {
    if (pack.from < 0 || pack.hashes.length !== pack.to - pack.from + 1 || pack.sealed.length === 0)
      throw new ValidationError(
        `a pack of blocks ${pack.from}-${pack.to} must name ${pack.to - pack.from + 1} hashes`,
        'pack',
      );
    const latest = await this.latest(ledgerId);
    await this.#mustHold(latest, pack.from - 1, parentHash, `the pack of blocks ${pack.from}-${pack.to}`);
    const lastHash = pack.hashes.at(-1)!;
    const l = latest?.manifest;
    if (l?.spans.some((s) => s.ref.form === 'pack' && s.ref.to === pack.to && s.ref.lastHash === lastHash))
      return { bytesWritten: 0 };
    const onChain = async (h: number) => (await this.#hashIn(l!, h)) === pack.hashes[h - pack.from];
    const keepsTail = !!l && l.height > pack.to && (await onChain(pack.to));
    const uploads = this.#uploads();
    const span = await uploads.ledgerPack(ledgerId, pack);
    const below = l ? clip(l.spans, 0, pack.from - 1, parentHash ?? '') : [];
    const spans = keepsTail ? [...below, span, ...clip(l.spans, pack.to + 1, l.height, l.headHash)] : [...below, span];
    const height = keepsTail ? l.height : pack.to;
    const headHash = keepsTail ? l.headHash : lastHash;
    // The checkpoints still on the new chain: below the pack, inside it where its hash agrees, above it if kept.
    const checkpoints = (l?.checkpoints ?? []).filter((c) =>
      c.height < pack.from ? true : c.height <= pack.to ? pack.hashes[c.height - pack.from] === c.hash : keepsTail,
    );
    const size = l && height === l.height ? l.sizeBytes : (l?.sizeBytes ?? 0) + pack.sealed.length;
    // The root at the head it names: the newest manifest's when that is the same head (a pack of settled blocks),
    // else the chain root at the pack's end the replicator passes (the pack ends the tier's chain).
    const root =
      l && height === l.height && headHash === l.headHash ? l.root : height === pack.to ? packRoot : undefined;
    const fields = this.#autoRecord(ledgerId, height, headHash, size, root);
    const { bytesWritten } = await this.#commit(fields, spans, checkpoints, latest, true, uploads.bytes);
    return { bytesWritten };
  }

  /**
   * putCheckpoint stores the checkpoint's parts, one object each, and a manifest of the newest chain naming it beside
   * the newest checkpoint before it (KEEP_CHECKPOINTS); older ones stay named by older manifests only.
   */
  async putCheckpoint(ledgerId: string, cp: SealedCheckpoint): Promise<{ bytesWritten: number }> {
    const latest = await this.latest(ledgerId);
    // Usually the newest chain; else a branch a recent backup holds (the checkpoint's manifest is then history).
    let holder = latest;
    if (!latest || (await this.#hashIn(latest.manifest, cp.height)) !== cp.hash) {
      holder = null;
      for (const r of await this.listBackups(ledgerId, { limit: 20 })) {
        const m = await this.manifest(r.id);
        if ((await this.#hashIn(m, cp.height)) === cp.hash) {
          holder = { id: r.id, manifest: m };
          break;
        }
      }
    }
    if (!holder) await this.#mustHold(latest, cp.height, null, 'the checkpoint');
    const l = holder!.manifest;
    if (l.checkpoints.some((c) => c.height === cp.height && c.hash === cp.hash)) return { bytesWritten: 0 };
    const uploads = this.#uploads();
    const ref = await uploads.checkpoint(ledgerId, cp);
    const checkpoints = [ref, ...l.checkpoints].sort((a, b) => b.height - a.height).slice(0, KEEP_CHECKPOINTS);
    const fields = this.#autoRecord(ledgerId, l.height, l.headHash, l.sizeBytes, l.root);
    const head = holder === latest;
    const { bytesWritten } = await this.#commit(fields, l.spans, checkpoints, holder, head, uploads.bytes);
    return { bytesWritten };
  }

  /**
   * checkpointFor is the newest checkpoint on the record's chain: among those its manifest names and those the
   * newest manifest names (a checkpoint stored after the record), the newest whose block is on the record's chain.
   */
  async checkpointFor(record: BackupRecord): Promise<StoredCheckpoint | null> {
    const m = await this.manifest(record.id);
    const latest = await this.latest(record.ledgerId).catch(() => null);
    const candidates = [...m.checkpoints, ...(latest && latest.id !== record.id ? latest.manifest.checkpoints : [])];
    candidates.sort((a, b) => b.height - a.height);
    for (const c of candidates) {
      if (c.height > record.height || (await this.#hashIn(m, c.height)) !== c.hash) continue;
      const store = this.#o.store;
      return {
        height: c.height,
        hash: c.hash,
        async *parts() {
          for (const p of c.parts) yield await store.get(p.cid, { sha256: p.sha256 });
        },
      };
    }
    return null;
  }

  #uploads(): Uploads {
    return new Uploads(this.#o.store, this.#o.sealer, this.#objects, this.#cap);
  }

  #autoRecord(ledgerId: string, height: number, headHash: string, sizeBytes: number, root?: string): NewBackup {
    return sealRecord(this.#o.sealer, {
      ledgerId,
      name: `Auto-backup ${new Date().toISOString().slice(0, 19).replace('T', ' ')}`,
      kind: 'auto',
      createdAt: new Date(),
      createdBy: null,
      height,
      headHash,
      sizeBytes,
      root,
    });
  }

  // Writes the manifest of a new backup, then makes it known (the newest of its ledger, in the catalog).
  async #commit(
    fields: NewBackup,
    spans: Span[],
    checkpoints: CheckpointRef[],
    latest: Latest | null,
    head: boolean,
    uploaded: number,
  ): Promise<{ bytesWritten: number; record: BackupRecord }> {
    const { ledgerId } = fields;
    const record: RecordFields = {
      ledgerId,
      name: fields.name,
      kind: fields.kind,
      recordSeal: fields.seal.toString('base64'),
      createdAt: fields.createdAt.toISOString(),
      createdBy: fields.createdBy,
      height: fields.height,
      headHash: fields.headHash,
      sizeBytes: fields.sizeBytes,
      previous: this.#newest.get(ledgerId) ?? latest?.id ?? null,
      ...(fields.root !== undefined ? { root: fields.root } : {}),
    };
    this.#lastMs = Math.max(Date.now(), this.#lastMs + 1);
    const written = await this.#manifests.write(record, spans, checkpoints, latest?.manifest ?? null, {
      ms: this.#lastMs,
      head,
    });
    this.#newest.set(ledgerId, written.id);
    if (head) this.#latest.set(ledgerId, { id: written.id, manifest: written.manifest });
    const result = this.#record(written.id, written.manifest);
    await this.#o.catalog.add(result, head);
    return { bytesWritten: uploaded + written.bytes, record: result };
  }

  async putBackup(record: NewBackup): Promise<BackupRecord> {
    return (await this.append(record.ledgerId, record.headHash, [], record)).record;
  }

  async listBackups(ledgerId?: string, options: { limit?: number } = {}): Promise<BackupRecord[]> {
    const limit = options.limit ?? 100;
    const walk = (from: string | null, stop: (id: string) => boolean, max: number, lenient: boolean) =>
      walkBack(from, stop, max, lenient, async (id) => {
        this.#checkId(id);
        const m = await this.#manifests.record(id);
        return { ...this.#record(id, m), previous: m.previous };
      });
    const listed = await this.#o.catalog.list(ledgerId, limit);
    if (listed) {
      const newest = await this.latest(ledgerId).catch(() => null);
      if (!newest || listed.some((r) => r.id === newest.id)) return listed;
      // The catalog lacks the newest backups (written while it was unreachable): put them back (oldest first).
      const known = new Set(listed.map((r) => r.id));
      const missing = await walk(newest.id, (id) => known.has(id), limit, true);
      this.#o.log.warn(
        { tier: this.name, missing: missing.length, catalog: this.#o.catalog.name },
        `${this.label}: the list in ${this.#o.catalog.name} lacked the ${missing.length} newest backup(s) (written while it was unreachable); added them back`,
      );
      for (const r of [...missing].reverse()) await this.#o.catalog.add(r, true);
      return [...missing, ...listed].slice(0, limit);
    }
    // Without a history, walk the manifests back from the newest.
    const newest = await this.latest(ledgerId);
    const from = (newest && this.#newest.get(newest.manifest.ledgerId)) ?? newest?.id ?? null;
    return walk(from, () => false, limit, false);
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

  /** collectGarbage frees what only pruned backups named (pack-gc.ts), then their manifests. */
  async collectGarbage(ledgerId: string): Promise<{ blocks: number; bytes: number }> {
    const freed = await collectPackGarbage(ledgerId, {
      store: this.#o.store,
      catalog: this.#o.catalog,
      manifests: this.#manifests,
      alsoKept: [this.#latest.get(ledgerId)?.id, this.#newest.get(ledgerId)],
      dropped: (id) => this.#objects.forget(id),
    });
    const pruned = new Set(await this.#o.catalog.pruned(ledgerId));
    for (const [l, latest] of this.#latest) if (pruned.has(latest.id)) this.#latest.delete(l);
    return freed;
  }

  /**
   * keyCounts counts the sealed objects the ledger's live backups reach, by key id (reseal.ts): every manifest (its
   * seal and its record's), every pack (a tier's pack of sealed blocks counts its own seal and each block's) and
   * every checkpoint part, once each however many backups share it; pack lists are not sealed. Unlike the contract's
   * "headers alone", it opens what holds sealed objects inside a seal (a manifest's record seal, the blocks in the
   * tier's own packs): the keyring must open them (a manifest under an unknown key throws IntegrityError naming it).
   */
  keyCounts(ledgerId: string): Promise<KeyCounts> {
    return this.#rotation(ledgerId, this.#o.sealer).keyCounts();
  }

  /**
   * reseal is one step of a key rotation (reseal.ts, Rotation): backup by backup, oldest first, it writes the packs,
   * checkpoint parts and manifest anew under the active key, moves the catalog and pointers to the new manifest (a
   * new id on IPFS; name, kind, height, head, creation time and protection kept), then frees the old objects no
   * remaining backup names. `limit` counts stored objects rewritten, a manifest counting one, and `remaining` the
   * same units left (see Rotation.step). The tier's own sealer must hold the same keyring as `sealer`: it reads the
   * new manifests after the step.
   */
  reseal(ledgerId: string, sealer: Sealer, limit: number): Promise<ResealStep> {
    return this.#rotation(ledgerId, sealer).step(limit);
  }

  #rotation(ledgerId: string, sealer: Sealer): Rotation {
    return new Rotation(
      {
        store: this.#o.store,
        catalog: this.#o.catalog,
        keys: this.#keyIds,
        resealed: this.#resealed,
        latestId: async (l) => this.#latest.get(l)?.id ?? (await this.#o.catalog.latest(l)),
        record: (id, m) => this.#record(id, m),
        replaced: (l, oldId, newId, manifest, head) => {
          if (this.#newest.get(l) === oldId) this.#newest.set(l, newId);
          if (head || this.#latest.get(l)?.id === oldId) this.#latest.set(l, { id: newId, manifest });
        },
        alsoKept: (l) => [this.#latest.get(l)?.id, this.#newest.get(l)],
        dropped: (id) => {
          this.#objects.forget(id);
          this.#manifests.forget(id);
        },
      },
      ledgerId,
      sealer,
    );
  }

  /**
   * readChainPages yields the record's chain from its manifest's spans: the ledger's packs as pack pages (cut to
   * `start` and to the record's head), the tier's own packs as blocks. Where the newest manifest holds the record's
   * head on its chain (a backup from before compaction), its spans are read instead: the same blocks, in packs.
   */
  async *readChainPages(record: BackupRecord, start = 0): AsyncGenerator<ChainPage> {
    const m = await this.manifest(record.id);
    let spans = m.spans;
    const latest = await this.latest(record.ledgerId).catch(() => null);
    const n = latest?.manifest;
    if (
      n &&
      latest.id !== record.id &&
      n.height >= record.height &&
      n.spans.some((s) => s.ref.form === 'pack' && s.from <= record.height) &&
      (await this.#hashIn(n, record.height).catch(() => null)) === record.headHash
    )
      spans = n.spans;
    yield* this.#objects.pages(m.ledgerId, clip(spans, 0, record.height, record.headHash), start);
  }

  async close(): Promise<void> {
    await this.#o.catalog.close();
    await this.#o.store.close();
  }
}
