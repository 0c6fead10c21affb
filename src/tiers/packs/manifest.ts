import type { BackupKind } from '../../crypto/records.js';
import { IntegrityError } from '../../errors.js';
import { canonicalJson } from '../../ledger/canonical.js';
import type { PackRef } from './format.js';

/**
 * Manifest v2 (docs/FORMAT.md, "Packs"): a backup names its chain as spans over stored objects, in a pack list kept
 * in separate list objects that later manifests reuse, so a manifest stays a few KiB and a save uploads only what is
 * new, whatever the chain's length.
 *
 * An object is either a pack the ledger sealed (`pack`: crypto/packs.ts, stored as is) or a pack of sealed blocks this
 * tier sealed (`blocks`: the v1 form, format.ts). A span uses the blocks from..to of one object (all of it, or a
 * slice: a branch that leaves a pack, or blocks a newer pack replaced); `hash` is the hash of block `to`.
 */
export interface ObjectRef {
  form: 'blocks' | 'pack';
  /** cid is the object's id in the store: a CID, or a key. */
  cid: string;
  /** sha256 of the stored bytes (hex), checked on every fetch. */
  sha256: string;
  bytes: number;
  /** from, to and lastHash are the object's own first and last height and its last block's hash. */
  from: number;
  to: number;
  lastHash: string;
}

/** Span is a run of the chain read from one object. */
export interface Span {
  ref: ObjectRef;
  from: number;
  to: number;
  hash: string;
}

/** ListRef names one list object: `count` spans covering blocks from..to. */
export interface ListRef {
  cid: string;
  sha256: string;
  bytes: number;
  count: number;
  from: number;
  to: number;
}

/** CheckpointRef names a checkpoint's parts, in order. */
export interface CheckpointRef {
  height: number;
  hash: string;
  parts: { cid: string; sha256: string; bytes: number }[];
}

/** RecordFields are the backup record a manifest carries (the same fields and MAC as a database row). */
export interface RecordFields {
  ledgerId: string;
  name: string;
  kind: BackupKind;
  /** recordSeal is the backup record's seal (base64). */
  recordSeal: string;
  createdAt: string;
  createdBy: number | null;
  height: number;
  headHash: string;
  sizeBytes: number;
  /** root is the chain accumulator's root at the head (hex), as the backup record has it; absent in older manifests. */
  root?: string;
  /** previous is the id of the manifest written before this one, so history can be walked from the newest. */
  previous: string | null;
  /**
   * resealedFrom, in a manifest key rotation wrote (reseal.ts), is the ids of the manifests it replaces, the one it was
   * re-sealed from first, then that one's own (at most RESEAL_LINEAGE): a rotation killed after writing it retires the
   * old one rather than redo it, and a later manifest's `previous` naming any of them is led to this one.
   */
  resealedFrom?: string[];
}

/**
 * ManifestBody is what a v2 manifest seals: the record, its pack lists, and the newest checkpoints on its chain
 * (newest first, at most KEEP_CHECKPOINTS). A reader ignores members it does not know, so a field can be added
 * (optionally) without a new version.
 */
export interface ManifestBody extends RecordFields {
  version: 2;
  lists: ListRef[];
  /** tail is the last spans, when few (INLINE_MAX), in the manifest itself: a save then writes no list object. */
  tail: SpanRow[];
  checkpoints: CheckpointRef[];
}

/** Manifest is a manifest as the tier works with it, v1 or v2: its record, every span, its lists and checkpoints. */
export interface Manifest extends RecordFields {
  version: 1 | 2;
  spans: Span[];
  /**
   * lists are the v2 list objects with the spans each holds (empty for v1), for the next manifest to reuse; the last
   * may have no `ref`: the manifest's own tail.
   */
  lists: { ref?: ListRef; spans: Span[] }[];
  checkpoints: CheckpointRef[];
}

/** KEEP_CHECKPOINTS is how many checkpoints a manifest names: the newest two on its chain. */
export const KEEP_CHECKPOINTS = 2;
/** LIST_CAP bounds the spans of one list object (and so what a merge of lists rewrites). */
export const LIST_CAP = 4096;
/** INLINE_MAX is how many spans at the tail a manifest holds itself rather than in a list object. */
export const INLINE_MAX = 16;

/** fromV1 reads a v1 manifest's packs (all of the tier's own form) as spans. */
export function fromV1(packs: readonly PackRef[]): Span[] {
  return packs.map((p) => ({
    ref: { form: 'blocks', cid: p.cid, sha256: p.sha256, bytes: p.bytes, from: p.from, to: p.to, lastHash: p.lastHash },
    from: p.from,
    to: p.to,
    hash: p.lastHash,
  }));
}

// A span as stored: the object's fields, then the used range only where it differs from the object's.
type SpanJson = [form: 'b' | 'p', cid: string, sha256: string, bytes: number, from: number, to: number, last: string];
type ClippedJson = [...SpanJson, useFrom: number, useTo: number, useHash: string];
/** SpanRow is a span as a list object or a manifest's tail holds it (docs/FORMAT.md). */
export type SpanRow = SpanJson | ClippedJson;

/** spanRows are spans as stored. */
export function spanRows(spans: readonly Span[]): SpanRow[] {
  return spans.map((s): SpanRow => {
    const r = s.ref;
    const row: SpanJson = [r.form === 'pack' ? 'p' : 'b', r.cid, r.sha256, r.bytes, r.from, r.to, r.lastHash];
    return s.from === r.from && s.to === r.to ? row : [...row, s.from, s.to, s.hash];
  });
}

/** encodeList is a list object's bytes: canonical JSON `{"spans":[…],"version":1}`. */
export function encodeList(spans: readonly Span[]): Buffer {
  return Buffer.from(canonicalJson({ version: 1, spans: spanRows(spans) }));
}

/** decodeList reads a list object (already checked against its SHA-256); anything malformed throws IntegrityError. */
export function decodeList(bytes: Buffer, where: string): Span[] {
  let rows: unknown;
  try {
    rows = (JSON.parse(bytes.toString('utf8')) as { spans?: unknown }).spans;
  } catch {
    throw new IntegrityError(`${where} does not hold JSON`);
  }
  return decodeRows(rows, where);
}

/** decodeRows reads spans as stored; anything malformed throws IntegrityError naming `where`. */
export function decodeRows(rows: unknown, where: string): Span[] {
  if (!Array.isArray(rows)) throw new IntegrityError(`${where} is not a pack list`);
  return rows.map((row: unknown) => {
    const r = row as unknown[] as ClippedJson;
    if (!Array.isArray(r) || ((r as unknown[]).length !== 7 && r.length !== 10) || (r[0] !== 'b' && r[0] !== 'p'))
      throw new IntegrityError(`${where} holds a malformed span`);
    const ref: ObjectRef = {
      form: r[0] === 'p' ? 'pack' : 'blocks',
      cid: r[1],
      sha256: r[2],
      bytes: r[3],
      from: r[4],
      to: r[5],
      lastHash: r[6],
    };
    return r.length === 10
      ? { ref, from: r[7], to: r[8], hash: r[9] }
      : { ref, from: ref.from, to: ref.to, hash: ref.lastHash };
  });
}

/** checkSpans throws IntegrityError unless the spans cover 0..height without gap or overlap, each inside its object. */
export function checkSpans(spans: readonly Span[], height: number, where: string): void {
  let next = 0;
  for (const s of spans) {
    if (s.from !== next || s.to < s.from || s.from < s.ref.from || s.to > s.ref.to)
      throw new IntegrityError(`${where} has a gap or overlap at block ${next}`);
    if (s.to === s.ref.to && s.hash !== s.ref.lastHash)
      throw new IntegrityError(`${where} names two hashes for block ${s.to}`);
    next = s.to + 1;
  }
  if (next !== height + 1) throw new IntegrityError(`${where} ends at block ${next - 1}, not at its head ${height}`);
}

const sameSpan = (a: Span, b: Span) =>
  a.ref.cid === b.ref.cid && a.from === b.from && a.to === b.to && a.hash === b.hash && a.ref.sha256 === b.ref.sha256;

/**
 * planLists splits a new manifest's spans into list objects, reusing every list of `before` (the manifest it follows)
 * that still holds exactly its spans, and writing the rest as new lists. Like a binary counter, the new tail list
 * absorbs the lists before it while they hold no more spans than it (up to LIST_CAP), so a chain keeps O(log n)
 * lists and a save rewrites only a short tail. It returns, in order, lists to keep (`ref`) or to write (`write`),
 * the last of which, when it holds no more than INLINE_MAX spans, stays in the manifest (no `ref`, no `write`).
 */
export function planLists(
  spans: readonly Span[],
  before: Manifest['lists'],
): { ref?: ListRef; spans: Span[]; write?: boolean }[] {
  const out: { ref?: ListRef; spans: Span[]; write?: boolean }[] = [];
  let at = 0;
  for (const list of before) {
    const n = list.spans.length;
    if (!list.ref) break;
    if (at + n > spans.length || !list.spans.every((s, i) => sameSpan(s, spans[at + i]!))) break;
    out.push(list);
    at += n;
  }
  if (at === spans.length) return out;
  let tail = spans.slice(at);
  while (
    out.length > 0 &&
    out.at(-1)!.spans.length <= tail.length &&
    out.at(-1)!.spans.length + tail.length <= LIST_CAP
  )
    tail = [...out.pop()!.spans, ...tail];
  out.push(tail.length <= INLINE_MAX ? { spans: tail } : { spans: tail, write: true });
  return out;
}

/** manifestBody is the sealed body of a v2 manifest. */
export function manifestBody(fields: RecordFields, lists: Manifest['lists'], checkpoints: CheckpointRef[]): Buffer {
  const refs = lists.flatMap((l) => (l.ref ? [l.ref] : []));
  const tail = spanRows(lists.find((l) => !l.ref)?.spans ?? []);
  const body: ManifestBody = { version: 2, ...fields, lists: refs, tail, checkpoints };
  return Buffer.from(canonicalJson(body));
}

/** spanAt is the span holding block `height`, or undefined. */
export function spanAt(spans: readonly Span[], height: number): Span | undefined {
  let lo = 0;
  let hi = spans.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = spans[mid]!;
    if (height < s.from) hi = mid - 1;
    else if (height > s.to) lo = mid + 1;
    else return s;
  }
  return undefined;
}

/** clip is the part of `spans` covering from..to (spans cut at both ends; `toHash` is the hash of block `to`). */
export function clip(spans: readonly Span[], from: number, to: number, toHash: string): Span[] {
  const out: Span[] = [];
  for (const s of spans) {
    if (s.to < from || s.from > to) continue;
    const cut = { ...s, from: Math.max(s.from, from), to: Math.min(s.to, to) };
    if (cut.to !== s.to) cut.hash = toHash;
    out.push(cut);
  }
  return out;
}
