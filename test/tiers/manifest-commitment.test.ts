import { describe, expect, it } from 'vitest';
import { encodeManifestFile, manifestCommitment, openManifestFile } from '../../src/tiers/packs/format.js';
import { canonicalJson } from '../../src/ledger/canonical.js';
import { testSealer } from '../support/chain.js';

const sealer = testSealer();
const head = { ledgerId: 'a'.repeat(64), height: 41, headHash: 'b'.repeat(64) };
const root = 'c'.repeat(64);
const body = (extra: Record<string, unknown> = {}) => Buffer.from(canonicalJson({ version: 2, ...head, ...extra }));

describe('a manifest commits in the clear to the chain it names', () => {
  it('carries (ledger, height, head hash, root) readable without the key', () => {
    const file = encodeManifestFile(sealer, { ...head, root }, body({ root }));
    expect(manifestCommitment(file)).toEqual({ ...head, root });
    expect(openManifestFile(sealer, 'm', file)).toMatchObject({ ...head, root });
  });

  it('refuses a root in the clear that is not the one under the seal, whichever byte changed', () => {
    const file = encodeManifestFile(sealer, { ...head, root }, body({ root }));
    for (const at of [77, 90, 108]) {
      const edited = Buffer.from(file);
      edited[at]! ^= 0x01;
      expect(() => openManifestFile(sealer, 'm', edited)).toThrow(/root in the clear/);
    }
  });

  it('still writes and opens a manifest without a root (records made before the accumulator)', () => {
    const file = encodeManifestFile(sealer, head, body());
    expect(file[4]).toBe(1);
    expect(manifestCommitment(file)).toEqual(head);
    expect(openManifestFile(sealer, 'm', file)).toMatchObject(head);
  });

  it('refuses a root that is not 64 hex digits, and a file that is not a manifest', () => {
    expect(() => encodeManifestFile(sealer, { ...head, root: 'xyz' }, body())).toThrow(/64 hex/);
    expect(() => manifestCommitment(Buffer.from('PWLM\u0003'))).toThrow(/not a pawledger manifest/);
  });
});
