/**
 * Packs in the local store under damage and crashes. A flipped byte anywhere in a pack file is found when the store
 * opens (its record's CRCs) or, if it changed after the open, when the pack is read, with an integrity error naming
 * the file; it is handled as a damaged loose record is: a writer's startup restores a verified copy from the database
 * and moves the damaged files aside. A child packing in a loop and killed with SIGKILL at random points, again and
 * again, leaves a store that reopens with every acknowledged block, readable, each page opening with the key.
 */
import { spawn } from 'node:child_process';
import { chmod, cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config.js';
import { parseKey } from '../../src/crypto/key.js';
import { openPack, pageHashes, sealPack, type PackEntry } from '../../src/crypto/packs.js';
import { Sealer } from '../../src/crypto/seal.js';
import { openBody } from '../../src/crypto/sealed-blocks.js';
import { replayChain } from '../../src/engine/replay.js';
import { IntegrityError } from '../../src/errors.js';
import { Ledger } from '../../src/service/ledger.js';
import { LocalStore } from '../../src/store/local-store.js';
import { captureLogger, errorInfo, generationDir, REPO, tempDir } from '../support/durability.js';
import { createTempDatabase, TEST_KEY, type TempDatabase } from '../support/pg.js';

const SEGMENT_BYTES = 4096;
const sealer = new Sealer(parseKey(TEST_KEY));

// Pack blocks from..to of a closed store's chain as the compactor does.
async function pack(store: LocalStore, from: number, to: number): Promise<void> {
  const ledgerId = store.ledgerId!;
  const entries: PackEntry[] = [];
  for await (const page of store.readPages(from, to)) {
    if (!('blocks' in page)) throw new Error('expected loose blocks');
    for (const b of page.blocks) entries.push({ height: b.height, hash: b.hash, body: openBody(sealer, ledgerId, b) });
  }
  await store.putPack(ledgerId, sealPack(sealer, ledgerId, entries));
}

// Read the whole chain, opening every page with the key, and verify it; returns its hashes.
async function readAll(store: LocalStore): Promise<string[]> {
  const ledgerId = store.ledgerId!;
  const hashes: string[] = [];
  for await (const page of store.readPages()) {
    if ('pack' in page) openPack(sealer, ledgerId, page.pack, 'test');
    else for (const b of page.blocks) openBody(sealer, ledgerId, b, 'test');
    hashes.push(...pageHashes(page));
  }
  const head = { height: store.height, hash: store.headHash! };
  await replayChain(store.readPages(), sealer, { where: 'test', ledgerId, expectHead: head });
  return hashes;
}

async function packFiles(dataDir: string): Promise<string[]> {
  const gen = await generationDir(dataDir);
  return (await readdir(gen))
    .filter((n) => n.endsWith('.pack'))
    .sort()
    .map((n) => join(gen, n));
}

async function flip(path: string, at: number, bit = 0x01): Promise<void> {
  const buf = await readFile(path);
  buf[at]! ^= bit;
  await chmod(path, 0o600);
  await writeFile(path, buf);
}

describe('damaged packs in the local store', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let original: string;
  let head: { index: number; hash: string };
  let copies = 0;
  const dbs: TempDatabase[] = [];
  const config = (dataDir: string, url: string): Config => ({
    ...loadConfig({ DATABASE_URL: url, LEDGER_ENCRYPTION_KEY: TEST_KEY, PG_TIMEOUT_MS: '2000' }),
    dataDir,
    segmentBytes: SEGMENT_BYTES,
  });

  beforeAll(async () => {
    ({ dir: root, cleanup } = await tempDir('damaged-packs'));
    original = join(root, 'original');
    const ledger = await Ledger.open({ config: { ...config(original, ''), database: { kind: 'off' } } });
    for (let i = 0; i < 40; i++)
      await ledger.register({ id: `d-${i}`, name: `Packed ${i}`, address: `${i} Pack Row`, owner: `o-${i % 3}` });
    head = { index: ledger.head.index, hash: ledger.head.hash };
    await ledger.close();
  });
  afterAll(async () => {
    for (const db of dbs) await db.drop();
    await cleanup();
  });

  // A copy of the original store, and a second step that packs blocks 0-14 and 15-29 of it.
  async function copy(): Promise<{ dataDir: string; packIt: () => Promise<void> }> {
    const dataDir = join(root, `copy-${copies++}`);
    await cp(original, dataDir, { recursive: true });
    const packIt = async () => {
      const { store } = await LocalStore.open(dataDir, { segmentBytes: SEGMENT_BYTES });
      await pack(store, 0, 14);
      await pack(store, 15, 29);
      await store.close();
      expect(await packFiles(dataDir)).toHaveLength(2);
    };
    return { dataDir, packIt };
  }

  async function packedCopy(): Promise<string> {
    const { dataDir, packIt } = await copy();
    await packIt();
    return dataDir;
  }

  it('a flipped byte anywhere in a pack file: opening says which file, writer and reader alike', async () => {
    const dataDir = await packedCopy();
    const [first] = await packFiles(dataDir);
    const size = (await readFile(first!)).length;
    // Every byte of the headers and clear hashes, then a spread over the sealed blocks.
    const positions = [...Array.from({ length: 160 }, (_, i) => i)];
    for (let at = 160; at < size; at += Math.ceil((size - 160) / 60)) positions.push(at);
    positions.push(size - 1);
    const missed: string[] = [];
    const original = await readFile(first!);
    for (const at of positions) {
      await flip(first!, at);
      for (const readOnly of [false, true]) {
        const opened = await LocalStore.open(dataDir, { segmentBytes: SEGMENT_BYTES, readOnly }).then(
          async ({ store }) => {
            await store.close();
            return 'opened';
          },
          (err: unknown) => err,
        );
        if (!(opened instanceof IntegrityError) || !opened.message.includes('000000000000-000000000014.pack'))
          missed.push(`byte ${at} (${readOnly ? 'read-only' : 'writer'}): ${errorInfo(opened)}`);
      }
      await writeFile(first!, original);
    }
    expect(missed).toEqual([]);
  });

  it('a pack changed after the store opened is refused when it is read', async () => {
    const dataDir = await packedCopy();
    const { store } = await LocalStore.open(dataDir, { segmentBytes: SEGMENT_BYTES });
    const second = (await packFiles(dataDir))[1]!;
    await flip(second, (await readFile(second)).length - 100, 0x10);
    await expect(readAll(store)).rejects.toThrow(/000000000015-000000000029\.pack.*checksum/);
    await store.close();
  });

  it('startup restores a store with a damaged pack from the database, and moves the damaged files aside', async () => {
    const { dataDir, packIt } = await copy();
    const db = await createTempDatabase();
    dbs.push(db);
    // A start brings the database level with the local chain; then the local store packs its settled blocks.
    await (await Ledger.open({ config: config(dataDir, db.url) })).close();
    await packIt();
    const [first] = await packFiles(dataDir);
    await flip(first!, (await readFile(first!)).length - 300);
    const { logger, lines } = captureLogger();
    const ledger = await Ledger.open({ config: config(dataDir, db.url), logger }).catch((err: unknown) => {
      throw new Error(`${errorInfo(err)}\n${lines.map((l) => l.msg).join('\n')}`);
    });
    try {
      expect(ledger.head).toMatchObject({ index: head.index, hash: head.hash });
      expect(ledger.properties()).toHaveLength(40);
      expect((await ledger.verify()).ok).toBe(true);
    } finally {
      await ledger.close();
    }
    const aside = (await readdir(dataDir)).filter((n) => n.startsWith('damaged-'));
    expect(aside).toHaveLength(1);
    expect(lines.some((l) => l.msg.includes('000000000000-000000000014.pack'))).toBe(true);
  });
});

interface Run {
  acks: { height: number; hash: string }[];
  packed: number;
  stderr: string;
}

// Start the pack loop on dataDir and SIGKILL it `afterMs` after its first acknowledged append.
function runChild(dataDir: string, afterMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/pack-loop.ts', dataDir, '2048'], {
      cwd: REPO,
      env: { ...process.env, LEDGER_ENCRYPTION_KEY: TEST_KEY },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run: Run = { acks: [], packed: -1, stderr: '' };
    let stdout = '';
    let timer: NodeJS.Timeout | undefined;
    const kill = () => child.kill('SIGKILL');
    const watchdog = setTimeout(kill, 20_000);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (run.stderr += d));
    child.stdout.on('data', (d: string) => {
      stdout += d;
      for (let nl = stdout.indexOf('\n'); nl >= 0; nl = stdout.indexOf('\n')) {
        const [word, a, b] = stdout.slice(0, nl).split(' ');
        stdout = stdout.slice(nl + 1);
        if (word === 'ack') {
          run.acks.push({ height: Number(a), hash: b! });
          if (run.acks.length === 1) timer = setTimeout(kill, afterMs);
        } else if (word === 'packed') run.packed = Number(a);
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(watchdog);
      clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`pack loop exited by itself (code ${code}):\n${run.stderr}`));
      else resolve(run);
    });
  });
}

describe('SIGKILL while packing', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('pack-crash'));
  });
  afterAll(async () => {
    await cleanup();
  });

  it('after each of 30+ kills the store reopens whole: every acknowledged block, every page opening', async () => {
    const KILLS = 32;
    const dataDir = join(dir, 'data');
    const acked = new Map<number, string>();
    let packed = -1;
    let packsSeen = 0;
    for (let kill = 1; kill <= KILLS; kill++) {
      const run = await runChild(dataDir, 5 + Math.floor(Math.random() * 200));
      expect(run.acks.length, `child acknowledged nothing:\n${run.stderr}`).toBeGreaterThan(0);
      for (const a of run.acks) acked.set(a.height, a.hash);
      packed = Math.max(packed, run.packed);
      let store: LocalStore;
      try {
        ({ store } = await LocalStore.open(dataDir, { segmentBytes: 2048 }));
      } catch (err) {
        throw new Error(`reopening after kill ${kill} failed: ${errorInfo(err)}\nchild stderr:\n${run.stderr}`);
      }
      try {
        const top = Math.max(...acked.keys());
        expect(store.height, `kill ${kill}: the head is behind an acknowledged block`).toBeGreaterThanOrEqual(top);
        expect(store.packedThrough(), `kill ${kill}: a pack putPack acknowledged is gone`).toBeGreaterThanOrEqual(
          packed,
        );
        const hashes = await readAll(store);
        const lost = [...acked].filter(([h, hash]) => hashes[h] !== hash).map(([h]) => h);
        expect(lost, `kill ${kill}: acknowledged blocks missing or changed`).toEqual([]);
        packsSeen = store.packs().length;
      } finally {
        await store.close();
      }
    }
    expect(packsSeen).toBeGreaterThan(5);
    const segments = (await readdir(await generationDir(dataDir))).filter((n) => n.endsWith('.seg'));
    console.info(
      `pack crash test: ${KILLS} kills, ${acked.size / 3} acknowledged appends, ${packsSeen} packs, ${segments.length} segments left`,
    );
  }, 420_000);
});
