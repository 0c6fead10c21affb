/**
 * Sealed objects and keys (docs/FORMAT.md, "Sealed objects"): what opens, what must not, and what the errors say.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateKey, parseKey } from '../../src/crypto/key.js';
import { OVERHEAD, Sealer, type SealContext } from '../../src/crypto/seal.js';
import { describeError } from '../../src/errors.js';
import { thrown } from '../support/errors.js';

const ctx: SealContext = { ledgerId: 'ab'.repeat(32), kind: 'block', height: 7, hash: 'cd'.repeat(32) };
/** NAME is how an error must name the object sealed under ctx (kind, height and the start of its hash). */
const NAME = `block 7 (${'cd'.repeat(8)})`;

describe('seal and open', () => {
  const sealer = new Sealer(parseKey(generateKey()));

  it('round-trips any plaintext, including an empty one, and never stores it in the clear', () => {
    for (const text of ['', 'x', '{"name":"Casa Azul","owner":"Marguerite"}', 'é'.repeat(5000)]) {
      const plain = Buffer.from(text, 'utf8');
      const sealed = sealer.seal(ctx, plain);
      expect(sealed.length).toBe(plain.length + OVERHEAD);
      expect(sealed.subarray(0, 4).toString('latin1')).toBe('PWLS');
      expect(sealed.subarray(6, 10).toString('hex')).toBe(sealer.keyId);
      if (text.length > 4) expect(sealed.includes(plain)).toBe(false);
      expect(sealer.open(ctx, sealed).equals(plain)).toBe(true);
    }
  });

  it('refuses another key with INTEGRITY naming both key ids and saying which variable to fix', () => {
    const keyA = generateKey();
    const keyB = generateKey();
    const a = new Sealer(parseKey(keyA));
    const b = new Sealer(parseKey(keyB));
    const err = thrown(() => b.open(ctx, a.seal(ctx, Buffer.from('secret'))));
    expect(err.code).toBe('INTEGRITY');
    expect(err.message).toContain(a.keyId);
    expect(err.message).toContain(b.keyId);
    expect(err.message).toContain(NAME);
    const text = describeError(err);
    expect(text).toContain('LEDGER_ENCRYPTION_KEY');
    for (const k of [keyA, keyB]) {
      expect(text).not.toContain(k);
      expect(text).not.toContain(Buffer.from(k, 'base64').toString('hex'));
    }
  });

  it('refuses every single-byte change of a sealed object with INTEGRITY naming the object', () => {
    const sealed = sealer.seal(ctx, Buffer.from('hello'));
    let checked = 0;
    for (let i = 0; i < sealed.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const bad = Buffer.from(sealed);
        bad[i]! ^= mask;
        const err = thrown(() => sealer.open(ctx, bad, 'segment test.seg'));
        expect(err.code, `byte ${i} ^ ${mask}`).toBe('INTEGRITY');
        expect(err.message, `byte ${i} ^ ${mask}`).toContain(NAME);
        expect(err.message).toContain('segment test.seg');
        checked++;
      }
    }
    expect(checked).toBe((5 + OVERHEAD) * 3);
  });

  it.each([
    ['ledgerId', { ...ctx, ledgerId: 'ef'.repeat(32) }],
    ['kind', { ...ctx, kind: 'export' as const }],
    ['height', { ...ctx, height: 8 }],
    ['hash', { ...ctx, hash: `${'cd'.repeat(31)}ce` }],
  ])('refuses the object under another %s with INTEGRITY', (_field, other) => {
    const sealed = sealer.seal(ctx, Buffer.from('block body'));
    const err = thrown(() => sealer.open(other, sealed));
    expect(err.code).toBe('INTEGRITY');
    expect(err.message).toMatch(/altered/);
  });

  it('refuses the object cut short at any length, or with a byte appended', () => {
    const sealed = sealer.seal(ctx, Buffer.from('hello world'));
    for (let n = 0; n < sealed.length; n++) {
      const err = thrown(() => sealer.open(ctx, sealed.subarray(0, n)));
      expect(err.code, `cut to ${n} bytes`).toBe('INTEGRITY');
      expect(err.message).toContain(NAME);
    }
    expect(thrown(() => sealer.open(ctx, Buffer.concat([sealed, Buffer.from([0])])))).toMatchObject({
      code: 'INTEGRITY',
    });
  });

  it('uses a fresh nonce for every seal, across many seals of the same plaintext', () => {
    const plain = Buffer.from('same plaintext');
    const nonces = new Set<string>();
    const bodies = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const sealed = sealer.seal(ctx, plain);
      nonces.add(sealed.subarray(10, 22).toString('hex'));
      bodies.add(sealed.subarray(22).toString('hex'));
      if (i % 97 === 0) expect(sealer.open(ctx, sealed).equals(plain)).toBe(true);
    }
    expect(nonces.size).toBe(1000);
    expect(bodies.size).toBe(1000);
  });
});

describe('parseKey', () => {
  // 0xfb 0xfb 0xfb is "+/v7" in base64 and "-_v7" in its url-safe form; 0xff 0xff 0xff is "////".
  const bytes = Buffer.concat([Buffer.alloc(15, 0xfb), Buffer.alloc(17, 0xff)]);
  const b64 = bytes.toString('base64');

  it.each([
    ['lowercase hex', bytes.toString('hex')],
    ['uppercase hex', bytes.toString('hex').toUpperCase()],
    ['base64 with padding', b64],
    ['base64 without padding', b64.replace(/=+$/, '')],
    ['url-safe base64 with padding', b64.replace(/\+/g, '-').replace(/\//g, '_')],
    ['url-safe base64 without padding', bytes.toString('base64url')],
    ['a key file line with whitespace', `  ${b64}\n`],
  ])('accepts %s', (_form, text) => {
    expect(b64).toMatch(/\+/);
    const key = parseKey(text);
    expect(key.bytes.equals(bytes)).toBe(true);
    expect(key.id).toBe(parseKey(bytes.toString('hex')).id);
    expect(key.id).toMatch(/^[0-9a-f]{8}$/);
  });

  it.each([
    ['31 bytes of hex', randomBytes(31).toString('hex')],
    ['33 bytes of hex', randomBytes(33).toString('hex')],
    ['63 hex digits', randomBytes(32).toString('hex').slice(1)],
    ['31 bytes of base64', randomBytes(31).toString('base64')],
    ['33 bytes of base64', randomBytes(33).toString('base64')],
    ['64 bytes of base64', randomBytes(64).toString('base64')],
    ['16 bytes of base64', randomBytes(16).toString('base64')],
    ['a passphrase', 'correct horse battery staple, my ledger pass'],
    ['64 non-hex characters', 'z'.repeat(64)],
  ])('refuses %s with CONFIG, without echoing it', (_what, text) => {
    const err = thrown(() => parseKey(text));
    expect(err.code).toBe('CONFIG');
    expect(err.message).toContain('LEDGER_ENCRYPTION_KEY');
    const said = describeError(err);
    expect(said).toContain('keygen');
    expect(said).not.toContain(text);
    expect(said).not.toContain(text.slice(0, 12));
    expect(said).not.toContain(text.slice(-12));
  });

  it('names the key file it was read from', () => {
    expect(thrown(() => parseKey('short', '/data/ledger.key')).message).toContain('/data/ledger.key');
  });

  it('accepts what keygen prints, and keygen never repeats', () => {
    const keys = Array.from({ length: 20 }, () => generateKey());
    for (const k of keys) expect(parseKey(k).bytes.length).toBe(32);
    expect(new Set(keys).size).toBe(20);
    expect(new Set(keys.map((k) => parseKey(k).id)).size).toBe(20);
  });
});
