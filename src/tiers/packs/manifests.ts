import type { Sealer } from '../../crypto/seal.js';
import { sha256Hex } from '../../ledger/block.js';
import type { ObjectStore } from '../../objects/object-store.js';
import {
  encodeManifestFile,
  manifestKey,
  manifestSealKeyId,
  objectKey,
  openManifestFile,
  type PackRef,
} from './format.js';
import {
  checkSpans,
  decodeList,
  decodeRows,
  encodeList,
  fromV1,
  manifestBody,
  planLists,
  type CheckpointRef,
  type ListRef,
  type Manifest,
  type RecordFields,
  type Span,
} from './manifest.js';

const RECORD_KEYS = [
  'ledgerId',
  'name',
  'kind',
  'recordSeal',
  'createdAt',
  'createdBy',
  'height',
  'headHash',
  'sizeBytes',
  'previous',
] as const;

/**
 * ManifestStore reads and writes manifests (v1 and v2) and their pack lists in an object store. Everything read is
 * checked: the manifest against its seal, each list against the SHA-256 the manifest records, the spans for gaps.
 * Manifests are immutable, so those read or written are kept (a few KiB each, spans shared with the next).
 */
export class ManifestStore {
  // Manifests and lists are immutable: what was read stays, bounded (records are small and all kept; a whole
  // manifest's spans and the lists they come from are kept for the newest few).
  readonly #bodies = new Map<string, Record<string, unknown> & RecordFields>();
  readonly #cache = new Map<string, Manifest>();
  readonly #lists = new Map<string, Span[]>();

  constructor(
    private readonly store: ObjectStore,
    private readonly sealer: Sealer,
  ) {}

  /** record fetches, verifies and opens the manifest `id` for its backup record only (no pack lists fetched). */
  async record(id: string): Promise<RecordFields> {
    return (await this.#body(id)).fields;
  }

  async #body(id: string): Promise<{ fields: RecordFields; body: Record<string, unknown> }> {
    let body = this.#bodies.get(id);
    if (!body) {
      body = openManifestFile(this.sealer, id, await this.store.get(id)) as Record<string, unknown> & RecordFields;
      this.#bodies.set(id, body);
    }
    const fields = Object.fromEntries(RECORD_KEYS.map((k) => [k, body[k] ?? null])) as unknown as RecordFields;
    // The root is optional: a manifest without it (written before the accumulator) has none, not a null one.
    if (typeof body.root === 'string') fields.root = body.root;
    if (Array.isArray(body.resealedFrom))
      fields.resealedFrom = body.resealedFrom.filter((x): x is string => typeof x === 'string');
    return { fields, body };
  }

  async #list(ref: ListRef, where: string): Promise<Span[]> {
    let spans = this.#lists.get(ref.cid);
    if (!spans) {
      spans = decodeList(await this.store.get(ref.cid, { sha256: ref.sha256 }), `pack list ${ref.cid} of ${where}`);
      remember(this.#lists, ref.cid, spans, 256);
    }
    return spans;
  }

  /** read fetches, verifies and opens the manifest `id` with its pack lists. */
  async read(id: string): Promise<Manifest> {
    const cached = this.#cache.get(id);
    if (cached) return cached;
    const { fields, body } = await this.#body(id);
    const where = `manifest ${id}`;
    let m: Manifest;
    if (body.version === 1) {
      const spans = fromV1(Array.isArray(body.packs) ? (body.packs as PackRef[]) : []);
      m = { ...fields, version: 1, spans, lists: [], checkpoints: [] };
    } else {
      const refs = (Array.isArray(body.lists) ? body.lists : []) as ListRef[];
      const lists: Manifest['lists'] = await Promise.all(
        refs.map(async (ref) => ({ ref, spans: await this.#list(ref, where) })),
      );
      if (Array.isArray(body.tail) && body.tail.length > 0) lists.push({ spans: decodeRows(body.tail, where) });
      const checkpoints = (Array.isArray(body.checkpoints) ? body.checkpoints : []) as CheckpointRef[];
      m = { ...fields, version: 2, spans: lists.flatMap((l) => l.spans), lists, checkpoints };
    }
    checkSpans(m.spans, m.height, where);
    remember(this.#cache, id, m, 64);
    return m;
  }

  /**
   * write stores a v2 manifest of these spans and checkpoints, reusing the lists of `before` that still hold the same
   * spans, and returns its id, what it is, and the bytes uploaded (new lists and the manifest).
   */
  async write(
    fields: RecordFields,
    spans: Span[],
    checkpoints: CheckpointRef[],
    before: Manifest | null,
    at: { ms: number; head: boolean },
  ): Promise<{ id: string; manifest: Manifest; bytes: number }> {
    checkSpans(spans, fields.height, `the new manifest at block ${fields.height}`);
    let bytes = 0;
    const lists: Manifest['lists'] = [];
    for (const planned of planLists(spans, before?.lists ?? [])) {
      if (!planned.write) {
        lists.push(planned.ref ? { ref: planned.ref, spans: planned.spans } : { spans: planned.spans });
        continue;
      }
      const file = encodeList(planned.spans);
      const sha256 = sha256Hex(file);
      const from = planned.spans[0]!.from;
      const to = planned.spans.at(-1)!.to;
      const cid = await this.store.put(file, {
        key: objectKey(fields.ledgerId, 'list', from, to, sha256),
        label: `pawledger pack list ${fields.ledgerId.slice(0, 12)} ${from}-${to}`,
        keyvalues: { ledger: fields.ledgerId.slice(0, 16), kind: 'list', from: String(from), to: String(to) },
      });
      bytes += file.length;
      lists.push({
        ref: { cid, sha256, bytes: file.length, count: planned.spans.length, from, to },
        spans: planned.spans,
      });
    }
    const body = manifestBody(fields, lists, checkpoints);
    const file = encodeManifestFile(this.sealer, fields, body);
    const id = await this.store.put(file, {
      key: manifestKey(fields, file, at.ms, at.head),
      label: `pawledger manifest ${fields.ledgerId.slice(0, 12)} @${fields.height}`,
      keyvalues: {
        ledger: fields.ledgerId.slice(0, 16),
        kind: 'manifest',
        height: String(fields.height),
        head: fields.headHash.slice(0, 16),
      },
    });
    bytes += file.length;
    const manifest: Manifest = { ...fields, version: 2, spans, lists, checkpoints };
    remember(this.#cache, id, manifest, 64);
    for (const l of lists) if (l.ref) remember(this.#lists, l.ref.cid, l.spans, 256);
    return { id, manifest, bytes };
  }

  /** sealKeyId is the id of the key that sealed the manifest `id` (from its header, nothing opened). */
  async sealKeyId(id: string): Promise<string> {
    return manifestSealKeyId(await this.store.get(id));
  }

  /** forget drops a deleted manifest or list from the caches. */
  forget(id: string): void {
    this.#cache.delete(id);
    this.#bodies.delete(id);
    this.#lists.delete(id);
  }
}

// remember keeps `value` under `key`, dropping the oldest entries beyond `max`.
function remember<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value!);
}
