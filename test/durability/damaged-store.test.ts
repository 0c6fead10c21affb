/**
 * A damaged local store never blocks recovery and never hides a loss. With another tier holding a copy that
 * verifies, any damage to the local store (a flipped byte in any block, a truncated or deleted segment, a missing
 * chain folder, CURRENT naming a folder that is gone) makes startup treat the local store as a candidate that
 * failed: it restores the copy, moves the damaged files aside (never deleting them) and says so. A chosen restore
 * works over a damaged store too. Without another copy, startup refuses and changes nothing.
 */
import { chmod, cp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config.js';
import { PawledgerError } from '../../src/errors.js';
import { Ledger } from '../../src/service/ledger.js';
import { captureLogger, segmentFiles, tempDir, type LogLine } from '../support/durability.js';
import { createTempDatabase, TEST_KEY, type TempDatabase } from '../support/pg.js';

const SEGMENT_BYTES = 4096;
const SAVES = 30;

/** Damage is one way a local store gets broken, applied to a closed copy. */
type Damage = [name: string, apply: (dataDir: string) => Promise<void>];

async function writable(path: string, fn: () => Promise<void>): Promise<void> {
  const m = (await stat(path)).mode & 0o777;
  await chmod(path, m | 0o200);
  await fn();
  await chmod(path, m);
}

const DAMAGES: Damage[] = [
  [
    'a flipped byte in a block of a finished segment',
    async (d) => {
      const seg = (await segmentFiles(d))[1]!;
      const buf = await readFile(seg);
      buf[buf.length - 20]! ^= 0x01;
      await writable(seg, () => writeFile(seg, buf));
    },
  ],
  [
    'a flipped byte in the newest block',
    async (d) => {
      const seg = (await segmentFiles(d)).at(-1)!;
      const buf = await readFile(seg);
      buf[buf.length - 5]! ^= 0x40;
      await writeFile(seg, buf);
    },
  ],
  [
    'the last segment truncated at a record boundary',
    async (d) => {
      const seg = (await segmentFiles(d)).at(-1)!;
      const buf = await readFile(seg);
      // The record framing: 52-byte segment header, then records of a 52-byte header + payload (length u32 LE at 0).
      let at = 52;
      let last = 52;
      while (at < buf.length) {
        last = at;
        at += 52 + buf.readUInt32LE(at);
      }
      await truncate(seg, last);
    },
  ],
  [
    'a middle segment deleted',
    async (d) => {
      const seg = (await segmentFiles(d))[1]!;
      await rm(seg);
    },
  ],
  ['the last segment deleted', async (d) => rm((await segmentFiles(d)).at(-1)!)],
  [
    'the chain folder deleted',
    async (d) => rm(join(d, (await readFile(join(d, 'CURRENT'), 'utf8')).trim()), { recursive: true }),
  ],
  ['CURRENT naming a generation that is missing', async (d) => writeFile(join(d, 'CURRENT'), 'chain-000042\n')],
  // The head marker itself gone: alone, and with the end of the chain it guarded (the loss it would have shown).
  ['the head marker (HEAD) deleted', async (d) => rm(join(d, 'HEAD'))],
  [
    'HEAD and the last segment deleted',
    async (d) => {
      await rm(join(d, 'HEAD'));
      await rm((await segmentFiles(d)).at(-1)!);
    },
  ],
];

function damagedFolders(dataDir: string): Promise<string[]> {
  return readdir(dataDir).then((names) => names.filter((n) => n.startsWith('damaged-')));
}

describe('a damaged local store with the database holding a copy', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let original: string;
  let head: { index: number; hash: string };
  let copies = 0;
  const dbs: TempDatabase[] = [];
  const config = (dataDir: string, url: string): Config => ({
    ...loadConfig({
      DATABASE_URL: url,
      LEDGER_ENCRYPTION_KEY: TEST_KEY,
      PG_TIMEOUT_MS: '2000',
      LEDGER_RETRY_MS: '100',
    }),
    dataDir,
    segmentBytes: SEGMENT_BYTES,
  });

  beforeAll(async () => {
    ({ dir: root, cleanup } = await tempDir('damaged'));
    original = join(root, 'original');
    const ledger = await Ledger.open({ config: { ...config(original, ''), database: { kind: 'off' } } });
    for (let i = 0; i < SAVES; i++)
      await ledger.register({ id: `d-${i}`, name: `Damaged ${i}`, address: `${i} Rot Row`, owner: `o-${i % 3}` });
    head = { index: ledger.head.index, hash: ledger.head.hash };
    await ledger.close();
    expect((await segmentFiles(original)).length).toBeGreaterThanOrEqual(3);
  });
  afterAll(async () => {
    for (const db of dbs) await db.drop();
    await cleanup();
  });

  /** copy makes a copy of the original store and a fresh database holding all of it (a start catches it up). */
  async function copy(): Promise<{ dataDir: string; url: string }> {
    const dataDir = join(root, `copy-${copies++}`);
    await cp(original, dataDir, { recursive: true });
    const db = await createTempDatabase();
    dbs.push(db);
    await (await Ledger.open({ config: config(dataDir, db.url) })).close();
    return { dataDir, url: db.url };
  }

  for (const [name, damage] of DAMAGES) {
    it(`${name}: startup restores from the database, moves the damaged files aside, and says so`, async () => {
      const { dataDir, url } = await copy();
      const generation = (await readFile(join(dataDir, 'CURRENT'), 'utf8')).trim();
      await damage(dataDir);
      const hadGeneration = await stat(join(dataDir, generation)).then(
        () => true,
        () => false,
      );
      const { logger, lines } = captureLogger();
      const ledger = await Ledger.open({ config: config(dataDir, url), logger });
      try {
        expect(ledger.head).toMatchObject({ index: head.index, hash: head.hash });
        expect(ledger.properties()).toHaveLength(SAVES);
        expect(await ledger.verify()).toMatchObject({ ok: true, headHash: head.hash });
        const said = lines.map((l: LogLine) => l.msg).join('\n');
        expect(said).toMatch(/local store .* is damaged, not used/);
        expect(said).toMatch(/Ledger restored from database/);
        const [aside] = await damagedFolders(dataDir);
        if (hadGeneration) {
          // Never deleted: the damaged chain folder sits in damaged-<time>/ with a note saying why.
          expect(aside, 'the damaged files were not moved aside').toBeDefined();
          expect(await readdir(join(dataDir, aside!))).toContain(generation);
          expect(await readFile(join(dataDir, aside!, 'REASON.txt'), 'utf8')).toMatch(
            /damaged|missing|acknowledged|checksum/i,
          );
          expect(said).toContain(join(dataDir, aside!));
        }
        // It saves on, and the next start takes the restored store as it is.
        await ledger.register({ id: 'after', name: 'After', address: '1 Mended Way', owner: 'o' });
      } finally {
        await ledger.close();
      }
      const again = await Ledger.open({ config: config(dataDir, url) });
      try {
        expect(again.head.index).toBe(head.index + 1);
        expect(await again.verify()).toMatchObject({ ok: true });
      } finally {
        await again.close();
      }
    });
  }

  it('a chosen restore (restore from the database at open) works over a damaged local store', async () => {
    const { dataDir, url } = await copy();
    await DAMAGES[0]![1](dataDir);
    const ledger = await Ledger.open({ config: config(dataDir, url), restore: { tier: 'db' } });
    try {
      expect(ledger.head.hash).toBe(head.hash);
      expect(ledger.restorePlan).toMatchObject({ height: head.index });
      expect(await damagedFolders(dataDir)).toHaveLength(1);
    } finally {
      await ledger.close();
    }
  });
});

describe('a damaged local store with IPFS (embedded) as the only other copy', () => {
  it('restores from IPFS and moves the damaged files aside', async () => {
    const { dir, cleanup } = await tempDir('damaged-ipfs');
    try {
      const config = (): Config => ({
        ...loadConfig({
          LEDGER_DB: 'off',
          IPFS_PROVIDER: 'embedded',
          IPFS_EMBEDDED_DIR: join(dir, 'ipfs'),
          IPFS_DEBOUNCE_MS: '0',
          LEDGER_ENCRYPTION_KEY: TEST_KEY,
        }),
        dataDir: join(dir, 'data'),
        segmentBytes: SEGMENT_BYTES,
      });
      const first = await Ledger.open({ config: config() });
      for (let i = 0; i < 12; i++)
        await first.register({ id: `i-${i}`, name: `Ipfs ${i}`, address: `${i} Pin St`, owner: 'o' });
      await first.backupToIpfs({ name: 'level' });
      const hash = first.head.hash;
      await first.close();
      await DAMAGES[0]![1](join(dir, 'data'));
      const ledger = await Ledger.open({ config: config() });
      try {
        expect(ledger.head.hash).toBe(hash);
        expect(await damagedFolders(join(dir, 'data'))).toHaveLength(1);
      } finally {
        await ledger.close();
      }
    } finally {
      await cleanup();
    }
  });
});

describe('a damaged local store with no other copy (LEDGER_DB=off, no IPFS)', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let original: string;
  let copies = 0;
  const config = (dataDir: string): Config => ({
    ...loadConfig({ LEDGER_DB: 'off', LEDGER_ENCRYPTION_KEY: TEST_KEY }),
    dataDir,
    segmentBytes: SEGMENT_BYTES,
  });

  beforeAll(async () => {
    ({ dir: root, cleanup } = await tempDir('damaged-alone'));
    original = join(root, 'original');
    const ledger = await Ledger.open({ config: config(original) });
    for (let i = 0; i < SAVES; i++)
      await ledger.register({ id: `a-${i}`, name: `Alone ${i}`, address: `${i} Solo St`, owner: 'o' });
    await ledger.close();
  });
  afterAll(async () => {
    await cleanup();
  });

  for (const [name, damage] of DAMAGES) {
    it(`${name}: startup refuses, says what is wrong and what to do, and changes nothing`, async () => {
      const dataDir = join(root, `copy-${copies++}`);
      await cp(original, dataDir, { recursive: true });
      await damage(dataDir);
      const before = await snapshot(dataDir);
      const err = await Ledger.open({ config: config(dataDir) }).then(
        async (l) => (await l.close(), `opened at block ${l.head.index}`),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(PawledgerError);
      expect((err as PawledgerError).code).toBe('INTEGRITY');
      expect((err as PawledgerError).message).toMatch(/is damaged/);
      expect((err as PawledgerError).message).not.toMatch(/no acknowledged save is affected/);
      expect((err as PawledgerError).hint).toMatch(/import|restore/);
      // No genesis block over it, nothing moved or deleted.
      expect(await snapshot(dataDir)).toEqual(before);
    });
  }
});

async function snapshot(dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.name === 'LOCK') continue;
      if (e.isDirectory()) await walk(join(d, e.name), `${rel}${e.name}/`);
      else out[`${rel}${e.name}`] = (await stat(join(d, e.name))).size;
    }
  };
  await walk(dir, '');
  return out;
}
