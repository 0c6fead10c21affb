/**
 * A proof's heights are authenticated by its root alone: the chain root binds the chain's size (chainRoot), so a
 * consistency or inclusion proof with any numeric field changed fails, even where the RFC 6962 path alone would
 * still fit the changed size (the last leaf of 6 leaves has the same path shape as the last leaf of 7).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { verifyConsistencyProof, verifyProof } from '../../src/ledger/proof-verifier.js';
import { Ledger } from '../../src/service/ledger.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

// Every numeric field of a JSON value, as a path of keys.
function numericPaths(value: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (typeof value === 'number') return [at];
  if (Array.isArray(value)) return value.flatMap((v, i) => numericPaths(v, [...at, i]));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => numericPaths(v, [...at, k]));
  return [];
}

function valueAt(value: unknown, path: (string | number)[]): number {
  return path.reduce<unknown>((v, k) => (v as Record<string | number, unknown>)[k], value) as number;
}

function changed<T>(value: T, path: (string | number)[], to: number): T {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let node = copy;
  for (const k of path.slice(0, -1)) node = node[k] as Record<string | number, unknown>;
  node[path.at(-1)!] = to;
  return copy as T;
}

describe('heights in proofs', () => {
  it('are bound by the root: changing any numeric field of a consistency or inclusion proof fails it', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'pawledger-heights-'));
    dirs.push(dataDir);
    const ledger = await Ledger.open({ config: { ...loadConfig({ LEDGER_DB: 'off' }), dataDir } });
    try {
      await ledger.register({ id: 'p1', name: 'n', address: 'a', owner: 'ann' });
      for (let i = 0; i < 9; i++) await ledger.register({ id: `q${i}`, name: 'n', address: 'a', owner: 'o' });
      await ledger.update('p1', { attributes: { rooms: 3 } });
      await ledger.proofsReady();
      const head = ledger.head.index;
      const others = (n: number) =>
        [...new Set([0, 1, n - 2, n - 1, n + 1, n + 2, head, head + 1])].filter((x) => x >= 0 && x !== n);

      let tried = 0;
      for (let from = 0; from <= head; from++) {
        for (let to = from; to <= head; to++) {
          const c = await ledger.consistency(from, to);
          expect((await verifyConsistencyProof(c)).ok).toBe(true);
          for (const path of numericPaths(c)) {
            for (const n of others(valueAt(c, path))) {
              const verdict = await verifyConsistencyProof(changed(c, path, n));
              expect({ from, to, path, n, ok: verdict.ok }).toEqual({ from, to, path, n, ok: false });
              tried++;
            }
          }
        }
      }

      const { proof } = await ledger.proof('p1');
      expect((await verifyProof(proof)).ok).toBe(true);
      const fields = numericPaths(proof);
      expect(fields.map((p) => p.join('.'))).toEqual(
        expect.arrayContaining(['head.height', 'blocks.0.index', 'blocks.1.index']),
      );
      for (const path of fields) {
        for (const n of others(valueAt(proof, path))) {
          const verdict = await verifyProof(changed(proof, path, n));
          expect({ path, n, ok: verdict.ok }).toEqual({ path, n, ok: false });
          tried++;
        }
      }
      expect(tried).toBeGreaterThan(100);
    } finally {
      await ledger.close();
    }
  });
});
