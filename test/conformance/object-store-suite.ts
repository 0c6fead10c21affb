import { createHash, randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  ConflictError,
  IntegrityError,
  NotFoundError,
  type PawledgerError,
  UnavailableError,
  ValidationError,
} from '../../src/errors.js';
import type { ObjectStore } from '../../src/objects/object-store.js';
import { retryingStore } from '../../src/objects/retry.js';
import { CHUNK_SIZE, computeCid, parseCid } from '../../src/objects/unixfs.js';

/** ObjectStoreSetup tells the suite what a store is and how to reach (and hurt) its test storage. */
export interface ObjectStoreSetup {
  /** contentAddressed: ids are CIDs of the bytes (IPFS); false for a named store (a folder, S3). */
  contentAddressed: boolean;
  /** list: the store implements list(). */
  list: boolean;
  /** empty: the store accepts an empty object. @default true */
  empty?: boolean;
  /**
   * create returns a new store object over the test storage. Every call must reach the same storage (so the suite
   * can check that a second object sees what the first put); cases keep apart by random bytes and key prefixes.
   */
  create(): ObjectStore | Promise<ObjectStore>;
  /** tamper alters the stored bytes of `id` behind the store's back (a flipped bit on disk, a damaged block). */
  tamper?(id: string): Promise<void>;
  /** unreachable returns a store whose service is down (a closed port): every call must throw UnavailableError. */
  unreachable?(): ObjectStore | Promise<ObjectStore>;
  /**
   * failNext makes the service fail its next `count` requests with an error that may pass (429, 5xx), as an
   * overloaded service does.
   */
  failNext?(count: number): void;
  /** misconfigured returns a store only a configuration change can fix: every call must throw ConfigError with a hint. */
  misconfigured?(): ObjectStore | Promise<ObjectStore>;
  /** secrets (keys, tokens) must appear neither in the store's label nor in its errors. */
  secrets?: string[];
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const RAW = 0x55;
const DAG_PB = 0x70;

/** rejection returns what `p` rejects with, and fails the case if it resolves. */
async function rejection(p: Promise<unknown> | (() => Promise<unknown>)): Promise<Error> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const id of it) out.push(id);
  return out;
}

/**
 * objectStoreSuite registers the ObjectStore contract (src/objects/object-store.ts) as vitest cases against one
 * store. Cases that do not apply to it (content-addressed or named, with list or not, hooks not given) are skipped,
 * so the report shows what each store was not checked for.
 */
export function objectStoreSuite(name: string, setup: ObjectStoreSetup): void {
  const ca = setup.contentAddressed;
  const named = !ca;
  const emptyOk = setup.empty ?? true;

  describe(`object store contract: ${name}`, () => {
    let store: ObjectStore;
    let prefix: string;
    beforeEach(async () => {
      store = await setup.create();
      prefix = `t${randomBytes(6).toString('hex')}/`;
    });
    afterEach(async () => {
      await store.close();
    });

    /** put stores `bytes` under a key of this case's prefix and returns the id. */
    const put = (bytes: Uint8Array, key = 'obj.bin', label = `conformance ${key}`) =>
      store.put(bytes, { key: `${prefix}${key}`, label, keyvalues: { suite: 'conformance' } });
    /** absentId names an object no case ever stored. */
    const absentId = async () => (ca ? computeCid(randomBytes(48)) : `${prefix}never-stored.bin`);

    it('says what it is: a name, a label without secrets, contentAddressed and list as declared', () => {
      expect(store.name).toMatch(/^[a-z0-9-]+$/);
      expect(store.label).not.toBe('');
      for (const s of setup.secrets ?? []) expect(store.label).not.toContain(s);
      expect(store.contentAddressed).toBe(ca);
      expect(typeof store.list === 'function').toBe(setup.list);
    });

    const sizes: Array<[string, number, boolean]> = [
      ['a tiny object', 3, true],
      ['an empty object', 0, emptyOk],
      ['a multi-chunk object (several IPFS blocks)', 2 * CHUNK_SIZE + 1000, true],
    ];
    for (const [what, size, applies] of sizes) {
      it.skipIf(!applies)(`round-trips ${what}`, async () => {
        const bytes = randomBytes(size);
        const id = await put(bytes);
        expect((await store.get(id)).equals(bytes)).toBe(true);
        expect((await store.get(id, { sha256: sha256(bytes) })).equals(bytes)).toBe(true);
      });
    }

    it.skipIf(!ca)('returns the CIDv1 (raw leaves, 256 KiB chunks) of the bytes as the id', async () => {
      for (const [size, codec] of [
        [10, RAW],
        [2 * CHUNK_SIZE + 1000, DAG_PB],
      ] as const) {
        const bytes = randomBytes(size);
        const id = await put(bytes, `obj-${size}.bin`);
        expect(id).toBe(await computeCid(bytes));
        expect(parseCid(id).version).toBe(1);
        expect(parseCid(id).code).toBe(codec); // one raw leaf, or a dag-pb root over raw leaves
      }
    });

    it.skipIf(!named)('returns the key as the id', async () => {
      expect(await put(randomBytes(10), 'a/b/c.pack')).toBe(`${prefix}a/b/c.pack`);
    });

    it('is idempotent: the same bytes again give the same id', async () => {
      for (const size of [10, 2 * CHUNK_SIZE + 1000]) {
        const bytes = randomBytes(size);
        const id = await put(bytes, `same-${size}.bin`, 'first');
        // A content-addressed store ignores the key; a named one must accept the same bytes under the same key.
        expect(await put(Buffer.from(bytes), ca ? 'other.bin' : `same-${size}.bin`, 'second')).toBe(id);
        expect((await store.get(id)).equals(bytes)).toBe(true);
      }
    });

    it.skipIf(!named)(
      'never overwrites: other bytes under a key are ConflictError and leave the first bytes',
      async () => {
        const first = Buffer.from('first bytes');
        const id = await put(first, 'kept.bin');
        for (const other of [Buffer.from('first bytez'), Buffer.from('other, longer bytes'), Buffer.alloc(0)]) {
          expect(await rejection(put(other, 'kept.bin'))).toBeInstanceOf(ConflictError);
          expect((await store.get(id)).equals(first)).toBe(true);
        }
      },
    );

    it.skipIf(!named)('refuses keys that break OBJECT_KEY with ValidationError, storing nothing', async () => {
      const tails = ['../x', '..', '.hidden', 'a/.b', 'Upper', 'a//b', 'a/', 'a b', 'caf\u00e9', 'a\\b'];
      const bad = ['', '..', '../x', '.tmp/x', `/${prefix}a`, ...tails.map((k) => `${prefix}${k}`)];
      for (const key of bad) {
        const err = await rejection(store.put(Buffer.from('x'), { key, label: 'bad key' }));
        expect(err, JSON.stringify(key)).toBeInstanceOf(ValidationError);
      }
      if (store.list) expect(await collect(store.list(prefix))).toEqual([]);
    });

    it('get of an absent object is NotFoundError naming it', async () => {
      const id = await absentId();
      const err = await rejection(store.get(id));
      expect(err).toBeInstanceOf(NotFoundError);
      expect(err.message).toContain(id);
    });

    it('get of an id that cannot name an object of this store is ValidationError', async () => {
      for (const id of ca ? ['not-a-cid', ''] : ['../escape', 'Upper', '', '.tmp']) {
        expect(await rejection(store.get(id)), JSON.stringify(id)).toBeInstanceOf(ValidationError);
      }
    });

    it('get checks a recorded SHA-256: a wrong one is IntegrityError naming the id', async () => {
      for (const size of [10, 2 * CHUNK_SIZE + 1000]) {
        const bytes = randomBytes(size);
        const id = await put(bytes, `obj-${size}.bin`);
        const err = await rejection(store.get(id, { sha256: sha256(randomBytes(8)) }));
        expect(err).toBeInstanceOf(IntegrityError);
        expect(err.message).toContain(id);
        expect((await store.get(id, { sha256: sha256(bytes).toUpperCase() })).equals(bytes)).toBe(true);
      }
    });

    it.skipIf(!setup.tamper)('get finds bytes altered behind its back: IntegrityError naming the id', async () => {
      for (const size of [10, 2 * CHUNK_SIZE + 1000]) {
        const bytes = randomBytes(size);
        const id = await put(bytes, `obj-${size}.bin`);
        await setup.tamper!(id);
        const fresh = await setup.create(); // nothing cached can hide the damage
        try {
          // A named store can only check against a recorded hash; a content-addressed one checks the CID anyway.
          const calls = [() => fresh.get(id, { sha256: sha256(bytes) })];
          if (ca) calls.push(() => fresh.get(id));
          for (const call of calls) {
            const err = await rejection(call);
            expect(err).toBeInstanceOf(IntegrityError);
            expect(err.message).toContain(id);
          }
        } finally {
          await fresh.close();
        }
      }
    });

    it('has: false before put, true after, false after delete', async () => {
      const bytes = randomBytes(100);
      const id = ca ? await computeCid(bytes) : `${prefix}obj.bin`;
      expect(await store.has(id)).toBe(false);
      expect(await put(bytes)).toBe(id);
      expect(await store.has(id)).toBe(true);
      await store.delete(id);
      expect(await store.has(id)).toBe(false);
    });

    it('delete is idempotent: twice, and of an object never stored, is no error', async () => {
      const id = await put(randomBytes(100));
      await store.delete(id);
      await store.delete(id);
      await store.delete(await absentId());
      expect(await store.has(id)).toBe(false);
      // A named store forgets the bytes; an IPFS node may still serve unpinned blocks until its GC runs.
      if (named) expect(await rejection(store.get(id))).toBeInstanceOf(NotFoundError);
    });

    it.skipIf(!setup.list)('list yields exactly the ids under a prefix, in key order', async () => {
      // A walk that sorts each folder by name yields `x/a/…` before `x/a-b/…`; key order puts '-' and '.' before '/'.
      const keys = ['x/a/z.bin', 'x/a-b/y.bin', 'x/a.b', 'x/a0', 'x/b/c/d/e.bin', 'x/ab/c.bin', 'y.bin', 'x0.bin'];
      for (const key of keys) await put(Buffer.from(key), key);
      const under = (p: string) => collect(store.list!(`${prefix}${p}`));
      const ids = (...ks: string[]) => ks.map((k) => `${prefix}${k}`);
      const inX = ['x/a-b/y.bin', 'x/a.b', 'x/a/z.bin', 'x/a0', 'x/ab/c.bin', 'x/b/c/d/e.bin'];
      expect(await under('')).toEqual(ids(...inX, 'x0.bin', 'y.bin'));
      expect(await under('x/')).toEqual(ids(...inX));
      expect(await under('x/a')).toEqual(ids(...inX.slice(0, 5)));
      expect(await under('x/a/')).toEqual(ids('x/a/z.bin'));
      expect(await under('x')).toEqual(ids(...inX, 'x0.bin'));
      expect(await under('x/b/c/d/e.bin')).toEqual(ids('x/b/c/d/e.bin'));
      expect(await under('nothing/')).toEqual([]);
      expect(await under('x/q')).toEqual([]);
      await store.delete(`${prefix}x/a.b`);
      expect(await under('x/a.')).toEqual([]);
    });

    it('keeps what it put for a new store object over the same storage', async () => {
      const bytes = randomBytes(CHUNK_SIZE + 10);
      const id = await put(bytes);
      await store.close();
      store = await setup.create();
      expect(await store.has(id)).toBe(true);
      expect((await store.get(id)).equals(bytes)).toBe(true);
    });

    it('check passes on a good configuration', async () => {
      await store.check();
    });

    it.skipIf(!setup.failNext)(
      'meets a passing failure with UnavailableError at once; retryingStore rides it out',
      async () => {
        const bytes = randomBytes(100);
        setup.failNext!(1);
        // One failed request fails the call: a store that retried inside would hide the failure from the decorator.
        expect(await rejection(put(bytes))).toBeInstanceOf(UnavailableError);
        setup.failNext!(2);
        const retrying = retryingStore(store, { attempts: 3, baseMs: 1, maxMs: 5 });
        const id = await retrying.put(bytes, { key: `${prefix}obj.bin`, label: 'retried' });
        expect((await store.get(id)).equals(bytes)).toBe(true);
      },
    );

    /** everyCall runs each operation of `s` and returns what each threw (or 'resolved'). */
    const everyCall = async (s: ObjectStore): Promise<Array<[string, unknown]>> => {
      const id = ca ? await computeCid(Buffer.from('some object')) : `${prefix}some.bin`;
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['check', () => s.check()],
        ['put', () => s.put(Buffer.from('some object'), { key: `${prefix}some.bin`, label: 'some object' })],
        ['get', () => s.get(id)],
        ['has', () => s.has(id)],
        ['delete', () => s.delete(id)],
      ];
      if (s.list) calls.push(['list', () => collect(s.list!(prefix))]);
      const out: Array<[string, unknown]> = [];
      for (const [op, call] of calls)
        out.push([
          op,
          await call().then(
            () => 'resolved',
            (err: unknown) => err,
          ),
        ]);
      return out;
    };

    type Hook = 'unreachable' | 'misconfigured';
    const failsWith = (hook: Hook, type: typeof UnavailableError | typeof ConfigError) => async () => {
      const s = await setup[hook]!();
      try {
        for (const [op, err] of await everyCall(s)) {
          expect(err, `${op} on a store that is ${hook}`).toBeInstanceOf(type);
          const said = `${(err as PawledgerError).message} ${(err as PawledgerError).hint ?? ''}`;
          for (const secret of setup.secrets ?? []) expect(said).not.toContain(secret);
          if (type === ConfigError)
            expect((err as ConfigError).hint, `${op}: a ConfigError says what to do`).toBeTruthy();
        }
      } finally {
        await s.close();
      }
    };
    it.skipIf(!setup.unreachable)(
      'fails every call with UnavailableError when the store cannot be reached',
      failsWith('unreachable', UnavailableError),
    );
    it.skipIf(!setup.misconfigured)(
      'fails every call with ConfigError, saying what to fix, when misconfigured',
      failsWith('misconfigured', ConfigError),
    );
  });
}
