/**
 * The ledger core against docs/FORMAT.md: canonical JSON, block hashes, RFC 6962 Merkle roots (expected values are
 * computed here from the spec with node:crypto, not with src/), the world-state rules, chain verification and the
 * parsing of untrusted transaction input.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeBody, makeBlock } from '../../src/ledger/block.js';
import { canonicalJson } from '../../src/ledger/canonical.js';
import { merkleRoot } from '../../src/ledger/merkle.js';
import { WorldState } from '../../src/ledger/state.js';
import { LIMITS, parseRegister, parseTransfer, parseUpdate } from '../../src/ledger/transactions.js';
import type { Block, Transaction } from '../../src/ledger/types.js';
import { verifyChain } from '../../src/ledger/verify.js';
import { thrown } from '../support/errors.js';

const TS = '2026-01-01T00:00:00.000Z';
const ZEROS = '0'.repeat(64);

const sha256 = (...parts: (Buffer | string)[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

function register(id: string, owner = 'ann', attributes: Record<string, unknown> = {}): Transaction {
  return {
    type: 'register',
    timestamp: TS,
    property: { id, name: `Casa ${id}`, address: `${id} Main St`, owner, attributes: attributes as never },
  };
}

function transfer(id: string, from: string, to: string): Transaction {
  return { type: 'transfer', timestamp: TS, propertyId: id, from, to };
}

function update(id: string, changes: Record<string, unknown>): Transaction {
  return { type: 'update', timestamp: TS, propertyId: id, changes: changes as never };
}

/** chainOf builds genesis plus one block per transaction list. */
function chainOf(...txLists: Transaction[][]): Block[] {
  const blocks: Block[] = [makeBlock(null, [], TS).block];
  for (const txs of txLists) blocks.push(makeBlock(blocks.at(-1)!, txs, TS).block);
  return blocks;
}

describe('canonical JSON', () => {
  it('sorts keys by UTF-16 code unit at every depth, keeps array order, and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x y' } })).toBe(
      '{"a":{"c":"x y","d":[3,{"y":2,"z":1}]},"b":1}',
    );
    // U+1F600 is the surrogate pair D83D DE00: by UTF-16 code unit it sorts before U+FF5E (by code point it would not).
    expect(canonicalJson({ '\uff5e': 1, '\u{1f600}': 2, Z: 3, a: 4, é: 5 })).toBe(
      '{"Z":3,"a":4,"é":5,"\u{1f600}":2,"\uff5e":1}',
    );
  });

  it('writes strings and numbers as JSON.stringify does and omits undefined members', () => {
    expect(canonicalJson({ n: 1e21, m: -0, f: 0.1 + 0.2, i: 10, s: 'a"b\\\n', u: undefined, t: true, z: null })).toBe(
      '{"f":0.30000000000000004,"i":10,"m":0,"n":1e+21,"s":"a\\"b\\\\\\n","t":true,"z":null}',
    );
    expect(canonicalJson(Object.assign(Object.create(null) as object, { b: 2, a: 1 }))).toBe('{"a":1,"b":2}');
  });

  it('gives the same text whatever order the keys were inserted in', () => {
    const one = { id: 'p1', nested: { x: 1, y: [1, 2] }, name: 'n' };
    const two = { name: 'n', nested: { y: [1, 2], x: 1 }, id: 'p1' };
    expect(canonicalJson(two)).toBe(canonicalJson(one));
  });

  it.each([
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity nested', { a: [1, { b: -Infinity }] }],
    ['undefined in an array', [1, undefined, 3]],
    // A hole reads as undefined: written as "[1,,3]" it would store a block that is not JSON at all.
    // eslint-disable-next-line no-sparse-arrays
    ['a hole in an array', [1, , 3]],
    [
      'a class instance',
      new (class Point {
        x = 1;
        y = 2;
      })(),
    ],
    ['a Date', { at: new Date(0) }],
    ['a Map', new Map([['a', 1]])],
    ['a bigint', { n: 10n }],
    ['a function', { f: () => 1 }],
    ['undefined at the top', undefined],
  ])('refuses %s', (_what, value) => {
    expect(() => canonicalJson(value)).toThrow(TypeError);
  });
});

describe('block hash', () => {
  it('is the SHA-256 of the canonical body, byte for byte as documented', () => {
    const genesis = makeBlock(null, [], TS);
    const emptyRoot = sha256('').toString('hex');
    const genesisBody = `{"index":0,"merkleRoot":"${emptyRoot}","previousHash":"${ZEROS}","timestamp":"${TS}","transactions":[]}`;
    expect(genesis.body.toString('utf8')).toBe(genesisBody);
    expect(genesis.block.hash).toBe(sha256(genesisBody).toString('hex'));

    const tx = transfer('p1', 'ann', 'bob');
    const next = makeBlock(genesis.block, [tx], '2026-01-01T00:00:01.000Z');
    const txJson = `{"from":"ann","propertyId":"p1","timestamp":"${TS}","to":"bob","type":"transfer"}`;
    const root = sha256(Buffer.from([0]), txJson).toString('hex');
    const body = `{"index":1,"merkleRoot":"${root}","previousHash":"${genesis.block.hash}","timestamp":"2026-01-01T00:00:01.000Z","transactions":[${txJson}]}`;
    expect(next.body.toString('utf8')).toBe(body);
    expect(next.block.hash).toBe(sha256(body).toString('hex'));
    expect(next.block.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('does not depend on the key order of the input objects', () => {
    const genesis = makeBlock(null, [], TS).block;
    const a: Transaction = {
      type: 'register',
      timestamp: TS,
      property: { id: 'p1', name: 'n', address: 'a', owner: 'o', attributes: { beds: 3, pool: true } },
    };
    const b = JSON.parse(
      '{"property":{"attributes":{"pool":true,"beds":3},"owner":"o","address":"a","name":"n","id":"p1"},"timestamp":"2026-01-01T00:00:00.000Z","type":"register"}',
    ) as Transaction;
    const ba = makeBlock(genesis, [a], TS);
    const bb = makeBlock(genesis, [b], TS);
    expect(bb.block.hash).toBe(ba.block.hash);
    expect(bb.body.equals(ba.body)).toBe(true);
  });

  it('is recovered from the stored bytes by decodeBody, which hashes what it read', () => {
    const enc = makeBlock(makeBlock(null, [], TS).block, [register('p1', 'ann', { beds: 3 })], TS);
    expect(decodeBody(enc.body)).toEqual(enc.block);
    const edited = Buffer.from(enc.body.toString('utf8').replace('"beds":3', '"beds":4'));
    expect(decodeBody(edited).hash).not.toBe(enc.block.hash);
  });
});

describe('Merkle root (RFC 6962)', () => {
  const txs = [0, 1, 2, 3, 4].map((i) => transfer(`p${i}`, 'ann', 'bob'));
  const leaf = (i: number) =>
    sha256(Buffer.from([0]), `{"from":"ann","propertyId":"p${i}","timestamp":"${TS}","to":"bob","type":"transfer"}`);
  const node = (l: Buffer, r: Buffer) => sha256(Buffer.from([1]), l, r);
  const [l0, l1, l2, l3, l4] = [0, 1, 2, 3, 4].map(leaf) as [Buffer, Buffer, Buffer, Buffer, Buffer];

  it.each([
    [0, () => sha256('')],
    [1, () => l0],
    [2, () => node(l0, l1)],
    [3, () => node(node(l0, l1), l2)],
    [5, () => node(node(node(l0, l1), node(l2, l3)), l4)],
  ])('matches the spec for %i transactions', (n, expected) => {
    expect(merkleRoot(txs.slice(0, n))).toBe(expected().toString('hex'));
  });

  it('changes when two transactions swap places', () => {
    expect(merkleRoot([txs[1]!, txs[0]!])).toBe(node(l1, l0).toString('hex'));
    expect(merkleRoot([txs[1]!, txs[0]!])).not.toBe(merkleRoot(txs.slice(0, 2)));
  });
});

describe('WorldState', () => {
  function stateOf(...txLists: Transaction[][]): WorldState {
    const state = new WorldState();
    for (const b of chainOf(...txLists)) state.apply(b);
    return state;
  }

  it('refuses to register an id twice, as a CONFLICT on field id, in another block or the same one', () => {
    const state = stateOf([register('p1')]);
    const again = makeBlock(chainOf([register('p1')]).at(-1)!, [register('p1', 'bob')], TS).block;
    expect(thrown(() => state.apply(again))).toMatchObject({ code: 'CONFLICT', field: 'id' });
    expect(thrown(() => new WorldState().check([register('p9'), register('p9')]))).toMatchObject({
      code: 'CONFLICT',
      field: 'id',
    });
    expect(state.get('p1')!.property.owner).toBe('ann');
  });

  it('refuses to update or transfer a property that is not registered (NOT_FOUND)', () => {
    const state = stateOf([register('p1')]);
    expect(thrown(() => state.check([update('nope', { name: 'x' })]))).toMatchObject({ code: 'NOT_FOUND' });
    expect(thrown(() => state.check([transfer('nope', 'ann', 'bob')]))).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses a transfer whose from is not the owner, as a CONFLICT on field from', () => {
    const state = stateOf([register('p1', 'ann')], [transfer('p1', 'ann', 'bob')]);
    expect(state.get('p1')!.property.owner).toBe('bob');
    expect(thrown(() => state.check([transfer('p1', 'ann', 'carl')]))).toMatchObject({
      code: 'CONFLICT',
      field: 'from',
    });
  });

  it('merges attributes as RFC 7396: null removes a key, others are set, name and address only when given', () => {
    const state = stateOf(
      [register('p1', 'ann', { beds: 3, pool: true, tags: ['a'] })],
      [update('p1', { attributes: { pool: null, beds: 4, garden: { m2: 20 } } })],
      [update('p1', { address: '2 Side St' })],
    );
    const { property, blocks } = state.get('p1')!;
    expect(property).toEqual({
      id: 'p1',
      name: 'Casa p1',
      address: '2 Side St',
      owner: 'ann',
      attributes: { beds: 4, tags: ['a'], garden: { m2: 20 } },
    });
    expect(blocks).toEqual([1, 2, 3]);
  });

  it('leaves the state exactly as it was when one transaction of a block fails', () => {
    const chain = chainOf([register('p1', 'ann', { beds: 3 })]);
    const state = new WorldState();
    for (const b of chain) state.apply(b);
    const before = JSON.stringify({ list: state.list(), p1: state.get('p1'), height: state.height });
    const bad = makeBlock(
      chain.at(-1)!,
      [register('p2'), update('p1', { attributes: { beds: 9 } }), transfer('p1', 'mallory', 'bob')],
      TS,
    ).block;
    expect(thrown(() => state.apply(bad))).toMatchObject({ code: 'CONFLICT', field: 'from' });
    expect(JSON.stringify({ list: state.list(), p1: state.get('p1'), height: state.height })).toBe(before);
    expect(state.get('p2')).toBeUndefined();
    // The same height still takes a good block.
    state.apply(makeBlock(chain.at(-1)!, [register('p2')], TS).block);
    expect(state.list().map((p) => p.id)).toEqual(['p1', 'p2']);
    expect(state.height).toBe(2);
  });
});

describe('verifyChain', () => {
  const chain = chainOf([register('p1')], [register('p2')], [transfer('p1', 'ann', 'bob')], [register('p3')]);
  const copy = () => structuredClone(chain);

  it('accepts an untouched chain and reports its head', () => {
    expect(verifyChain(chain)).toEqual({ ok: true, totalBlocks: 5, headHash: chain[4]!.hash });
  });

  it('names the first block whose transaction was changed: its Merkle root no longer matches', () => {
    const c = copy();
    (c[2]!.transactions[0] as { property: { owner: string } }).property.owner = 'mallory';
    (c[4]!.transactions[0] as { property: { owner: string } }).property.owner = 'mallory';
    const r = verifyChain(c);
    expect(r).toMatchObject({ ok: false, index: 2 });
    expect(!r.ok && r.reason).toMatch(/^block 2 .*Merkle root/);
  });

  it('names a block whose transaction and Merkle root were both changed: its hash no longer matches', () => {
    const c = copy();
    (c[2]!.transactions[0] as { property: { owner: string } }).property.owner = 'mallory';
    c[2]!.merkleRoot = merkleRoot(c[2]!.transactions);
    const r = verifyChain(c);
    expect(r).toMatchObject({ ok: false, index: 2 });
    expect(!r.ok && r.reason).toMatch(/^block 2 has hash .*contents hash to/);
  });

  it('names the next block when a block was rewritten in full: the link breaks', () => {
    const c = copy();
    const forged = makeBlock(c[1]!, [register('p2', 'mallory')], TS).block;
    c[2] = forged;
    const r = verifyChain(c);
    expect(r).toMatchObject({ ok: false, index: 3 });
    expect(!r.ok && r.reason).toMatch(/^block 3 links to previous hash/);
  });

  it('names a block whose previousHash was changed', () => {
    const c = copy();
    c[3]!.previousHash = 'f'.repeat(64);
    const r = verifyChain(c);
    expect(r).toMatchObject({ ok: false, index: 3 });
    expect(!r.ok && r.reason).toContain('block 3 links to previous hash ffffffffffffffff');
    const g = copy();
    g[0]!.previousHash = '1'.repeat(64);
    expect(verifyChain(g)).toMatchObject({ ok: false, index: 0 });
  });

  it('names a block whose stored hash was changed', () => {
    const c = copy();
    c[1]!.hash = 'a'.repeat(64);
    const r = verifyChain(c);
    expect(r).toMatchObject({ ok: false, index: 1 });
    expect(!r.ok && r.reason).toMatch(/^block 1 has hash aaaaaaaaaaaaaaaa, but its contents hash to/);
  });

  it('names a block with the wrong index, and reordered blocks', () => {
    const c = copy();
    c[2]!.index = 7;
    const r = verifyChain(c);
    expect(r).toMatchObject({ ok: false, index: 2 });
    expect(!r.ok && r.reason).toContain('block 2 has index 7, expected 2');

    const swapped = copy();
    [swapped[2], swapped[3]] = [swapped[3]!, swapped[2]!];
    const s = verifyChain(swapped);
    expect(s).toMatchObject({ ok: false, index: 2 });
    expect(!s.ok && s.reason).toContain('has index 3, expected 2');
  });
});

describe('transaction parsing', () => {
  const good = { id: 'p1', name: 'Casa Azul', address: '1 Main St', owner: 'ann' };
  const field = (fn: () => unknown) => {
    const err = thrown(fn);
    expect(err.code, err.message).toBe('VALIDATION');
    return err.field;
  };

  it('accepts ids of 1-128 of A-Za-z0-9._:- starting with a letter or digit, and trims text', () => {
    for (const id of ['a', '9', 'A.b_c:d-e', 'x'.repeat(128)]) {
      expect(parseRegister({ ...good, id }, TS)).toMatchObject({ type: 'register', property: { id } });
    }
    expect(parseRegister({ ...good, name: '  Casa  ' }, TS)).toMatchObject({
      property: { name: 'Casa', attributes: {} },
    });
  });

  it.each(['', '-p1', '.p1', 'p 1', 'p/1', 'p\u00e9', 'x'.repeat(129), 42])(
    'refuses the id %j, naming field id',
    (id) => {
      expect(field(() => parseRegister({ ...good, id }, TS))).toBe('id');
      expect(field(() => parseTransfer(id, { from: 'a', to: 'b' }, TS))).toBe('id');
    },
  );

  it('names the field that is empty, missing, too long or unknown', () => {
    expect(field(() => parseRegister({ ...good, name: '' }, TS))).toBe('name');
    expect(field(() => parseRegister({ ...good, name: '   ' }, TS))).toBe('name');
    expect(field(() => parseRegister({ ...good, address: undefined }, TS))).toBe('address');
    expect(field(() => parseRegister({ ...good, owner: 'o'.repeat(LIMITS.maxText + 1) }, TS))).toBe('owner');
    expect(field(() => parseRegister({ ...good, colour: 'blue' }, TS))).toBe('colour');
    expect(field(() => parseUpdate('p1', { owner: 'bob' }, TS))).toBe('owner');
    expect(field(() => parseTransfer('p1', { from: 'ann', to: '' }, TS))).toBe('to');
    expect(field(() => parseTransfer('p1', { to: 'bob' }, TS))).toBe('from');
  });

  it('refuses attributes that are too large or have too many keys', () => {
    expect(
      field(() => parseRegister({ ...good, attributes: { blob: 'x'.repeat(LIMITS.maxAttributesBytes) } }, TS)),
    ).toBe('attributes');
    const many = Object.fromEntries(Array.from({ length: LIMITS.maxAttributeKeys + 1 }, (_, i) => [`k${i}`, i]));
    expect(field(() => parseRegister({ ...good, attributes: many }, TS))).toBe('attributes');
    expect(field(() => parseUpdate('p1', { attributes: many }, TS))).toBe('attributes');
    expect(field(() => parseRegister({ ...good, attributes: [1, 2] }, TS))).toBe('attributes');
  });

  it('refuses attributes nested deeper than the limit, naming the path', () => {
    const nest = (levels: number): unknown => (levels === 0 ? 1 : { d: nest(levels - 1) });
    expect(parseRegister({ ...good, attributes: { shallow: nest(3) } }, TS)).toMatchObject({ type: 'register' });
    expect(field(() => parseRegister({ ...good, attributes: { deep: nest(LIMITS.maxDepth * 4) } }, TS))).toMatch(
      /^attributes\.deep\.d\.d/,
    );
    expect(field(() => parseUpdate('p1', { attributes: { deep: [[[[[[[[[[1]]]]]]]]]] } }, TS))).toMatch(
      /^attributes\.deep\[0\]/,
    );
  });

  it('refuses non-finite numbers and non-JSON values, naming the path', () => {
    expect(field(() => parseRegister({ ...good, attributes: { n: NaN } }, TS))).toBe('attributes.n');
    expect(field(() => parseRegister({ ...good, attributes: { list: [1, Infinity] } }, TS))).toBe('attributes.list[1]');
    expect(field(() => parseUpdate('p1', { attributes: { at: { when: -Infinity } } }, TS))).toBe('attributes.at.when');
    expect(field(() => parseRegister({ ...good, attributes: { f: () => 1 } }, TS))).toBe('attributes.f');
  });

  it('refuses an array with holes instead of sealing a block that is not JSON', () => {
    // A library caller can pass one; canonical JSON would render it "[1,,3]" and the ledger would not reopen.
    // eslint-disable-next-line no-sparse-arrays
    expect(field(() => parseRegister({ ...good, attributes: { list: [1, , 3] } }, TS))).toBe('attributes.list[1]');
  });

  it('does not silently drop or choke on an attribute named __proto__', () => {
    // JSON.parse makes "__proto__" an own key; copied with out[k] = v it would set the prototype instead.
    const input = JSON.parse(
      '{"id":"p1","name":"n","address":"a","owner":"o","attributes":{"__proto__":{"x":1},"beds":2}}',
    ) as unknown;
    const err = thrown(() => parseRegister(input, TS));
    expect(err.code, err.message).toBe('VALIDATION');
    expect(err.field).toBe('attributes.__proto__');
    // With a plain value the assignment is ignored: the attribute would vanish from an acknowledged save.
    const plain = JSON.parse(
      '{"id":"p1","name":"n","address":"a","owner":"o","attributes":{"__proto__":5}}',
    ) as unknown;
    expect(thrown(() => parseRegister(plain, TS))).toMatchObject({ code: 'VALIDATION', field: 'attributes.__proto__' });
  });

  it('keeps null in update attributes (it removes the key) but drops it on register', () => {
    expect(parseUpdate('p1', { attributes: { pool: null } }, TS)).toMatchObject({
      changes: { attributes: { pool: null } },
    });
    expect(parseRegister({ ...good, attributes: { pool: null, beds: 2 } }, TS)).toMatchObject({
      property: { attributes: { beds: 2 } },
    });
    expect(field(() => parseUpdate('p1', {}, TS))).toBeUndefined();
  });
});
