import { decodePack, encodePack } from '../../crypto/packs.js';
import type { BackupRecord, NewBackup } from '../../crypto/records.js';
import { keyIdOf, resealBlock, resealCheckpoint, resealPack, resealRecord } from '../../crypto/reseal.js';
import type { Sealer } from '../../crypto/seal.js';
import { IntegrityError, NotFoundError, UnavailableError } from '../../errors.js';
import { sha256Hex } from '../../ledger/block.js';
import type { ObjectStore } from '../../objects/object-store.js';
import type { KeyCounts, ResealStep } from '../tier.js';
import type { Catalog } from './catalog.js';
import { objectKey, openPack, packKey, sealPack } from './format.js';
import type { CheckpointRef, Manifest, ObjectRef, RecordFields, Span } from './manifest.js';
import { ManifestStore } from './manifests.js';
import { collectPackGarbage, freeManifests } from './pack-gc.js';

/** RESEAL_LINEAGE bounds the ids a re-sealed manifest names as those it replaces (RecordFields.resealedFrom). */
export const RESEAL_LINEAGE = 64;
/** A checkpoint part is 8 bytes of index and flags (crypto/checkpoints.ts) in front of its sealed object. */
const PART_HEAD = 8;

/** RotationHost is what a key rotation needs from its pack tier. */
export interface RotationHost {
  store: ObjectStore;
  catalog: Catalog;
  /** keys remembers, per immutable object id, the key ids of the sealed objects it holds (headers only). */
  keys: Map<string, KeyCounts>;
  /**
   * resealed maps, in this process, a manifest to the one that replaced it, for a catalog that keeps no history (the
   * replacement is not reachable from the pointers until the chain's head is re-sealed too).
   */
  resealed: Map<string, string>;
  /** latestId is the id of the ledger's newest head manifest, or null. */
  latestId(ledgerId: string): Promise<string | null>;
  /** record is a manifest's backup record as the tier lists it. */
  record(id: string, m: RecordFields): BackupRecord;
  /** replaced tells the tier that manifest `oldId` is replaced by `newId` (its caches of the newest move). */
  replaced(ledgerId: string, oldId: string, newId: string, manifest: Manifest, head: boolean): void;
  /** alsoKept are manifests the tier knows are live (collectGarbage's). */
  alsoKept(ledgerId: string): (string | undefined)[];
  /** dropped is told of every object deleted. */
  dropped(id: string): void;
}

interface Entry {
  id: string;
  m: Manifest;
  /** keys are the manifest's own seal's key and its record seal's. */
  keys: KeyCounts;
}

const add = (into: KeyCounts, from: KeyCounts) => {
  for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n;
};
const sameObject = (r: ObjectRef) => `${r.form}:${r.from}:${r.to}:${r.lastHash}`;
const sameCheckpoint = (c: CheckpointRef) => `${c.height}:${c.hash}`;

/**
 * Rotation is key rotation in a pack tier (BackupTier.keyCounts and reseal), one backup (manifest) at a time, oldest
 * first. For a manifest still holding something under another key it re-seals, as new objects, the packs (the
 * ledger's, and the tier's own packs of sealed blocks with every block in them), the checkpoint parts and the record,
 * reusing an object another manifest already had re-sealed (same blocks, or same checkpoint); then it writes the
 * manifest anew under the active key, naming them, with the same record fields (name, kind, height, head, creation
 * time, size, root), `previous` led to the re-sealed manifest before it, and `resealedFrom` naming the one it
 * replaces. Only then does it move the catalog (and so the pointers: the database, a file, Render's env var) to it,
 * carry the protected flag over, and retire the old manifest through the tier's garbage collection (pack-gc.ts),
 * which frees only what no remaining manifest names. Killed at any point, the old manifest or the new one names every
 * object its backup needs, and the next step retires an old manifest whose replacement is listed before doing more.
 *
 * Without a catalog history (pointers naming the newest head only, walked back by `previous`), re-sealed manifests
 * are reachable only once the head is re-sealed, so the old ones are freed then, from the `resealedFrom` of the
 * manifests reached; a process killed before that leaves its new objects unreachable and the next one starts over.
 */
export class Rotation {
  readonly #manifests: ManifestStore;

  constructor(
    private readonly host: RotationHost,
    private readonly ledgerId: string,
    private readonly sealer: Sealer,
  ) {
    this.#manifests = new ManifestStore(host.store, sealer);
  }

  /** keyCounts counts the sealed objects the ledger's live backups reach, by key id (see BackupTier.keyCounts). */
  async keyCounts(): Promise<KeyCounts> {
    const { ids } = await this.#live();
    const out: KeyCounts = {};
    const seen = new Set<string>();
    for (const id of ids) {
      const e = await this.#entry(id);
      add(out, e.keys);
      for (const o of await this.#objects(e.m)) {
        if (seen.has(o.id)) continue;
        seen.add(o.id);
        add(out, o.keys);
      }
    }
    return out;
  }

  /**
   * step is one bounded step of the rotation (BackupTier.reseal). `limit` counts stored objects rewritten: a pack
   * (with the blocks in it), a checkpoint part, and a manifest (with its record and pack lists) count one each; an
   * object another backup already had re-sealed is reused and costs nothing. A step with a limit of 1 or more always
   * makes progress, so it may pass the limit by one (one object and the manifest naming it), and a checkpoint's parts
   * are re-sealed together (by the rest of one checkpoint's parts); below 1 it rewrites nothing.
   * `remaining` counts the same units still under another key: manifests and objects the live backups reach.
   */
  async step(limit: number): Promise<ResealStep> {
    // A limit below 1 rewrites nothing (it still finishes retiring what a killed step replaced, and counts).
    const budget = limit >= 1 ? Math.floor(limit) : 0;
    let resealed = 0;
    let history = true;
    const retiring = new Set<string>();
    for (;;) {
      const live = await this.#live();
      history = live.history;
      const resolve = this.#resolver(history);
      // Oldest first, each backup as its newest copy.
      const ids = [...new Set([...live.ids].reverse().map(resolve))];
      const entries: Entry[] = [];
      for (const id of ids) entries.push(await this.#entry(id));
      // Everything must open before anything is written: an unknown key stops the step here.
      const stale = new Map<string, boolean>();
      for (const e of entries) {
        this.#check(e.keys, `manifest ${e.id}`);
        stale.set(e.id, this.#stale(e.keys));
        for (const o of await this.#objects(e.m)) {
          this.#check(o.keys, o.where);
          if (this.#stale(o.keys)) stale.set(e.id, true);
        }
      }
      if (history) {
        // A replacement written before a crash: retire the old manifest first.
        const liveIds = new Set(live.ids);
        const pending = entries.flatMap((e) =>
          (e.m.resealedFrom ?? []).filter((old) => liveIds.has(old) && old !== e.id).map((old) => [old, e.id]),
        );
        if (pending.length > 0) {
          for (const [old, fresh] of pending) {
            if (retiring.has(old!))
              throw new UnavailableError(
                `${this.host.catalog.name} still lists manifest ${old} after it was retired (re-sealed as ${fresh}); run the rotation again`,
              );
            retiring.add(old!);
            await this.#retire(old!, fresh!);
          }
          continue;
        }
      }
      // What is already under the active key, for manifests that share it.
      const objects = new Map<string, ObjectRef>();
      const checkpoints = new Map<string, CheckpointRef>();
      for (const e of entries) {
        for (const s of e.m.spans)
          if (!this.#stale(await this.#objectKeys(s.ref))) objects.set(sameObject(s.ref), s.ref);
        for (const c of e.m.checkpoints) {
          let fresh = true;
          for (const p of c.parts) if (this.#stale(await this.#partKeys(p))) fresh = false;
          if (fresh) checkpoints.set(sameCheckpoint(c), c);
        }
      }
      // The oldest backup with work left whose `previous` is done (so the new manifest links to its new copy).
      const lineage = this.#lineage(entries);
      const todo = entries.filter((e) => stale.get(e.id));
      const next =
        todo.find((e) => {
          const prev = e.m.previous ? (lineage.get(e.m.previous) ?? resolve(e.m.previous)) : null;
          return !prev || !stale.get(prev);
        }) ?? todo[0];
      if (!next || resealed >= budget) break;
      resealed += await this.#rewrite(next, Math.max(1, budget - resealed - 1), objects, checkpoints, lineage, history);
    }
    // What a killed step retired but did not finish freeing (the collection is idempotent).
    if (history) await this.#collect();
    else await this.#freeReplaced();
    return { resealed, remaining: await this.#remaining() };
  }

  // The live manifests of the ledger, newest first: the catalog's list, or a walk back from the newest head.
  async #live(): Promise<{ ids: string[]; history: boolean }> {
    const listed = await this.host.catalog.list(this.ledgerId, 1_000_000);
    const latest = await this.host.latestId(this.ledgerId);
    if (listed) {
      const ids = listed.map((r) => r.id);
      if (latest && !ids.includes(latest)) ids.unshift(latest);
      return { ids, history: true };
    }
    const ids: string[] = [];
    for (let id = latest; id && !ids.includes(id); ) {
      const fields = await this.#manifests.record(id).catch((err: unknown) => {
        if (err instanceof NotFoundError && ids.length > 0) return null;
        throw err;
      });
      if (!fields || fields.ledgerId !== this.ledgerId) break;
      ids.push(id);
      id = fields.previous;
    }
    return { ids, history: false };
  }

  // Leads a manifest id to its newest re-sealed copy made in this process (only without a catalog history).
  #resolver(history: boolean): (id: string) => string {
    const map = this.host.resealed;
    return (id) => {
      if (history) return id;
      for (let i = 0; map.has(id) && i < 1000; i++) id = map.get(id)!;
      return id;
    };
  }

  // Every id a live manifest replaced, mapped to it.
  #lineage(entries: readonly Entry[]): Map<string, string> {
    const out = new Map<string, string>();
    for (const e of entries) for (const old of e.m.resealedFrom ?? []) if (!out.has(old)) out.set(old, e.id);
    return out;
  }

  async #entry(id: string): Promise<Entry> {
    const m = await this.#manifests.read(id);
    let seal = this.host.keys.get(id);
    if (!seal) {
      seal = { [await this.#manifests.sealKeyId(id)]: 1 };
      this.host.keys.set(id, seal);
    }
    const keys: KeyCounts = { ...seal };
    add(keys, { [keyIdOf(Buffer.from(m.recordSeal, 'base64'))]: 1 });
    return { id, m, keys };
  }

  // The objects a manifest names (its spans' objects, its checkpoints' parts), once each, with their key ids.
  async #objects(m: Manifest): Promise<{ id: string; keys: KeyCounts; where: string }[]> {
    const out: { id: string; keys: KeyCounts; where: string }[] = [];
    const seen = new Set<string>();
    for (const s of m.spans) {
      if (seen.has(s.ref.cid)) continue;
      seen.add(s.ref.cid);
      out.push({ id: s.ref.cid, keys: await this.#objectKeys(s.ref), where: `pack ${s.ref.cid}` });
    }
    for (const c of m.checkpoints) {
      for (const p of c.parts) {
        if (seen.has(p.cid)) continue;
        seen.add(p.cid);
        out.push({ id: p.cid, keys: await this.#partKeys(p), where: `checkpoint part ${p.cid}` });
      }
    }
    return out;
  }

  // The key ids of a pack object: the ledger's pack's seal; the tier's pack's own seal and each block's in it.
  async #objectKeys(ref: ObjectRef): Promise<KeyCounts> {
    const known = this.host.keys.get(ref.cid);
    if (known) return known;
    const bytes = await this.host.store.get(ref.cid, { sha256: ref.sha256 });
    const keys: KeyCounts = {};
    let sure = true;
    if (ref.form === 'pack') add(keys, { [keyIdOf(decodePack(bytes, `pack ${ref.cid}`).sealed)]: 1 });
    else {
      const outer = keyIdOf(bytes);
      add(keys, { [outer]: 1 });
      // The blocks inside are sealed objects too, read once the pack opens (with a key the keyring lacks, later).
      if (this.sealer.keyIds.includes(outer))
        for (const b of openPack(this.sealer, this.ledgerId, { ...ref }, bytes)) add(keys, { [keyIdOf(b.sealed)]: 1 });
      else sure = false;
    }
    if (sure) this.host.keys.set(ref.cid, keys);
    return keys;
  }

  async #partKeys(part: { cid: string; sha256: string }): Promise<KeyCounts> {
    const known = this.host.keys.get(part.cid);
    if (known) return known;
    const bytes = await this.host.store.get(part.cid, { sha256: part.sha256 });
    const keys = { [keyIdOf(bytes.subarray(PART_HEAD))]: 1 };
    this.host.keys.set(part.cid, keys);
    return keys;
  }

  #stale(keys: KeyCounts): boolean {
    return Object.keys(keys).some((k) => k !== this.sealer.keyId);
  }

  // Refuses, before anything is written, an object under a key the keyring lacks.
  #check(keys: KeyCounts, where: string): void {
    for (const k of Object.keys(keys)) {
      if (this.sealer.keyIds.includes(k)) continue;
      throw new IntegrityError(
        `${where} was sealed with key ${k}, but the keyring holds ${this.sealer.keyIds.join(', ')}: it cannot be re-sealed`,
        {
          hint: `Add the key with id ${k} to LEDGER_PREVIOUS_KEYS and run the rotation again (pawledger doctor shows a key's id)`,
        },
      );
    }
  }

  // Re-seals one manifest (up to `room` of its objects) and replaces it; returns the objects written, itself included.
  async #rewrite(
    e: Entry,
    room: number,
    fresh: Map<string, ObjectRef>,
    freshCheckpoints: Map<string, CheckpointRef>,
    lineage: Map<string, string>,
    history: boolean,
  ): Promise<number> {
    const { store } = this.host;
    const { m } = e;
    // The record first: it must open before anything is written.
    const record = resealRecord(this.sealer, {
      ledgerId: m.ledgerId,
      name: m.name,
      kind: m.kind,
      createdAt: new Date(m.createdAt),
      createdBy: m.createdBy,
      height: m.height,
      headHash: m.headHash,
      sizeBytes: m.sizeBytes,
      ...(m.root !== undefined ? { root: m.root } : {}),
      seal: Buffer.from(m.recordSeal, 'base64'),
    } satisfies NewBackup);
    const written: string[] = [];
    try {
      let used = 0;
      const swap = new Map<string, ObjectRef>();
      for (const s of m.spans) {
        if (swap.has(s.ref.cid) || !this.#stale(await this.#objectKeys(s.ref))) continue;
        const same = fresh.get(sameObject(s.ref));
        if (same) swap.set(s.ref.cid, same);
        else if (used < room) {
          const ref = await this.#resealObject(s.ref);
          written.push(ref.cid);
          swap.set(s.ref.cid, ref);
          fresh.set(sameObject(ref), ref);
          used++;
        }
      }
      const checkpoints: CheckpointRef[] = [];
      for (const c of m.checkpoints) {
        const stale: boolean[] = [];
        for (const p of c.parts) stale.push(this.#stale(await this.#partKeys(p)));
        const count = stale.filter(Boolean).length;
        const same = freshCheckpoints.get(sameCheckpoint(c));
        if (count === 0) checkpoints.push(c);
        else if (same) checkpoints.push(same);
        else if (used > 0 && used + count > room) checkpoints.push(c);
        else {
          const parts: CheckpointRef['parts'] = [];
          for (const [index, p] of c.parts.entries()) {
            if (!stale[index]) {
              parts.push(p);
              continue;
            }
            const bytes = await store.get(p.cid, { sha256: p.sha256 });
            const again = resealCheckpoint(this.sealer, this.ledgerId, c, bytes, `checkpoint part ${p.cid}`);
            const sha256 = sha256Hex(again);
            const cid = await store.put(again, {
              key: objectKey(this.ledgerId, 'part', c.height, index, sha256),
              label: `pawledger checkpoint ${this.ledgerId.slice(0, 12)} @${c.height} part ${index}`,
              keyvalues: { ledger: this.ledgerId.slice(0, 16), kind: 'checkpoint', height: String(c.height) },
            });
            written.push(cid);
            this.host.keys.set(cid, { [this.sealer.keyId]: 1 });
            parts.push({ cid, sha256, bytes: again.length });
          }
          used += count;
          const ref = { height: c.height, hash: c.hash, parts };
          freshCheckpoints.set(sameCheckpoint(ref), ref);
          checkpoints.push(ref);
        }
      }
      const spans: Span[] = m.spans.map((s) => {
        const ref = swap.get(s.ref.cid);
        return ref ? { ...s, ref } : s;
      });
      const latest = await this.host.latestId(this.ledgerId);
      const head = latest === e.id;
      const fields: RecordFields = {
        ledgerId: m.ledgerId,
        name: m.name,
        kind: m.kind,
        recordSeal: record.seal.toString('base64'),
        createdAt: m.createdAt,
        createdBy: m.createdBy,
        height: m.height,
        headHash: m.headHash,
        sizeBytes: m.sizeBytes,
        previous: m.previous ? (lineage.get(m.previous) ?? this.#resolver(history)(m.previous)) : null,
        ...(m.root !== undefined ? { root: m.root } : {}),
        resealedFrom: [e.id, ...(m.resealedFrom ?? [])].slice(0, RESEAL_LINEAGE),
      };
      // A named store keeps the manifest's place in the order backups were made (its key's time) and its head mark.
      const named = /\/manifests\/(\d+)-\d+-[0-9a-f]+-([hp])\.manifest$/.exec(e.id);
      const ms = named ? Number(named[1]) : Date.parse(m.createdAt) || Date.now();
      const out = await this.#manifests.write(fields, spans, checkpoints, m, {
        ms,
        head: named ? named[2] === 'h' : head,
      });
      written.length = 0;
      this.host.keys.set(out.id, { [this.sealer.keyId]: 1 });
      await this.host.catalog.add(this.host.record(out.id, out.manifest), head);
      // Protected as soon as it is listed, so retention never takes the new copy of a protected backup.
      if (history && (await this.host.catalog.isProtected(e.id))) await this.host.catalog.setProtected(out.id, true);
      this.host.replaced(this.ledgerId, e.id, out.id, out.manifest, head);
      if (history) await this.#retire(e.id, out.id);
      else this.host.resealed.set(e.id, out.id);
      return used + 1;
    } catch (err) {
      // Nothing names what this manifest's rewrite stored before it failed: best effort, it goes.
      for (const id of written) await store.delete(id).catch(() => {});
      throw err;
    }
  }

  // Re-seals one pack object as a new object: the ledger's pack as it is, the tier's pack with its blocks.
  async #resealObject(ref: ObjectRef): Promise<ObjectRef> {
    const { store } = this.host;
    const { ledgerId, sealer } = this;
    const where = `pack ${ref.cid}`;
    const bytes = await store.get(ref.cid, { sha256: ref.sha256 });
    if (ref.form === 'pack') {
      const file = encodePack(resealPack(sealer, ledgerId, decodePack(bytes, where), where));
      const sha256 = sha256Hex(file);
      const cid = await store.put(file, {
        key: objectKey(ledgerId, 'pwpk', ref.from, ref.to, sha256),
        label: `pawledger ledger pack ${ledgerId.slice(0, 12)} ${ref.from}-${ref.to}`,
        keyvalues: { ledger: ledgerId.slice(0, 16), kind: 'ledger-pack', from: String(ref.from), to: String(ref.to) },
      });
      this.host.keys.set(cid, { [sealer.keyId]: 1 });
      return { ...ref, cid, sha256, bytes: file.length };
    }
    const blocks = openPack(sealer, ledgerId, { ...ref }, bytes).map((b) => resealBlock(sealer, ledgerId, b, where));
    const packed = sealPack(sealer, ledgerId, blocks);
    const cid = await store.put(packed.sealed, {
      key: packKey(ledgerId, packed.ref),
      label: `pawledger pack ${ledgerId.slice(0, 12)} ${ref.from}-${ref.to}`,
      keyvalues: { ledger: ledgerId.slice(0, 16), kind: 'pack', from: String(ref.from), to: String(ref.to) },
    });
    this.host.keys.set(cid, { [sealer.keyId]: 1 + blocks.length });
    return { form: 'blocks', cid, ...packed.ref };
  }

  // Retires a manifest its re-sealed copy replaces (in the catalog's history): protection moves, then collection.
  async #retire(old: string, fresh: string): Promise<void> {
    const { catalog } = this.host;
    // The pointers written in the background (Render) name the new head before the old one may go; and the old one
    // goes only once the catalog lists the new one (a pointer store that failed to record it leaves both).
    await catalog.flush?.();
    if (!((await catalog.list(this.ledgerId, 1_000_000)) ?? []).some((r) => r.id === fresh))
      throw new UnavailableError(
        `${catalog.name} does not list manifest ${fresh} (backup re-sealed from ${old}): the old one stays until it does`,
      );
    if (await catalog.isProtected(old)) {
      await catalog.setProtected(fresh, true);
      await catalog.setProtected(old, false);
    }
    await catalog.markPruned([old]);
    await this.#collect();
  }

  // The tier's garbage collection (pack-gc.ts): frees what retired (and pruned) manifests alone named.
  async #collect(): Promise<void> {
    const { catalog, store } = this.host;
    await collectPackGarbage(this.ledgerId, {
      store,
      catalog,
      manifests: this.#manifests,
      alsoKept: this.host.alsoKept(this.ledgerId),
      dropped: (id) => {
        this.host.keys.delete(id);
        this.host.dropped(id);
      },
    });
  }

  // Without a catalog history: frees the manifests the reachable ones replaced, once they are no longer reachable.
  async #freeReplaced(): Promise<void> {
    const { ids } = await this.#live();
    const resolve = this.#resolver(false);
    const kept = new Set([...ids, ...ids.map(resolve)]);
    const retired = new Set<string>();
    for (const id of kept) {
      const fields = await this.#manifests.record(id).catch(() => null);
      for (const old of fields?.resealedFrom ?? []) if (!kept.has(old)) retired.add(old);
    }
    for (const old of this.host.resealed.keys()) if (!kept.has(old)) retired.add(old);
    if (retired.size === 0) return;
    for (const id of this.host.alsoKept(this.ledgerId)) if (id) kept.add(id);
    for (const id of await this.host.catalog.anchors(this.ledgerId)) kept.add(id);
    await freeManifests(
      {
        store: this.host.store,
        manifests: this.#manifests,
        dropped: (id) => {
          this.host.keys.delete(id);
          this.host.dropped(id);
        },
      },
      [...retired],
      [...kept],
    );
    for (const old of retired) this.host.resealed.delete(old);
  }

  // The manifests and objects the live backups reach still under another key, each backup as its newest copy (an
  // old copy not reachable from the pointers yet is freed once the head's copy is written, with nothing to rewrite).
  async #remaining(): Promise<number> {
    const { ids, history } = await this.#live();
    const resolve = this.#resolver(history);
    let n = 0;
    const seen = new Set<string>();
    for (const id of new Set(ids.map(resolve))) {
      const e = await this.#entry(id);
      if (this.#stale(e.keys)) n++;
      for (const o of await this.#objects(e.m)) {
        if (seen.has(o.id)) continue;
        seen.add(o.id);
        if (this.#stale(o.keys)) n++;
      }
    }
    return n;
  }
}
