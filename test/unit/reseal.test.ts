/**
 * Key rotation object by object (src/crypto/reseal.ts): every kind of sealed object comes back under the active key,
 * opening with the new key alone and no longer with the old one, its place (height, hash, part index) unchanged; an
 * object already under the active key is returned as it is; an object the keyring cannot open is refused, never
 * sealed again.
 */
import { describe, expect, it } from 'vitest';
import { openCheckpoint, sealCheckpoint } from '../../src/crypto/checkpoints.js';
import { generateKey, parseKey } from '../../src/crypto/key.js';
import { openPack, sealPack } from '../../src/crypto/packs.js';
import { checkRecord, sealRecord } from '../../src/crypto/records.js';
import {
  keyIdOf,
  needsReseal,
  resealBlock,
  resealCheckpoint,
  resealPack,
  resealRecord,
} from '../../src/crypto/reseal.js';
import { Sealer } from '../../src/crypto/seal.js';
import { openBody, sealBlock } from '../../src/crypto/sealed-blocks.js';
import { IntegrityError } from '../../src/errors.js';
import { makeBlock } from '../../src/ledger/block.js';
import { WorldState } from '../../src/ledger/state.js';

const OLD = parseKey(generateKey());
const NEW = parseKey(generateKey());
const old = new Sealer(OLD);
const ring = new Sealer(NEW, [OLD]);
const fresh = new Sealer(NEW);
const LEDGER = 'a'.repeat(64);

describe('re-sealing under the active key', () => {
  it('a block: opens with the new key alone, not with the old, same height and hash', () => {
    const enc = makeBlock(null, [], '2026-01-01T00:00:00.000Z');
    const stored = sealBlock(old, LEDGER, enc);
    expect(needsReseal(ring, stored.sealed)).toBe(true);
    const again = resealBlock(ring, LEDGER, stored);
    expect([again.height, again.hash]).toEqual([stored.height, stored.hash]);
    expect(keyIdOf(again.sealed)).toBe(NEW.id);
    expect(needsReseal(ring, again.sealed)).toBe(false);
    expect(openBody(fresh, LEDGER, again)).toEqual(openBody(old, LEDGER, stored));
    expect(() => openBody(old, LEDGER, again)).toThrow(IntegrityError);
    // Already under the active key: the very same object back.
    expect(resealBlock(ring, LEDGER, again)).toBe(again);
  });

  it('a pack, a checkpoint part by part, and a backup record', async () => {
    const b0 = makeBlock(null, [], '2026-01-01T00:00:00.000Z');
    const b1 = makeBlock(b0.block, [], '2026-01-01T00:00:01.000Z');
    const entries = [b0, b1].map((e) => ({ height: e.block.index, hash: e.block.hash, body: e.body }));
    const pack = sealPack(old, LEDGER, entries);
    const packAgain = resealPack(ring, LEDGER, pack);
    expect(keyIdOf(packAgain.sealed)).toBe(NEW.id);
    expect(openPack(fresh, LEDGER, packAgain, 'test')).toEqual(openPack(old, LEDGER, pack, 'test'));

    const at = { height: 1, hash: b1.block.hash };
    const cp = sealCheckpoint(old, LEDGER, at.hash, WorldState.restore(1, []));
    const parts = cp.parts.map((p) => resealCheckpoint(ring, LEDGER, at, p));
    expect(parts.every((p) => !needsReseal(ring, p.subarray(8)))).toBe(true);
    const opened = await openCheckpoint(fresh, LEDGER, at, parts, 'test');
    expect(opened.summary.properties).toBe(0);
    await expect(openCheckpoint(old, LEDGER, at, parts, 'test')).rejects.toThrow(IntegrityError);

    const record = {
      ...sealRecord(old, {
        ledgerId: LEDGER,
        name: 'before-rotation',
        kind: 'manual' as const,
        createdAt: new Date('2026-01-01T00:00:00Z'),
        createdBy: null,
        height: 1,
        headHash: b1.block.hash,
        sizeBytes: 10,
      }),
      id: '7',
      tier: 'db',
      protected: false,
    };
    const recordAgain = resealRecord(ring, record);
    expect(keyIdOf(recordAgain.seal)).toBe(NEW.id);
    expect(() => checkRecord(fresh, recordAgain)).not.toThrow();
    expect(() => checkRecord(old, recordAgain)).toThrow(IntegrityError);
    // An edited record does not open, so it is not sealed again.
    expect(() => resealRecord(ring, { ...record, height: 2 })).toThrow(IntegrityError);
  });

  it('refuses an object under a key the keyring lacks, naming the key it needs', () => {
    const other = parseKey(generateKey());
    const stored = sealBlock(new Sealer(other), LEDGER, makeBlock(null, [], '2026-01-01T00:00:00.000Z'));
    expect(() => resealBlock(ring, LEDGER, stored)).toThrow(other.id);
  });
});
