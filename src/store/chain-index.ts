import type { ScannedSegment } from './segment-scan.js';

/**
 * Where each block of a local generation lies, pure code without I/O. A generation holds pack files and segment
 * files; together they cover blocks 0..head without a gap. Packs never overlap each other, nor do segments; a
 * segment may overlap packs (its blocks were packed since, and it is deleted once packs cover all of it). A read
 * takes a block from its pack when one holds it, else from its segment.
 */

/** LoadedSegment is one scanned segment file of the live generation. */
export interface LoadedSegment extends ScannedSegment {
  name: string;
}

/** LoadedPack is one pack file of the live generation: the blocks from..to of the chain, in one pack. */
export interface LoadedPack {
  name: string;
  from: number;
  /** to is the last block the chain uses (the pack's own last block, packTo, or an earlier one). */
  to: number;
  packTo: number;
  /** hash is the hash of block `to`. */
  hash: string;
}

/** segmentEnd is the height of a segment's last block (firstHeight - 1 when it holds none). */
export function segmentEnd(s: { firstHeight: number; offsets: readonly number[] }): number {
  return s.firstHeight + s.offsets.length - 1;
}

/** chainHeight is the last block held, in a segment or a pack (-1: none). */
export function chainHeight(segments: readonly LoadedSegment[], packs: readonly LoadedPack[]): number {
  const last = segments.at(-1);
  return Math.max(last ? segmentEnd(last) : -1, packs.at(-1)?.to ?? -1);
}

// The index of the last item whose `from` is <= h (-1: none), items sorted by `from`.
function lastAtOrBelow<T>(items: readonly T[], h: number, from: (t: T) => number): number {
  let lo = -1;
  let hi = items.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (from(items[mid]!) <= h) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** packAt is the pack holding block h, or null. */
export function packAt(packs: readonly LoadedPack[], h: number): LoadedPack | null {
  const p = packs[lastAtOrBelow(packs, h, (x) => x.from)];
  return p && h <= p.to ? p : null;
}

/** nextPackAfter is the first pack starting after block h, or null. */
export function nextPackAfter(packs: readonly LoadedPack[], h: number): LoadedPack | null {
  return packs[lastAtOrBelow(packs, h, (x) => x.from) + 1] ?? null;
}

/** segmentAt is the segment holding block h, or null. */
export function segmentAt(segments: readonly LoadedSegment[], h: number): LoadedSegment | null {
  const s = segments[lastAtOrBelow(segments, h, (x) => x.firstHeight)];
  return s && h <= segmentEnd(s) ? s : null;
}

/** packedThrough is the highest H such that packs hold blocks 0..H (-1: none). */
export function packedThrough(packs: readonly LoadedPack[]): number {
  let h = -1;
  for (const p of packs) {
    if (p.from !== h + 1) break;
    h = p.to;
  }
  return h;
}

/** skipPacks is the first height at or after h that no pack holds. */
export function skipPacks(packs: readonly LoadedPack[], h: number): number {
  for (let p = packAt(packs, h); p; p = packAt(packs, h)) h = p.to + 1;
  return h;
}

/** coveredByPacks tells whether packs hold every block from..to. */
export function coveredByPacks(packs: readonly LoadedPack[], from: number, to: number): boolean {
  return skipPacks(packs, from) > to;
}

/** firstGap is the first run of blocks below the head that neither a pack nor a segment holds, or null. */
export function firstGap(
  segments: readonly LoadedSegment[],
  packs: readonly LoadedPack[],
): { from: number; to: number } | null {
  const head = chainHeight(segments, packs);
  let h = 0;
  while (h <= head) {
    const p = packAt(packs, h);
    const s = p ? null : segmentAt(segments, h);
    if (p) h = p.to + 1;
    else if (s) h = segmentEnd(s) + 1;
    else {
      const next = Math.min(
        nextPackAfter(packs, h)?.from ?? Infinity,
        segments.find((x) => x.firstHeight > h)?.firstHeight ?? Infinity,
      );
      return { from: h, to: next - 1 };
    }
  }
  return null;
}
