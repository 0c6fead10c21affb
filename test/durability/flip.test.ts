/**
 * Damage and torn writes: a store of ~40 blocks over several segment files is copied, one byte of the copy is flipped
 * (or a file is cut short), and the ledger is opened on the copy. Damage must be reported as an IntegrityError that
 * names the file, never served as a different chain; a torn final record (a crash mid-write) must be cut, leaving
 * exactly the chain before it, and the store must take saves again.
 */
import { chmod, cp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PawledgerError } from '../../src/errors.js';
import type { Block } from '../../src/ledger/types.js';
import { Ledger } from '../../src/service/ledger.js';
import { captureLogger, errorInfo, markInFlight, segmentFiles, tempDir, testConfig } from '../support/durability.js';

const SEGMENT_BYTES = 4096;
const HEADER = 52;
const RECORD_HEADER = 52;

/** Deterministic PRNG (mulberry32), so a failing position can be reproduced. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SegmentLayout {
  path: string;
  /** rel is the path inside the data folder, e.g. chain-000001/000000000008.seg */
  rel: string;
  size: number;
  /** records holds each record's [start, end) offsets. */
  records: [number, number][];
}

/** layoutOf parses a segment file's framing (independently of src/, from the documented format). */
function layoutOf(path: string, rel: string, buf: Buffer): SegmentLayout {
  const records: [number, number][] = [];
  let at = HEADER;
  while (at < buf.length) {
    const end = at + RECORD_HEADER + buf.readUInt32LE(at);
    records.push([at, end]);
    at = end;
  }
  expect(at, `${rel} does not end on a record boundary`).toBe(buf.length);
  return { path, rel, size: buf.length, records };
}

interface Flip {
  rel: string;
  offset: number;
  what: string;
  /** inFinalRecord is true for bytes of the chain's last record: the only damage that may read as a torn tail. */
  inFinalRecord: boolean;
  finished: boolean;
}

describe('flipped bytes and torn writes in the local store', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let original: string;
  let blocks: Block[];
  let segments: SegmentLayout[];
  let copies = 0;

  beforeAll(async () => {
    ({ dir: root, cleanup } = await tempDir('flip'));
    original = join(root, 'original');
    const ledger = await Ledger.open({ config: testConfig(original, SEGMENT_BYTES) });
    for (let i = 1; i < 40; i++) {
      await ledger.register({
        id: `flip-${i}`,
        name: `Flip test property ${i}`,
        address: `${i} Bitrot Lane`,
        owner: `owner-${i % 5}`,
        attributes: { rooms: i, tags: ['a', 'b'].slice(0, i % 3) },
      });
    }
    blocks = await ledger.chain(0, 1000);
    await ledger.close();
    segments = [];
    for (const path of await segmentFiles(original)) {
      segments.push(layoutOf(path, relative(original, path), await readFile(path)));
    }
  });
  afterAll(async () => {
    await cleanup();
  });

  /** copyStore copies the closed original store to a fresh folder. */
  async function copyStore(): Promise<string> {
    const dir = join(root, `copy-${copies++}`);
    await cp(original, dir, { recursive: true });
    return dir;
  }

  /** writable runs fn with a (possibly read-only, finished) file made writable, then restores its mode. */
  async function writable(path: string, fn: () => Promise<void>): Promise<void> {
    const m = (await stat(path)).mode & 0o777;
    await chmod(path, m | 0o200);
    await fn();
    await chmod(path, m);
  }

  async function flipByte(path: string, offset: number): Promise<void> {
    const buf = await readFile(path);
    buf[offset] = buf[offset]! ^ 0xff;
    await writable(path, () => writeFile(path, buf));
  }

  /** readAll returns every block of an open ledger. */
  async function readAll(ledger: Ledger): Promise<Block[]> {
    return ledger.chain(0, 1000);
  }

  it('builds a store of 40 blocks over several segments', () => {
    expect(blocks).toHaveLength(40);
    expect(segments.length).toBeGreaterThanOrEqual(4);
    expect(segments.reduce((n, s) => n + s.records.length, 0)).toBe(40);
  });

  it('reports every flipped byte in a segment as an integrity error naming the file, or at most cuts the final record', async () => {
    const rnd = prng(0x5eed);
    const flips: Flip[] = [];
    const last = segments.at(-1)!;
    const finalRecord = last.records.at(-1)!;
    segments.forEach((seg, s) => {
      const finished = s < segments.length - 1;
      const add = (offset: number, what: string) =>
        flips.push({ rel: seg.rel, offset, what, finished, inFinalRecord: seg === last && offset >= finalRecord[0] });
      // Segment header: magic, version, reserved, first height, ledger id, checksum.
      for (const o of [0, 3, 4, 6, 8, 12, 16, 40, 47, 48, 51]) add(o, `segment header byte ${o}`);
      seg.records.forEach(([start, end], r) => {
        // Record header fields: length (0-3), height (4-11), hash (12-43), payload crc (44-47), header crc (48-51).
        const fields = [0, 3, 4, 11, 12, 30, 43, 44, 47, 48, 51];
        for (let k = 0; k < 3; k++) {
          const o = fields[(r * 3 + k) % fields.length]!;
          add(start + o, `record ${r} header byte ${o}`);
        }
        // Payload: the sealed object's header (magic, version, key id, nonce), ciphertext, GCM tag.
        const payload = end - start - RECORD_HEADER;
        add(start + RECORD_HEADER + Math.floor(rnd() * 22), `record ${r} sealed header`);
        add(start + RECORD_HEADER + 22 + Math.floor(rnd() * (payload - 38)), `record ${r} ciphertext`);
        add(end - 1 - Math.floor(rnd() * 16), `record ${r} GCM tag`);
      });
    });
    // Every 5th byte of the chain's final record, and its very last byte.
    for (let o = finalRecord[0]; o < finalRecord[1]; o += 5) {
      flips.push({
        rel: last.rel,
        offset: o,
        what: `final record byte ${o - finalRecord[0]}`,
        finished: false,
        inFinalRecord: true,
      });
    }
    flips.push({
      rel: last.rel,
      offset: finalRecord[1] - 1,
      what: 'final record last byte',
      finished: false,
      inFinalRecord: true,
    });
    expect(flips.length).toBeGreaterThanOrEqual(250);

    const problems: string[] = [];
    let integrityErrors = 0;
    let cut = 0;
    for (const [i, flip] of flips.entries()) {
      const dir = await copyStore();
      const path = join(dir, flip.rel);
      await flipByte(path, flip.offset);
      const where = `${flip.rel} offset ${flip.offset} (${flip.what})`;
      let ledger: Ledger;
      try {
        ledger = await Ledger.open({ config: testConfig(dir, SEGMENT_BYTES) });
      } catch (err) {
        const e = err as PawledgerError;
        if (!(err instanceof PawledgerError) || e.code !== 'INTEGRITY')
          problems.push(`${where}: expected an IntegrityError, got ${errorInfo(err)}`);
        else if (!e.message.includes(basename(flip.rel)))
          problems.push(`${where}: the error does not name the file: ${e.message}`);
        else if (!/offset \d+|block \d+|header|magic/.test(e.message))
          problems.push(`${where}: the error names no offset, block or header: ${e.message}`);
        else integrityErrors++;
        // A refused open leaves the damage for the operator to see, and the folder unlocked: a retry says the same.
        if (i % 10 === 0) {
          const again = await Ledger.open({ config: testConfig(dir, SEGMENT_BYTES) }).then(
            async (l) => (await l.close(), 'opened'),
            (e2: unknown) => errorInfo(e2),
          );
          if (again !== errorInfo(err))
            problems.push(`${where}: a second open said ${again}, the first ${errorInfo(err)}`);
        }
        continue;
      }
      try {
        const chain = await readAll(ledger);
        const head = ledger.head;
        const differs = chain.findIndex((b, k) => JSON.stringify(b) !== JSON.stringify(blocks[k]));
        if (differs >= 0) problems.push(`${where}: opened with a block ${differs} that differs from the original`);
        else if (head.index !== chain.length - 1 || head.hash !== blocks[head.index]?.hash) {
          problems.push(`${where}: opened with head ${head.index} ${head.hash.slice(0, 12)}, not an original block`);
        } else if (!flip.inFinalRecord) {
          problems.push(
            `${where}: damage outside the final record went unreported (opened at block ${head.index} of ${blocks.length - 1})`,
          );
        } else if (head.index < blocks.length - 2) {
          problems.push(`${where}: opened at block ${head.index}: more than the final record was dropped`);
        } else {
          const report = await ledger.verify();
          if (!report.ok) problems.push(`${where}: opened but verify fails: ${report.reason}`);
          else cut++;
        }
      } finally {
        await ledger.close();
      }
    }
    console.info(
      `flip test: ${flips.length} flips, ${integrityErrors} integrity errors, ${cut} opened with the final record cut`,
    );
    expect(problems).toEqual([]);
  }, 60_000);

  it('reports a flipped byte in CURRENT as a clear integrity error', async () => {
    const size = (await stat(join(original, 'CURRENT'))).size;
    const problems: string[] = [];
    for (let o = 0; o < size; o++) {
      const dir = await copyStore();
      await flipByte(join(dir, 'CURRENT'), o);
      const outcome = await Ledger.open({ config: testConfig(dir, SEGMENT_BYTES) }).then(
        async (l) => (await l.close(), null),
        (err: unknown) => err,
      );
      if (outcome === null) problems.push(`CURRENT byte ${o}: opened anyway`);
      else if (!(outcome instanceof PawledgerError) || !['INTEGRITY', 'CONFIG'].includes(outcome.code)) {
        problems.push(`CURRENT byte ${o}: ${errorInfo(outcome)}`);
      } else if (!outcome.message.includes('CURRENT'))
        problems.push(`CURRENT byte ${o}: message does not name CURRENT: ${outcome.message}`);
    }
    expect(problems).toEqual([]);
  });

  it('reports a flipped byte in ledger.key as a clear configuration or integrity error', async () => {
    const size = (await stat(join(original, 'ledger.key'))).size;
    const problems: string[] = [];
    for (let o = 0; o < size; o++) {
      const dir = await copyStore();
      const segmentsBefore = await Promise.all((await segmentFiles(dir)).map((p) => readFile(p)));
      await flipByte(join(dir, 'ledger.key'), o);
      const outcome = await Ledger.open({ config: testConfig(dir, SEGMENT_BYTES) }).then(
        async (l) => (await l.close(), null),
        (err: unknown) => err,
      );
      if (outcome === null) problems.push(`ledger.key byte ${o}: opened anyway`);
      else if (!(outcome instanceof PawledgerError) || !['INTEGRITY', 'CONFIG'].includes(outcome.code)) {
        problems.push(`ledger.key byte ${o}: ${errorInfo(outcome)}`);
      } else if (!`${outcome.message} ${outcome.hint ?? ''}`.match(/ledger\.key|LEDGER_ENCRYPTION_KEY/)) {
        problems.push(`ledger.key byte ${o}: the error does not point at the key: ${outcome.message}`);
      }
      // A bad key must never make the store be rewritten or replaced.
      const segmentsAfter = await Promise.all((await segmentFiles(dir)).map((p) => readFile(p)));
      if (
        segmentsAfter.length !== segmentsBefore.length ||
        segmentsAfter.some((b, k) => !b.equals(segmentsBefore[k]!))
      ) {
        problems.push(`ledger.key byte ${o}: the segments changed`);
      }
    }
    expect(problems).toEqual([]);
  });

  describe('a torn final record (the file ends inside it)', () => {
    const points: [string, (start: number, end: number) => number][] = [
      ['1 byte into the record header', (s) => s + 1],
      ['inside the record header', (s) => s + 30],
      ['1 byte short of the record header', (s) => s + RECORD_HEADER - 1],
      ['right after the record header', (s) => s + RECORD_HEADER],
      ['1 byte into the payload', (s) => s + RECORD_HEADER + 1],
      ['mid-payload', (s, e) => Math.floor((s + RECORD_HEADER + e) / 2)],
      ['1 byte short of the end', (_s, e) => e - 1],
    ];
    for (const [name, at] of points) {
      it(`cut ${name}: opens with exactly the chain before it, logs the cut, and saves again`, async () => {
        const last = segments.at(-1)!;
        const [start, end] = last.records.at(-1)!;
        const dir = await copyStore();
        await markInFlight(dir, blocks.length - 1, blocks.at(-1)!.hash);
        const path = join(dir, last.rel);
        const length = at(start, end);
        await truncate(path, length);

        const { logger, lines } = captureLogger();
        const ledger = await Ledger.open({ config: testConfig(dir, SEGMENT_BYTES), logger });
        try {
          expect(ledger.head.index).toBe(blocks.length - 2);
          expect(ledger.head.hash).toBe(blocks.at(-2)!.hash);
          expect(await readAll(ledger)).toEqual(blocks.slice(0, -1));
          expect(await ledger.verify()).toMatchObject({ ok: true, totalBlocks: blocks.length - 1 });
          // Quietly (info): the head marker shows the torn save was never acknowledged.
          const cut = lines.find((l) => 'tornBytes' in l);
          expect(cut, 'the torn tail was cut without a log line').toBeDefined();
          expect(cut!.level).toBe(30);
          expect(cut!.msg).toMatch(/never acknowledged/);
          expect(cut!.tornBytes).toBe(length - start);
          expect((await stat(path)).size, 'the torn bytes are still in the file').toBe(start);

          // The lost save can be made again, and the store takes it where the torn one was.
          const again = await ledger.register({
            id: 'after-tear',
            name: 'After the tear',
            address: '1 Mended Road',
            owner: 'o',
          });
          expect(again.block.index).toBe(blocks.length - 1);
          expect(again.block.previousHash).toBe(blocks.at(-2)!.hash);
        } finally {
          await ledger.close();
        }
        const reopened = await Ledger.open({ config: testConfig(dir, SEGMENT_BYTES) });
        try {
          expect(reopened.head.index).toBe(blocks.length - 1);
          expect((await reopened.property('after-tear')).property.name).toBe('After the tear');
          expect(await reopened.verify()).toMatchObject({ ok: true, totalBlocks: blocks.length });
        } finally {
          await reopened.close();
        }
      });
    }

    it('cut exactly at the record boundary: opens with the chain before it and logs no cut', async () => {
      const last = segments.at(-1)!;
      const [start] = last.records.at(-1)!;
      const dir = await copyStore();
      await markInFlight(dir, blocks.length - 1, blocks.at(-1)!.hash);
      await truncate(join(dir, last.rel), start);
      const { logger, lines } = captureLogger();
      const ledger = await Ledger.open({ config: testConfig(dir, SEGMENT_BYTES), logger });
      try {
        expect(ledger.head.hash).toBe(blocks.at(-2)!.hash);
        expect(lines.filter((l) => l.level >= 40)).toEqual([]);
      } finally {
        await ledger.close();
      }
    });
  });

  // After a clean stop every block is acknowledged: a block gone at a record boundary (which no crash could cut) is a
  // loss, and a store without another copy refuses to start rather than carry on without it.
  for (const [name, cut] of [
    [
      'the last block cut at its record boundary',
      async (dir: string) => truncate(join(dir, segments.at(-1)!.rel), segments.at(-1)!.records.at(-1)![0]),
    ],
    ['the last segment deleted', async (dir: string) => rm(join(dir, segments.at(-1)!.rel))],
    [
      'the chain folder deleted',
      async (dir: string) => rm(join(dir, segments[0]!.rel.split('/')[0]!), { recursive: true }),
    ],
    [
      'CURRENT and the chain folder deleted',
      async (dir: string) => {
        await rm(join(dir, 'CURRENT'));
        await rm(join(dir, segments[0]!.rel.split('/')[0]!), { recursive: true });
      },
    ],
  ] as const) {
    it(`${name} after a clean stop: refused as a loss of acknowledged blocks, never a new ledger`, async () => {
      const dir = await copyStore();
      await cut(dir);
      const outcome = await Ledger.open({ config: testConfig(dir, SEGMENT_BYTES) }).then(
        async (l) => (await l.close(), `opened at block ${l.head.index}`),
        (err: unknown) => err,
      );
      expect(outcome).toBeInstanceOf(PawledgerError);
      expect((outcome as PawledgerError).code).toBe('INTEGRITY');
      expect((outcome as PawledgerError).message).toMatch(/acknowledged|missing/);
      expect((outcome as PawledgerError).message).not.toMatch(/no acknowledged save is affected/);
      // Nothing was written over it: still no genesis block, and the same refusal next time.
      const again = await Ledger.open({ config: testConfig(dir, SEGMENT_BYTES) }).then(
        async (l) => (await l.close(), 'opened'),
        (e: unknown) => e,
      );
      expect(again).toBeInstanceOf(PawledgerError);
    });
  }

  it('a crash while rolling to a new segment (new file shorter than its header) loses nothing and saves go on', async () => {
    const dir = await copyStore();
    const gen = join(dir, segments[0]!.rel, '..');
    const next = join(gen, `${String(blocks.length).padStart(12, '0')}.seg`);
    // The roll creates the file, then writes its 52-byte header: a crash between leaves it empty or partial.
    const header = (await readFile(segments[0]!.path)).subarray(0, 20);
    await writeFile(next, header, { mode: 0o600 });
    const ledger = await Ledger.open({ config: testConfig(dir, SEGMENT_BYTES) });
    try {
      expect(ledger.head.hash).toBe(blocks.at(-1)!.hash);
      const saved = await ledger.register({
        id: 'after-roll',
        name: 'After the roll',
        address: '2 Rolling Way',
        owner: 'o',
      });
      expect(saved.block.index).toBe(blocks.length);
    } finally {
      await ledger.close();
    }
    const reopened = await Ledger.open({ config: testConfig(dir, SEGMENT_BYTES) });
    try {
      expect(reopened.head.index).toBe(blocks.length);
      expect(await reopened.verify()).toMatchObject({ ok: true, totalBlocks: blocks.length + 1 });
    } finally {
      await reopened.close();
    }
  });

  it('a finished segment cut short is an integrity error naming it, not a torn tail', async () => {
    const seg = segments[1]!;
    const dir = await copyStore();
    await writable(join(dir, seg.rel), () => truncate(join(dir, seg.rel), seg.size - 10));
    const err = await Ledger.open({ config: testConfig(dir, SEGMENT_BYTES) }).then(
      async (l) => (await l.close(), null),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PawledgerError);
    expect((err as PawledgerError).code).toBe('INTEGRITY');
    expect((err as PawledgerError).message).toContain(basename(seg.rel));
  });
  // A crash during the very first start, after the first segment's header was written and synced but before the
  // genesis block was (or with the genesis record torn): nothing was ever acknowledged, so the next start must simply
  // create the ledger, not refuse to start forever.
  for (const [name, keep] of [
    ['after the first segment header, before the genesis record', () => HEADER],
    ['inside the genesis record', (size: number) => HEADER + Math.floor((size - HEADER) / 2)],
  ] as const) {
    it(`a crash during the very first start (${name}) leaves a store that opens and takes saves`, async () => {
      const dataDir = join(root, `first-start-${copies++}`);
      const first = await Ledger.open({ config: testConfig(dataDir, SEGMENT_BYTES) });
      await first.close();
      await markInFlight(dataDir, 0, first.head.hash);
      const [seg] = await segmentFiles(dataDir);
      await truncate(seg!, keep((await stat(seg!)).size));

      let ledger: Ledger;
      try {
        ledger = await Ledger.open({ config: testConfig(dataDir, SEGMENT_BYTES) });
      } catch (err) {
        throw new Error(`the ledger no longer starts after a crash during its first start: ${errorInfo(err)}`);
      }
      try {
        expect(ledger.head.index).toBe(0);
        await ledger.register({ id: 'first', name: 'First', address: '1 Genesis Row', owner: 'o' });
      } finally {
        await ledger.close();
      }
      const reopened = await Ledger.open({ config: testConfig(dataDir, SEGMENT_BYTES) });
      try {
        expect(reopened.head.index).toBe(1);
        expect(await reopened.verify()).toMatchObject({ ok: true, totalBlocks: 2 });
      } finally {
        await reopened.close();
      }
    });
  }

  // CURRENT is never missing after a crash (it is written before the first segment and only ever replaced by an
  // atomic rename), so a missing CURRENT beside a chain folder that holds segments is damage. Starting a new, empty
  // ledger then would hide every saved property, and the next start would delete the old chain folder as garbage.
  it('a missing CURRENT beside a chain folder with segments is refused, and nothing is deleted', async () => {
    const dir = await copyStore();
    await rm(join(dir, 'CURRENT'));
    const gen = segments[0]!.rel.split('/')[0]!;
    const before = (await readdir(join(dir, gen))).sort();
    const outcome = await Ledger.open({ config: testConfig(dir, SEGMENT_BYTES) }).then(
      async (l) => {
        const what = `opened ledger ${l.ledgerId.slice(0, 16)} at block ${l.head.index}`;
        await l.close();
        return what;
      },
      (err: unknown) => err,
    );
    // Whatever happened, a second start must not have lost the chain folder.
    await Ledger.open({ config: testConfig(dir, SEGMENT_BYTES) }).then(
      (l) => l.close(),
      () => undefined,
    );
    expect((await readdir(join(dir, gen)).catch(() => [])).sort(), `${gen} was deleted`).toEqual(before);
    expect(outcome, 'a store without CURRENT was replaced by a new ledger').toBeInstanceOf(PawledgerError);
    expect((outcome as PawledgerError).code).toBe('INTEGRITY');
    expect((outcome as PawledgerError).message).toContain('CURRENT');
  });
});
