import { describe, expect, it } from 'vitest';
import { encodeBody, makeBlock } from '../../src/ledger/block.js';
import { canonicalJson } from '../../src/ledger/canonical.js';
import { encodedTransactions, merkleRoot, merkleRootOfEncoded } from '../../src/ledger/merkle.js';
import type { Transaction } from '../../src/ledger/types.js';

const ts = '2026-01-01T00:00:00.000Z';
const tricky: Transaction[] = [
  {
    type: 'register',
    timestamp: ts,
    property: { id: 'a', name: 'Comma, "quote" and ] bracket', address: 'x\\y', owner: 'o', attributes: {} },
  },
  {
    type: 'register',
    timestamp: ts,
    property: {
      id: 'b',
      name: 'n',
      address: 'a',
      owner: 'o',
      attributes: { transactions: [{ nested: '],[' }], '{': '}' },
    },
  },
  {
    type: 'update',
    timestamp: ts,
    propertyId: 'a',
    changes: { attributes: { list: [1, [2, [3]]], emoji: '😀', empty: {} } },
  },
  { type: 'transfer', timestamp: ts, propertyId: 'a', from: 'o', to: 'p' },
];

describe('Merkle roots from the stored bytes', () => {
  it("finds each transaction's canonical bytes inside a block body, whatever the strings and nesting hold", () => {
    for (let n = 0; n <= tricky.length; n++) {
      const { body } = makeBlock(null, tricky.slice(0, n), ts);
      const slices = encodedTransactions(body)!;
      expect(slices.map((b) => Buffer.from(b).toString('utf8'))).toEqual(
        tricky.slice(0, n).map((tx) => canonicalJson(tx)),
      );
      expect(merkleRootOfEncoded(slices)).toBe(merkleRoot(tricky.slice(0, n)));
    }
  });

  it('gives no slices for a body that is not a canonical block', () => {
    expect(encodedTransactions(Buffer.from('{"index":1}'))).toBeNull();
    const body = encodeBody({
      index: 1,
      timestamp: ts,
      transactions: tricky,
      previousHash: '0'.repeat(64),
      merkleRoot: '0'.repeat(64),
    });
    expect(encodedTransactions(body.subarray(0, body.length - 5))).toBeNull();
  });
});
