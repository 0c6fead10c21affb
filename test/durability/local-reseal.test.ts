/**
 * Key rotation of the local store (LocalStore.keyCounts and reseal, store/reseal-files.ts). A store holding packs,
 * loose blocks in several segments (some of them superseded by a pack but still on disk) and a checkpoint, all under
 * an old key, is re-sealed in small steps with saves between them, until the old key opens nothing: every page and
 * the checkpoint then open with the new key alone, and saves go on. An object under a key the keyring lacks stops a
 * step before it writes anything. A child re-sealing and saving, SIGKILLed at random points again and again, leaves
 * a store that opens whole each time, and a last run finishes the rotation.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, sealCheckpoint, type SealedCheckpoint } from '../../src/crypto/checkpoints.js';
import { generateKey, parseKey } from '../../src/crypto/key.js';
import { openPack, pageHashes } from '../../src/crypto/packs.js';
import { MAGIC, Sealer } from '../../src/crypto/seal.js';
import { openBody } from '../../src/crypto/sealed-blocks.js';
import { replayChain } from '../../src/engine/replay.js';
import { IntegrityError } from '../../src/errors.js';
import { WorldState } from '../../src/ledger/state.js';
import { LocalStore } from '../../src/store/local-store.js';
import { errorInfo, generationDir, listFiles, REPO, segmentFiles, tempDir } from '../support/durability.js';
import { nextBlocks, packBlocks, type ChainTip } from '../support/reseal-chain.js';

const SEGMENT_BYTES = 2048;
const OLD_TEXT = generateKey();
const NEW_TEXT = generateKey();
const OLD = parseKey(OLD_TEXT);
const NEW = parseKey(NEW_TEXT);
const old = new Sealer(OLD);
const ring = new Sealer(NEW, [OLD]);
const fresh = new Sealer(NEW);

/**
 * buildOld makes a store of `blocks` blocks under the old key, saved three at a time: packs of 15 blocks up to block
 * `packTo`, and a checkpoint of the state after block `checkpointAt`. It returns the store, open, and the chain's tip.
 */
async function buildOld(
  dataDir: string,
  opts: { blocks: number; packTo: number; checkpointAt: number },
): Promise<{ store: LocalStore; tip: ChainTip }> {
  const { store } = await LocalStore.open(dataDir, { segmentBytes: SEGMENT_BYTES });
  const tip: ChainTip = { ledgerId: '', head: null };
  const state = new WorldState();
  let cp: SealedCheckpoint | null = null;
  while (store.height < opts.blocks - 1) {
    const batch = nextBlocks(tip, old, Math.min(3, opts.blocks - 1 - store.height), (b) => {
      state.apply(b);
      if (b.index === opts.checkpointAt) cp = sealCheckpoint(old, tip.ledgerId, b.hash, state);
    });
    await store.append(tip.ledgerId, batch);
  }
  for (let from = 0; from <= opts.packTo; from += 15)
    await packBlocks(store, old, from, Math.min(from + 14, opts.packTo));
  await store.putCheckpoint(cp!);
  return { store, tip };
}

// Read the whole chain, opening every page and the checkpoint with `sealer`, and replay it; returns its hashes.
async function readAll(store: LocalStore, sealer: Sealer): Promise<string[]> {
  const ledgerId = store.ledgerId!;
  const hashes: string[] = [];
  for await (const page of store.readPages()) {
    if ('pack' in page) openPack(sealer, ledgerId, page.pack, 'test');
    else for (const b of page.blocks) openBody(sealer, ledgerId, b, 'test');
    hashes.push(...pageHashes(page));
  }
  const head = { height: store.height, hash: store.headHash! };
  await replayChain(store.readPages(), sealer, { where: 'test', ledgerId, expectHead: head });
  const cp = await store.checkpoint();
  expect(cp, 'the checkpoint is gone').not.toBeNull();
  await openCheckpoint(sealer, ledgerId, cp!, cp!.parts(), 'test');
  return hashes;
}

// How many pages, and whether the checkpoint, open with `sealer` (the old key alone should open none).
async function opened(
  store: LocalStore,
  sealer: Sealer,
): Promise<{ pages: number; tried: number; checkpoint: boolean }> {
  const ledgerId = store.ledgerId!;
  let pages = 0;
  let tried = 0;
  const opens = (fn: () => unknown): boolean => {
    try {
      fn();
      return true;
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      return false;
    }
  };
  for await (const page of store.readPages()) {
    if ('pack' in page) {
      tried++;
      if (opens(() => openPack(sealer, ledgerId, page.pack, 'test'))) pages++;
    } else {
      for (const b of page.blocks) {
        tried++;
        if (opens(() => openBody(sealer, ledgerId, b, 'test'))) pages++;
      }
    }
  }
  const cp = (await store.checkpoint())!;
  const checkpoint = await openCheckpoint(sealer, ledgerId, cp, cp.parts(), 'test').then(
    () => true,
    (err: unknown) => {
      if (!(err instanceof IntegrityError)) throw err;
      return false;
    },
  );
  return { pages, tried, checkpoint };
}

// Every sealed-object header under the old key anywhere in the store's files (byte search, whatever the framing).
async function oldHeaders(dataDir: string): Promise<string[]> {
  const header = Buffer.concat([MAGIC, Buffer.from([1, 1]), Buffer.from(OLD.id, 'hex')]);
  const found: string[] = [];
  for (const path of await listFiles(dataDir)) {
    const buf = await readFile(path);
    for (let at = buf.indexOf(header); at >= 0; at = buf.indexOf(header, at + 1)) found.push(`${path}@${at}`);
  }
  return found;
}

describe('key rotation of the local store', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('local-reseal'));
  });
  afterAll(async () => {
    await cleanup();
  });

  it('re-seals packs, loose blocks, superseded records and a checkpoint in steps, with saves between', async () => {
    const dataDir = join(dir, 'steps');
    let { store, tip } = await buildOld(dataDir, { blocks: 60, packTo: 31, checkpointAt: 40 });
    expect((await segmentFiles(dataDir)).length).toBeGreaterThan(2);
    expect(store.packs()).toHaveLength(3);
    const before = await store.keyCounts();
    expect(Object.keys(before)).toEqual([OLD.id]);
    // Live: the 28 loose blocks, 3 packs, 2 checkpoint parts; the rest are packed records still in a segment.
    const live = 60 - 32 + 3 + 2;
    expect(before[OLD.id]).toBeGreaterThan(live);
    const objects = before[OLD.id]!;

    let remaining = objects;
    let steps = 0;
    let appended = 0;
    while (remaining > 0) {
      const step = await store.reseal(ring, 4);
      expect(step.resealed).toBeGreaterThan(0);
      expect(step.resealed).toBeLessThanOrEqual(4);
      expect(step.remaining).toBe(remaining - step.resealed);
      remaining = step.remaining;
      steps++;
      // A save between steps, sealed with the new key, into the segment a step may just have rewritten.
      const batch = nextBlocks(tip, ring, 1);
      await store.append(tip.ledgerId, batch);
      appended++;
    }
    expect(steps).toBeGreaterThanOrEqual(Math.ceil(objects / 4));
    expect(await store.keyCounts()).toEqual({ [NEW.id]: objects + appended });
    expect(await store.reseal(ring, 4)).toEqual({ resealed: 0, remaining: 0 });
    expect(await oldHeaders(dataDir)).toEqual([]);
    const hashes = await readAll(store, fresh);
    expect(hashes).toHaveLength(60 + appended);
    await store.close();

    // Reopened with the new key alone: everything opens; with the old key alone, nothing does.
    ({ store } = await LocalStore.open(dataDir, { segmentBytes: SEGMENT_BYTES }));
    expect(store.height).toBe(59 + appended);
    expect(await readAll(store, fresh)).toEqual(hashes);
    const withOld = await opened(store, old);
    expect(withOld.tried).toBeGreaterThan(10);
    expect(withOld).toMatchObject({ pages: 0, checkpoint: false });

    // Saves go on after the rotation, and reopen.
    for (let i = 0; i < 4; i++) await store.append(tip.ledgerId, nextBlocks(tip, fresh, 3));
    await store.close();
    ({ store } = await LocalStore.open(dataDir, { segmentBytes: SEGMENT_BYTES }));
    expect(store.height).toBe(59 + appended + 12);
    expect((await readAll(store, fresh)).slice(0, hashes.length)).toEqual(hashes);
    expect(await store.keyCounts()).toEqual({ [NEW.id]: objects + appended + 12 });
    await store.close();
  });

  it('the segment saves append to is rewritten, and the next saves go into the new file', async () => {
    const dataDir = join(dir, 'active');
    let { store, tip } = await buildOld(dataDir, { blocks: 31, packTo: 14, checkpointAt: 20 });
    const last = (await segmentFiles(dataDir)).at(-1)!;
    const objects = (await store.keyCounts())[OLD.id]!;
    expect(await store.reseal(ring, 1000)).toEqual({ resealed: objects, remaining: 0 });
    // One block, small enough to go into the same segment (2048 bytes hold more than the 1-2 blocks it has).
    await store.append(tip.ledgerId, nextBlocks(tip, fresh, 1));
    expect((await segmentFiles(dataDir)).at(-1)).toBe(last);
    await store.close();
    ({ store } = await LocalStore.open(dataDir, { segmentBytes: SEGMENT_BYTES }));
    expect(store.height).toBe(31);
    expect(await readAll(store, fresh)).toHaveLength(32);
    await store.close();
  });

  it('reads beside the rotation see every block, whichever copy of a file they meet', async () => {
    const dataDir = join(dir, 'beside');
    const { store } = await buildOld(dataDir, { blocks: 90, packTo: 59, checkpointAt: 70 });
    const hashes = await readAll(store, ring);
    let rotating = true;
    let reads = 0;
    const rotate = async () => {
      try {
        while ((await store.reseal(ring, 2)).remaining > 0) await new Promise((r) => setImmediate(r));
      } finally {
        rotating = false;
      }
    };
    const read = async () => {
      while (rotating) {
        expect(await readAll(store, ring)).toEqual(hashes);
        reads++;
      }
    };
    await Promise.all([rotate(), read(), read()]);
    expect(reads).toBeGreaterThan(2);
    expect(Object.keys(await store.keyCounts())).toEqual([NEW.id]);
    expect(await readAll(store, fresh)).toEqual(hashes);
    await store.close();
  });

  it('an object under a key the keyring lacks: the step throws IntegrityError naming it and changes nothing', async () => {
    const dataDir = join(dir, 'foreign');
    const { store, tip } = await buildOld(dataDir, { blocks: 30, packTo: 14, checkpointAt: 20 });
    const other = parseKey(generateKey());
    await store.append(tip.ledgerId, nextBlocks(tip, new Sealer(other), 1));
    const counts = await store.keyCounts();
    expect(counts[other.id]).toBe(1);
    const snapshot = async () =>
      Object.fromEntries(
        await Promise.all((await listFiles(dataDir)).map(async (p) => [p, (await readFile(p)).toString('base64')])),
      );
    const was = await snapshot();
    const err = await store.reseal(ring, 1000).catch((e: unknown) => e);
    expect(err, errorInfo(err)).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toContain(other.id);
    expect(await snapshot()).toEqual(was);
    expect(await store.keyCounts()).toEqual(counts);
    // A limit that is not a positive whole number is refused too.
    await expect(store.reseal(ring, 0)).rejects.toThrow(/limit/);
    await store.close();
  });
});

interface Run {
  acks: { height: number; hash: string }[];
  /** remaining is what the last step said was left (null: no step finished). */
  remaining: number | null;
  done: boolean;
  stderr: string;
}

// Run the reseal loop on dataDir; in 'loop' mode SIGKILL it `afterMs` after it is ready.
function runChild(dataDir: string, mode: 'loop' | 'finish', afterMs = 0): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/support/reseal-loop.ts', dataDir, String(SEGMENT_BYTES), '1', mode],
      {
        cwd: REPO,
        env: { ...process.env, OLD_KEY: OLD_TEXT, NEW_KEY: NEW_TEXT },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const run: Run = { acks: [], remaining: null, done: false, stderr: '' };
    let stdout = '';
    let timer: NodeJS.Timeout | undefined;
    const kill = () => child.kill('SIGKILL');
    const watchdog = setTimeout(kill, 60_000);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (run.stderr += d));
    child.stdout.on('data', (d: string) => {
      stdout += d;
      for (let nl = stdout.indexOf('\n'); nl >= 0; nl = stdout.indexOf('\n')) {
        const [word, a, b] = stdout.slice(0, nl).split(' ');
        stdout = stdout.slice(nl + 1);
        if (word === 'ready' && mode === 'loop') timer = setTimeout(kill, afterMs);
        else if (word === 'ack') run.acks.push({ height: Number(a), hash: b! });
        else if (word === 'step') run.remaining = Number(b);
        else if (word === 'done') run.done = true;
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(watchdog);
      clearTimeout(timer);
      if (mode === 'loop' && signal !== 'SIGKILL')
        reject(new Error(`reseal loop exited by itself (code ${code}):\n${run.stderr}`));
      else if (mode === 'finish' && code !== 0)
        reject(new Error(`reseal finish failed (code ${code}):\n${run.stderr}`));
      else resolve(run);
    });
  });
}

describe('SIGKILL while re-sealing', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('reseal-crash'));
  });
  afterAll(async () => {
    await cleanup();
  });

  it('after each of 20 kills the store reopens whole under old+new key; a last run finishes the rotation', async () => {
    const KILLS = 20;
    const dataDir = join(dir, 'data');
    const built = await buildOld(dataDir, { blocks: 400, packTo: 149, checkpointAt: 300 });
    let oldLeft = (await built.store.keyCounts())[OLD.id]!;
    const objects = oldLeft;
    await built.store.close();
    const acked = new Map<number, string>();
    let midRotation = 0;
    for (let kill = 1; kill <= KILLS; kill++) {
      const run = await runChild(dataDir, 'loop', 5 + Math.floor(Math.random() * 250));
      for (const a of run.acks) acked.set(a.height, a.hash);
      let store: LocalStore;
      try {
        ({ store } = await LocalStore.open(dataDir, { segmentBytes: SEGMENT_BYTES }));
      } catch (err) {
        throw new Error(`reopening after kill ${kill} failed: ${errorInfo(err)}\nchild stderr:\n${run.stderr}`);
      }
      try {
        const top = Math.max(399, ...acked.keys());
        expect(store.height, `kill ${kill}: the head is behind an acknowledged block`).toBeGreaterThanOrEqual(top);
        const hashes = await readAll(store, ring);
        const lost = [...acked].filter(([h, hash]) => hashes[h] !== hash).map(([h]) => h);
        expect(lost, `kill ${kill}: acknowledged blocks missing or changed`).toEqual([]);
        const counts = await store.keyCounts();
        expect(Object.keys(counts).filter((id) => id !== OLD.id && id !== NEW.id)).toEqual([]);
        const left = counts[OLD.id] ?? 0;
        // What a finished step re-sealed stays re-sealed.
        expect(left, `kill ${kill}: old-key objects came back`).toBeLessThanOrEqual(run.remaining ?? oldLeft);
        oldLeft = left;
        if (left > 0) midRotation++;
      } finally {
        await store.close();
      }
    }
    console.info(
      `reseal crash test: ${KILLS} kills, ${midRotation} of them mid-rotation, ${objects - oldLeft} of ${objects} old-key objects re-sealed before the last run`,
    );
    expect(midRotation).toBeGreaterThan(KILLS / 2);

    const last = await runChild(dataDir, 'finish');
    expect(last.done).toBe(true);
    const { store } = await LocalStore.open(dataDir, { segmentBytes: SEGMENT_BYTES });
    try {
      expect(Object.keys(await store.keyCounts())).toEqual([NEW.id]);
      const hashes = await readAll(store, fresh);
      expect([...acked].filter(([h, hash]) => hashes[h] !== hash)).toEqual([]);
      expect(await opened(store, old)).toMatchObject({ pages: 0, checkpoint: false });
      expect(await oldHeaders(dataDir)).toEqual([]);
      expect((await readdir(await generationDir(dataDir))).filter((n) => n.includes('.tmp-'))).toEqual([]);
    } finally {
      await store.close();
    }
  }, 300_000);
});
