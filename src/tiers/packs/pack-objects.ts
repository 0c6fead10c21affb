import { decodePack, type ChainPage, type SealedPack } from '../../crypto/packs.js';
import type { Sealer } from '../../crypto/seal.js';
import type { StoredBlock } from '../../crypto/stored-block.js';
import { IntegrityError } from '../../errors.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { openPack } from './format.js';
import type { ObjectRef, Span } from './manifest.js';

/** OpenedObject is a fetched pack object: the tier's own pack of sealed blocks, or a pack the ledger sealed. */
export type OpenedObject = { form: 'blocks'; blocks: StoredBlock[] } | { form: 'pack'; pack: SealedPack };

/**
 * A read fetches objects ahead of the page its caller is opening: at least one, and more while they weigh no more than
 * PREFETCH_BYTES together (up to PREFETCH_MAX), so a store with latency (S3, a gateway) keeps a few requests in flight.
 */
const PREFETCH_BYTES = 4 * 1024 * 1024;
const PREFETCH_MAX = 8;
/** CACHED is how many opened objects stay in memory for hash lookups and merges (not for streamed reads). */
const CACHED = 32;

/**
 * PackObjects fetches pack objects and turns spans of them into pages. What is fetched is checked against the
 * SHA-256 the manifest records; the tier's own packs are opened here (their seal is the tier's), the ledger's packs
 * are only decoded: the reader authenticates them (their seal is the ledger's, opened once, by the caller).
 */
export class PackObjects {
  readonly #cache = new Map<string, OpenedObject>();

  constructor(
    private readonly store: ObjectStore,
    private readonly sealer: Sealer,
  ) {}

  /** remember keeps an object this process just built (a merge needs its blocks without fetching them again). */
  remember(cid: string, object: OpenedObject): void {
    this.#cache.delete(cid);
    this.#cache.set(cid, object);
    if (this.#cache.size > CACHED) this.#cache.delete(this.#cache.keys().next().value!);
  }

  forget(cid: string): void {
    this.#cache.delete(cid);
  }

  /** get fetches and opens one object; with `keep`, it stays cached. */
  async get(ledgerId: string, ref: ObjectRef, keep = true): Promise<OpenedObject> {
    const cached = this.#cache.get(ref.cid);
    if (cached) return cached;
    const bytes = await this.store.get(ref.cid, { sha256: ref.sha256 });
    let opened: OpenedObject;
    if (ref.form === 'blocks') {
      opened = { form: 'blocks', blocks: openPack(this.sealer, ledgerId, { ...ref }, bytes) };
    } else {
      const pack = decodePack(bytes, `pack ${ref.cid}`);
      if (pack.from !== ref.from || pack.to !== ref.to || pack.hashes.at(-1) !== ref.lastHash)
        throw new IntegrityError(`pack ${ref.cid} holds blocks other than ${ref.from}..${ref.to} its manifest names`);
      opened = { form: 'pack', pack };
    }
    if (keep) this.remember(ref.cid, opened);
    return opened;
  }

  /** hashAt is the hash of block `height` inside the span (its own hash at `to`, else from the object). */
  async hashAt(ledgerId: string, span: Span, height: number): Promise<string> {
    if (height === span.to) return span.hash;
    const o = await this.get(ledgerId, span.ref);
    return o.form === 'pack' ? o.pack.hashes[height - o.pack.from]! : o.blocks[height - span.ref.from]!.hash;
  }

  /** blocks are the sealed blocks of a span of the tier's own form (a merge re-packs them). */
  async blocks(ledgerId: string, span: Span): Promise<StoredBlock[]> {
    const o = await this.get(ledgerId, span.ref);
    if (o.form !== 'blocks') throw new Error(`pack ${span.ref.cid} holds the ledger's pack, not sealed blocks`);
    return o.blocks.slice(span.from - span.ref.from, span.to - span.ref.from + 1);
  }

  /**
   * pages yields the spans as pages from `start` on, fetching objects ahead of the page the caller is working on (so
   * a restore's fetches and its decryption overlap), never more than PREFETCH_BYTES (or one object) in memory ahead.
   */
  async *pages(ledgerId: string, spans: readonly Span[], start: number): AsyncGenerator<ChainPage> {
    const todo = spans.filter((s) => s.to >= start);
    const fetches: Promise<OpenedObject>[] = [];
    let next = 0;
    let ahead = 0;
    const fill = (from: number) => {
      while (next < todo.length && next - from < PREFETCH_MAX) {
        const bytes = todo[next]!.ref.bytes;
        if (next > from && ahead + bytes > PREFETCH_BYTES) break;
        const p = this.get(ledgerId, todo[next]!.ref, false);
        // A read its caller abandons must not leave a rejection nobody hears.
        p.catch(() => {});
        fetches[next++] = p;
        ahead += bytes;
      }
    };
    for (let i = 0; i < todo.length; i++) {
      fill(i);
      const o = await fetches[i]!;
      delete fetches[i];
      ahead -= todo[i]!.ref.bytes;
      const s = todo[i]!;
      const from = Math.max(s.from, start);
      if (o.form === 'pack') yield { pack: o.pack, from, to: s.to };
      else yield { blocks: o.blocks.slice(from - s.ref.from, s.to - s.ref.from + 1) };
      fill(i + 1);
    }
  }
}
