import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, ConflictError, NotFoundError, ValidationError } from '../../src/errors.js';
import { DirStore, STALE_TMP_MS } from '../../src/objects/dir.js';
import { objectStoreSuite } from '../conformance/object-store-suite.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'pl-dir-store-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

objectStoreSuite('dir', {
  contentAddressed: false,
  list: true,
  create: () => new DirStore({ root }),
  tamper: async (id) => {
    const bytes = await readFile(join(root, id));
    bytes[bytes.length >> 1]! ^= 0x01;
    await writeFile(join(root, id), bytes);
  },
  misconfigured: () => new DirStore({ root: join(root, 'not-created') }),
});

describe('DirStore on disk', () => {
  let base: string;
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'pl-dir-only-'));
    return () => rm(base, { recursive: true, force: true });
  });
  const all = async (it: AsyncIterable<string>) => {
    const out: string[] = [];
    for await (const id of it) out.push(id);
    return out;
  };
  const rejection = (p: Promise<unknown>) =>
    p.then(
      () => new Error('expected a rejection'),
      (err: Error) => err,
    );

  it('keeps <root>/<key> as a 0600 file in 0700 folders, and leaves no temp file, even after a conflict', async () => {
    const store = new DirStore({ root: base });
    await store.put(Buffer.from('one'), { key: 'a/b/c.bin', label: 'c' });
    expect(await readFile(join(base, 'a/b/c.bin'), 'utf8')).toBe('one');
    expect((await stat(join(base, 'a/b/c.bin'))).mode & 0o777).toBe(0o600);
    for (const d of ['a', 'a/b', '.tmp']) expect((await stat(join(base, d))).mode & 0o777).toBe(0o700);
    expect(await rejection(store.put(Buffer.from('two'), { key: 'a/b/c.bin', label: 'c' }))).toBeInstanceOf(
      ConflictError,
    );
    expect(await readdir(join(base, '.tmp'))).toEqual([]);
  });

  it('removes temp files a crash left more than an hour ago on the next put, and keeps younger ones', async () => {
    const store = new DirStore({ root: base });
    await mkdir(join(base, '.tmp'), { mode: 0o700 });
    for (const name of ['old.tmp', 'young.tmp']) await writeFile(join(base, '.tmp', name), 'partial');
    const past = new Date(Date.now() - STALE_TMP_MS - 60_000);
    await utimes(join(base, '.tmp', 'old.tmp'), past, past);
    await store.put(Buffer.from('x'), { key: 'x.bin', label: 'x' });
    expect(await readdir(join(base, '.tmp'))).toEqual(['young.tmp']);
    expect(await all(store.list(''))).toEqual(['x.bin']);
  });

  it('lists objects only: no temp files, dot files, names that are not keys, links or folders', async () => {
    const store = new DirStore({ root: base });
    await store.put(Buffer.from('x'), { key: 'p/x.bin', label: 'x' });
    await writeFile(join(base, 'p', 'README'), 'not a key');
    await writeFile(join(base, 'p', '.hidden'), 'not a key');
    await symlink(join(base, 'p', 'x.bin'), join(base, 'p', 'link'));
    await mkdir(join(base, 'p', 'empty'));
    expect(await all(store.list(''))).toEqual(['p/x.bin']);
    expect(await store.has('p/link')).toBe(false);
    expect(await rejection(store.get('p/link'))).toBeInstanceOf(NotFoundError);
  });

  it('lets racing puts of one key agree: the same bytes all succeed, of other bytes exactly one wins', async () => {
    const store = new DirStore({ root: base });
    const eight = <T>(fn: (i: number) => Promise<T>) => Array.from({ length: 8 }, (_, i) => fn(i));
    const same = await Promise.all(eight(() => store.put(Buffer.from('same'), { key: 'same.bin', label: 's' })));
    expect(same).toEqual(Array(8).fill('same.bin'));
    const results = await Promise.allSettled(
      eight((i) => store.put(Buffer.from(`bytes ${i}`), { key: 'race.bin', label: 'r' })),
    );
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ConflictError);
    expect(await readFile(join(base, 'race.bin'), 'utf8')).toBe(`bytes ${won[0]}`);
    expect(await readdir(join(base, '.tmp'))).toEqual([]);
  });

  it('refuses a key that is both an object and a folder of objects with ConflictError', async () => {
    const store = new DirStore({ root: base });
    await store.put(Buffer.from('a'), { key: 'k/a', label: 'a' });
    expect(await rejection(store.put(Buffer.from('b'), { key: 'k/a/b', label: 'b' }))).toBeInstanceOf(ConflictError);
    await store.put(Buffer.from('y'), { key: 'k/x/y', label: 'y' });
    expect(await rejection(store.put(Buffer.from('x'), { key: 'k/x', label: 'x' }))).toBeInstanceOf(ConflictError);
    expect(await store.has('k/x')).toBe(false);
    await store.delete('k/x'); // a folder is no object: nothing to delete
    expect(await store.get('k/x/y', {})).toEqual(Buffer.from('y'));
  });

  it('refuses ids and prefixes that could leave the root', async () => {
    await writeFile(join(base, 'outside'), 'keep me');
    const store = new DirStore({ root: join(base, 'root') });
    await mkdir(join(base, 'root'));
    expect(await rejection(store.has('../outside'))).toBeInstanceOf(ValidationError);
    expect(await rejection(store.delete('../outside'))).toBeInstanceOf(ValidationError);
    expect(await rejection(all(store.list('../')))).toBeInstanceOf(ValidationError);
    expect(await readFile(join(base, 'outside'), 'utf8')).toBe('keep me');
  });

  it('never creates its root: a missing or wrong root is ConfigError naming it and saying what to do', async () => {
    const missing = join(base, 'unmounted');
    const err = await rejection(new DirStore({ root: missing }).put(Buffer.from('x'), { key: 'x.bin', label: 'x' }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(missing);
    expect((err as ConfigError).hint).toContain('mkdir');
    await expect(stat(missing)).rejects.toMatchObject({ code: 'ENOENT' });
    await writeFile(join(base, 'a-file'), 'x');
    expect((await rejection(new DirStore({ root: join(base, 'a-file') }).check())).message).toContain('not a folder');
    expect(() => new DirStore({ root: '' })).toThrow(ConfigError);
  });

  it.skipIf(process.getuid?.() === 0)('check refuses a root this process cannot write', async () => {
    await chmod(base, 0o500);
    try {
      expect(await rejection(new DirStore({ root: base }).check())).toBeInstanceOf(ConfigError);
    } finally {
      await chmod(base, 0o700);
    }
  });
});
