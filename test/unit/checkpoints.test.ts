/**
 * Checkpoints: the world state sealed in parts. What a restore trusts from them is exactly what was sealed: parts
 * dropped, reordered, cut short, moved to another block or sealed with another key fail to open; the state comes
 * back equal, with the digest a full replay computes; and a snapshot holds the state as it was while blocks go on.
 */
import { describe, expect, it } from 'vitest';
import {
  openCheckpoint,
  sealCheckpoint,
  sealCheckpointBeside,
  type SealedCheckpoint,
} from '../../src/crypto/checkpoints.js';
import { IntegrityError } from '../../src/errors.js';
import { encodeState, StateDecoder, stateDigest } from '../../src/ledger/state-codec.js';
import { WorldState } from '../../src/ledger/state.js';
import type { Block, Transaction } from '../../src/ledger/types.js';
import { makeChain, testSealer } from '../support/chain.js';
import { stateAt } from '../conformance/pack-suite.js';

const sealer = testSealer();

// A state of `n` properties, some updated and transferred, some touched by several blocks.
function busyState(n: number): { state: WorldState; ledgerId: string; hash: string } {
  const chain = makeChain(sealer, n);
  const state = stateAt(chain, n - 1);
  return { state, ledgerId: chain.ledgerId, hash: chain.blocks.at(-1)!.hash };
}

function bigState(n: number, height = 5): WorldState {
  const state = new WorldState();
  for (let i = 0; i < n; i++)
    state.add({
      id: `p${i}`,
      blocks: i % 3 === 0 ? [1, 2, 3] : 2,
      json: JSON.stringify({ id: `p${i}`, name: 'n', address: 'a', owner: 'o', attributes: { pad: 'x'.repeat(900) } }),
    });
  state.setHeight(height);
  return state;
}

async function open(cp: SealedCheckpoint, ledgerId: string, parts = cp.parts) {
  return openCheckpoint(sealer, ledgerId, cp, parts, 'test');
}

describe('checkpoints', () => {
  it('give back the same state, whose digest a replay from block 0 computes too', async () => {
    const { state, ledgerId, hash } = busyState(40);
    const cp = sealCheckpoint(sealer, ledgerId, hash, state);
    const { state: back, summary } = await open(cp, ledgerId);
    expect(back.list()).toEqual(state.list());
    expect(back.height).toBe(state.height);
    expect(summary).toMatchObject({ properties: 39, digest: stateDigest(state) });
    expect(stateDigest(back)).toBe(stateDigest(state));
    for (const p of state.list()) expect(back.get(p.id)).toEqual(state.get(p.id));
  });

  // A copy with one bit of byte `at` changed (setting a byte to a value could leave it as it was).
  const flip = (b: Buffer, at: number) => {
    const c = Buffer.from(b);
    c[at]! ^= 0x01;
    return c;
  };

  it('refuse parts dropped, reordered, cut short, truncated, another block, another key, with IntegrityError', async () => {
    const state = bigState(3000);
    const ledgerId = 'a'.repeat(64);
    const hash = 'b'.repeat(64);
    const cp = sealCheckpoint(sealer, ledgerId, hash, state);
    expect(cp.parts.length).toBeGreaterThan(3);
    const last = cp.parts.length - 1;
    const cases: [string, Buffer[], { height: number; hash: string }?][] = [
      ['the last part dropped', cp.parts.slice(0, last)],
      ['a middle part dropped', [...cp.parts.slice(0, 1), ...cp.parts.slice(2)]],
      ['two parts swapped', [cp.parts[1]!, cp.parts[0]!, ...cp.parts.slice(2)]],
      ['a part cut short', [cp.parts[0]!.subarray(0, 100), ...cp.parts.slice(1)]],
      ['a flipped byte', [flip(cp.parts[0]!, 500), ...cp.parts.slice(1)]],
      ['no parts', []],
      ['the summary first', [cp.parts[last]!]],
    ];
    for (const [what, parts] of cases)
      await expect(open(cp, ledgerId, parts), what).rejects.toBeInstanceOf(IntegrityError);
    await expect(openCheckpoint(sealer, ledgerId, { height: 6, hash }, cp.parts, 'test')).rejects.toBeInstanceOf(
      IntegrityError,
    );
    await expect(
      openCheckpoint(sealer, ledgerId, { height: 5, hash: 'c'.repeat(64) }, cp.parts, 'test'),
    ).rejects.toBeInstanceOf(IntegrityError);
    await expect(openCheckpoint(sealer, 'd'.repeat(64), cp, cp.parts, 'test')).rejects.toBeInstanceOf(IntegrityError);
    await expect(openCheckpoint(testSealer(), ledgerId, cp, cp.parts, 'test')).rejects.toBeInstanceOf(IntegrityError);
    // Untouched, it opens.
    expect((await open(cp, ledgerId)).state.totalProperties).toBe(3000);
  });

  it('decode refuses malformed lines and a digest that does not match', () => {
    const enc = encodeState(bigState(10));
    const chunks = [...enc.chunks];
    const good = new StateDecoder(5, 'test');
    for (const c of chunks) good.push(c);
    expect(() => good.finish({ digest: enc.digest(), properties: 11 })).toThrow(IntegrityError);
    for (const bad of ['"p1"\t1\n', 'p1\t1\t{}\n', '"p1"\tx\t{}\n', '"p1"\t1\t{}', '"p1"\t-1\t{}\n']) {
      expect(() => new StateDecoder(5, 'test').push(Buffer.from(bad)), bad).toThrow(IntegrityError);
    }
    const twice = new StateDecoder(5, 'test');
    expect(() => twice.push(Buffer.from('"p1"\t1\t{}\n"p1"\t1\t{}\n'))).toThrow(/twice/);
  });

  it('sealed beside saves, hold the state as it was when sealing began', async () => {
    const state = bigState(3000);
    const expected = stateDigest(state);
    const ts = '2026-01-01T00:00:00.000Z';
    let height = 5;
    const block = (transactions: Transaction[]): Block =>
      ({ index: ++height, timestamp: ts, transactions, previousHash: '', merkleRoot: '', hash: '' }) as Block;
    let pauses = 0;
    const cp = await sealCheckpointBeside(sealer, 'a'.repeat(64), 'b'.repeat(64), state, async () => {
      pauses++;
      // A property not yet read changes, one is transferred, a new one is registered: none may show.
      state.apply(
        block([
          { type: 'update', timestamp: ts, propertyId: 'p2999', changes: { name: `changed ${pauses}` } },
          {
            type: 'register',
            timestamp: ts,
            property: { id: `new${pauses}`, name: 'n', address: 'a', owner: 'o', attributes: {} },
          },
        ]),
      );
    });
    expect(pauses).toBeGreaterThan(2);
    expect(cp.height).toBe(5);
    const { state: back } = await open(cp, 'a'.repeat(64));
    expect(stateDigest(back)).toBe(expected);
    expect(back.get('new1')).toBeUndefined();
    expect(state.get('p2999')!.property.name).toBe(`changed ${pauses}`);
  });

  it('a snapshot read while blocks apply gives the state of its height, not later', () => {
    const chain = makeChain(sealer, 50);
    const state = stateAt(chain, 20);
    const expected = stateDigest(state);
    const snap = state.snapshot();
    const it = snap.entries();
    const first = it.next();
    for (let h = 21; h < 50; h++) state.apply(chain.blocks[h]!);
    const seen = new WorldState();
    seen.add(first.value!);
    for (const e of it) seen.add(e);
    snap.release();
    seen.setHeight(20);
    expect(stateDigest(seen)).toBe(expected);
    expect(stateDigest(state)).not.toBe(expected);
  });
});
