import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  appendLeaf,
  consistencyPath,
  inclusionPath,
  largestValidNodes,
  leafOf,
  leavesOf,
  nodeCount,
  type NodeSource,
  type Peak,
  peaksFrom,
  rootAfter,
  rootOfPeaks,
} from '../../src/ledger/accumulator.js';
import { sha256Hex } from '../../src/ledger/block.js';
import { canonicalJson } from '../../src/ledger/canonical.js';
import { merkleRootOfEncoded } from '../../src/ledger/merkle.js';
import * as verifier from '../../src/ledger/proof-verifier.js';

const hex = (b: Buffer[]) => b.map((x) => x.toString('hex'));

function build(n: number): { nodes: Buffer[]; source: NodeSource; peaks: Peak[]; hashes: string[]; roots: string[] } {
  const nodes: Buffer[] = [];
  const peaks: Peak[] = [];
  const hashes: string[] = [];
  const roots: string[] = [];
  for (let i = 0; i < n; i++) {
    const h = sha256Hex(`block ${i}`);
    hashes.push(h);
    nodes.push(...appendLeaf(peaks, leafOf(h)));
    roots.push(rootOfPeaks(peaks)!.toString('hex'));
  }
  return { nodes, peaks, hashes, roots, source: { node: async (p) => nodes[p]! } };
}

describe('the accumulator over block hashes', () => {
  it("has RFC 6962's root (the Merkle root of the block hashes as leaves) at every size, stored in 2n - popcount(n) nodes", () => {
    const { nodes, hashes, roots } = build(70);
    expect(nodes.length).toBe(nodeCount(70));
    for (let n = 1; n <= 70; n++) {
      expect(roots[n - 1]).toBe(merkleRootOfEncoded(hashes.slice(0, n).map((h) => Buffer.from(h, 'hex'))));
      expect(leavesOf(nodeCount(n))).toBe(n);
    }
    expect(leavesOf(nodeCount(5) + 1)).toBeNull();
    expect(largestValidNodes(nodeCount(9) + 1)).toBe(nodeCount(9));
  });

  it('reads its peaks back from the stored nodes, and says the root after appending without changing them', async () => {
    const { source, peaks, roots, hashes } = build(45);
    const read = await peaksFrom(source, 45);
    expect(read.map((p) => [p.level, p.hash.toString('hex')])).toEqual(
      peaks.map((p) => [p.level, p.hash.toString('hex')]),
    );
    const at30 = await peaksFrom(source, 30);
    expect(rootAfter(at30, hashes.slice(30, 45))!.toString('hex')).toBe(roots[44]);
    expect(rootOfPeaks(at30)!.toString('hex')).toBe(roots[29]);
  });

  it('gives an inclusion path for every leaf that verifies, and fails for another leaf, index or root', async () => {
    const { source, hashes, roots } = build(37);
    for (const size of [1, 2, 3, 8, 13, 37]) {
      for (let i = 0; i < size; i++) {
        const path = hex(await inclusionPath(source, i, size));
        const leaf = leafOf(hashes[i]!).toString('hex');
        expect(await verifier.verifyInclusion(i, size, leaf, path, roots[size - 1]!)).toBe(true);
        if (size > 1) {
          const other = leafOf(hashes[(i + 1) % size]!).toString('hex');
          expect(await verifier.verifyInclusion(i, size, other, path, roots[size - 1]!)).toBe(false);
          expect(await verifier.verifyInclusion((i + 1) % size, size, leaf, path, roots[size - 1]!)).toBe(false);
        }
        expect(await verifier.verifyInclusion(i, size, leaf, path, roots[size]!)).toBe(false);
      }
    }
  });

  it('gives a consistency path between any two sizes that verifies, and fails against another root or size', async () => {
    const { source, roots } = build(40);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), async (a, b) => {
        const [m, n] = a <= b ? [a, b] : [b, a];
        const path = hex(await consistencyPath(source, m, n));
        expect(await verifier.verifyConsistency(m, n, roots[m - 1]!, roots[n - 1]!, path)).toBe(true);
        if (m < n) {
          expect(await verifier.verifyConsistency(m, n, roots[n - 2]!, roots[n - 1]!, path)).toBe(m === n - 1);
          expect(await verifier.verifyConsistency(m, n, roots[m - 1]!, roots[m - 1]!, path)).toBe(false);
          if (m > 1) expect(await verifier.verifyConsistency(m - 1, n, roots[m - 1]!, roots[n - 1]!, path)).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("has a browser verifier whose canonical JSON is the ledger's, byte for byte", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(verifier.canonicalJson(v)).toBe(canonicalJson(v));
      }),
      { numRuns: 500 },
    );
  });
});
