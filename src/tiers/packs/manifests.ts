import type { Sealer } from '../../crypto/seal.js';
import { sha256Hex } from '../../ledger/block.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { encodeManifestFile, manifestKey, objectKey, openManifestFile, type PackRef } from './format.js';
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
  readonly #cache = new Map<string, Manifest>();

  constructor(
    private readonly store: ObjectStore,
    private readonly sealer: Sealer,
  ) {}

  /** read fetches, verifies and opens the manifest `id` with its pack lists. */
  async read(id: string): Promise<Manifest> {
    const cached = this.#cache.get(id);
    if (cached) return cached;
    const body = openManifestFile(this.sealer, id, await this.store.get(id));
    const where = `manifest ${id}`;
    const fields = Object.fromEntries(RECORD_KEYS.map((k) => [k, body[k] ?? null])) as unknown as RecordFields;
    let m: Manifest;
    if (body.version === 1) {
      const spans = fromV1(Array.isArray(body.packs) ? (body.packs as PackRef[]) : []);
      m = { ...fields, version: 1, spans, lists: [], checkpoints: [] };
    } else {
      const refs = (Array.isArray(body.lists) ? body.lists : []) as ListRef[];
      const lists: Manifest['lists'] = await Promise.all(
        refs.map(async (ref) => ({
          ref,
          spans: decodeList(await this.store.get(ref.cid, { sha256: ref.sha256 }), `pack list ${ref.cid} of ${where}`),
        })),
      );
      if (Array.isArray(body.tail) && body.tail.length > 0) lists.push({ spans: decodeRows(body.tail, where) });
      const checkpoints = (Array.isArray(body.checkpoints) ? body.checkpoints : []) as CheckpointRef[];
      m = { ...fields, version: 2, spans: lists.flatMap((l) => l.spans), lists, checkpoints };
    }
    checkSpans(m.spans, m.height, where);
    this.#cache.set(id, m);
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
    this.#cache.set(id, manifest);
    return { id, manifest, bytes };
  }

  /** forget drops a deleted manifest from the cache. */
  forget(id: string): void {
    this.#cache.delete(id);
  }
}
