import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { generateKey, parseKey, parseKeyList } from '../../src/crypto/key.js';
import { Sealer, sealedKeyId } from '../../src/crypto/seal.js';
import { ConfigError, IntegrityError } from '../../src/errors.js';
import { Ledger } from '../../src/service/ledger.js';
import { LocalStore } from '../../src/store/local-store.js';
import { captureLogger, tempDir } from '../support/durability.js';

const OLD = generateKey();
const NEW = generateKey();
const ctx = { ledgerId: 'l', kind: 'block' as const, height: 1, hash: 'h' };

describe('the keyring: LEDGER_ENCRYPTION_KEY seals, LEDGER_PREVIOUS_KEYS open older objects', () => {
  it('opens an object sealed with a previous key and seals new ones with the active key', () => {
    const old = new Sealer(parseKey(OLD));
    const sealed = old.seal(ctx, Buffer.from('older'));
    const ring = new Sealer(parseKey(NEW), [parseKey(OLD)]);
    expect(ring.open(ctx, sealed).toString()).toBe('older');
    const fresh = ring.seal(ctx, Buffer.from('newer'));
    expect(sealedKeyId(fresh)).toBe(parseKey(NEW).id);
    expect(sealedKeyId(sealed)).toBe(parseKey(OLD).id);
    expect(ring.keyIds).toEqual([parseKey(NEW).id, parseKey(OLD).id]);
    expect(ring.previousKeyIds).toEqual([parseKey(OLD).id]);
    // The old key alone cannot open what the new one sealed.
    expect(() => old.open(ctx, fresh)).toThrow(IntegrityError);
  });

  it('names the key id an object needs and the ids the keyring holds, and how to fix it', () => {
    const third = generateKey();
    const sealed = new Sealer(parseKey(third)).seal(ctx, Buffer.from('x'));
    const ring = new Sealer(parseKey(NEW), [parseKey(OLD)]);
    const err = (() => {
      try {
        ring.open(ctx, sealed);
      } catch (e) {
        return e as IntegrityError;
      }
      throw new Error('opened');
    })();
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.message).toContain(`sealed with key ${parseKey(third).id}`);
    expect(err.message).toContain(`${parseKey(NEW).id} (active)`);
    expect(err.message).toContain(`${parseKey(OLD).id} (previous)`);
    expect(err.hint).toContain('LEDGER_PREVIOUS_KEYS');
    // No key material in the message.
    for (const k of [third, NEW, OLD]) expect(`${err.message} ${err.hint}`).not.toContain(k);
  });

  it('a changed byte still fails authentication with a previous key', () => {
    const sealed = new Sealer(parseKey(OLD)).seal(ctx, Buffer.from('older'));
    sealed[sealed.length - 1]! ^= 1;
    expect(() => new Sealer(parseKey(NEW), [parseKey(OLD)]).open(ctx, sealed)).toThrow(/failed authentication/);
  });

  it('reads LEDGER_PREVIOUS_KEYS as comma-separated hex or base64 keys, naming a bad entry by position only', () => {
    const hex = parseKey(OLD).bytes.toString('hex');
    expect(parseKeyList(` ${hex} , ${NEW},`).map((k) => k.id)).toEqual([parseKey(OLD).id, parseKey(NEW).id]);
    expect(parseKeyList(undefined)).toEqual([]);
    expect(parseKeyList('  ')).toEqual([]);
    const secretish = 'not-a-key-but-maybe-a-password';
    expect(() => parseKeyList(`${OLD},${secretish}`)).toThrow(ConfigError);
    expect(() => parseKeyList(`${OLD},${secretish}`)).toThrow(/LEDGER_PREVIOUS_KEYS entry 2/);
    try {
      parseKeyList(`${OLD},${secretish}`);
    } catch (e) {
      expect((e as Error).message).not.toContain(secretish);
    }
  });

  it("a worker thread's Sealer has the whole keyring", () => {
    const ring = new Sealer(parseKey(NEW), [parseKey(OLD)]);
    const copy = Sealer.fromWorker(structuredClone(ring.forWorker()));
    const sealed = new Sealer(parseKey(OLD)).seal(ctx, Buffer.from('older'));
    expect(copy.open(ctx, sealed).toString()).toBe('older');
    expect(copy.keyId).toBe(ring.keyId);
  });
});

describe('a ledger under a new key with the old one in LEDGER_PREVIOUS_KEYS', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  const open = (dir: string, key: string, previous?: string) =>
    Ledger.open({
      config: {
        ...loadConfig({ LEDGER_DB: 'off' }),
        dataDir: join(dir, 'blocks'),
        encryptionKey: key,
        previousKeys: previous,
      },
      logger: captureLogger().logger,
    });

  it('opens, serves and extends a chain written under the old key; without the old key it refuses, naming it', async () => {
    const { dir, cleanup } = await tempDir('keyring');
    cleanups.push(cleanup);
    const first = await open(dir, OLD);
    await first.register({ id: 'dog-1', name: 'Kennel', address: '1 Bark St', owner: 'ann' });
    await first.exportTo(join(dir, 'old.export'));
    await first.close();

    const rotated = await open(dir, NEW, OLD);
    await expect(rotated.property('dog-1')).resolves.toMatchObject({ property: { owner: 'ann' } });
    await rotated.transfer('dog-1', { from: 'ann', to: 'bob' });
    await rotated.close();

    const { store } = await LocalStore.open(join(dir, 'blocks'), { readOnly: true });
    const ids: string[] = [];
    for await (const page of store.readPages()) {
      if ('blocks' in page) for (const b of page.blocks) ids.push(sealedKeyId(b.sealed)!);
    }
    await store.close();
    // Blocks 0 and 1 under the old key, the transfer under the new one.
    expect(ids).toEqual([parseKey(OLD).id, parseKey(OLD).id, parseKey(NEW).id]);

    await expect(open(dir, NEW)).rejects.toThrow(new RegExp(`sealed with key ${parseKey(OLD).id}`));

    // An export made under the old key imports while that key is in the keyring.
    const { dir: other, cleanup: c2 } = await tempDir('keyring-import');
    cleanups.push(c2);
    const importer = await open(other, NEW, OLD);
    await importer.importFrom(join(dir, 'old.export'), { force: true });
    expect((await importer.property('dog-1')).property.owner).toBe('ann');
    await importer.close();
  });
});
