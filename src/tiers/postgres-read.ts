import type { ChainPage, SealedPack } from '../crypto/packs.js';
import type { StoredBlock } from '../crypto/stored-block.js';
import type { Queryable, SqlClient } from '../db/client.js';
import type { NotFoundError } from '../errors.js';
import { toBuffer } from './postgres-rows.js';

/** Run is a stretch of a chain held on one branch: heights from..to. */
export interface Run {
  branch: number;
  from: number;
  to: number;
}

// Loose rows per page: a few MB per round trip.
const PAGE_ROWS = 5000;
// Packs per fetch (about 512 KiB of bodies each): one batch is read while the caller works on the one before.
const PACK_BATCH = 8;

type Segment = { branch: number; from: number; to: number; pack?: string };

// How many plans in a row may make no progress before a read gives up (blocks moved under it by a compaction).
const REPLANS = 3;

/**
 * readRuns yields the blocks of `runs` (oldest first) from `start` on, as pages: a pack (whole, or cut to the heights
 * the run reads of it) or loose blocks. Memory stays bounded: loose rows come a page at a time, packs a batch at a
 * time, the next batch fetched while the caller handles the one before. A putPack or a collection that commits while
 * it reads can move blocks from the loose rows it planned to read into a pack: it then plans again from the height it
 * reached. A height still missing throws NotFoundError.
 */
export async function* readRuns(
  db: PackReader,
  lid: number,
  runs: readonly Run[],
  start: number,
  missing: (height: number) => NotFoundError,
): AsyncGenerator<ChainPage> {
  const end = runs.at(-1)?.to ?? -1;
  let expected = start;
  // Plans that made no progress in a row: a read that keeps moving forward may plan again any number of times.
  for (let stuck = 0; expected <= end; ) {
    const before = expected;
    for await (const page of planned(db, lid, runs, expected)) {
      const got = pageFrom(page, expected);
      if (!got) break;
      expected = 'pack' in got ? got.to + 1 : got.blocks.at(-1)!.height + 1;
      yield got;
      if (got !== page) break;
    }
    stuck = expected === before ? stuck + 1 : 0;
    if (stuck > REPLANS) throw missing(expected);
  }
  if (expected !== end + 1) throw missing(expected);
}

// The part of a page that continues the chain at `expected`: all of it, its consecutive prefix, or null.
function pageFrom(page: ChainPage, expected: number): ChainPage | null {
  if ('pack' in page) return page.from === expected ? page : null;
  let n = 0;
  while (n < page.blocks.length && page.blocks[n]!.height === expected + n) n++;
  if (n === 0) return null;
  return n === page.blocks.length ? page : { blocks: page.blocks.slice(0, n) };
}

// One plan of the read from `start`: the segments as they stand now, read in order.
async function* planned(db: PackReader, lid: number, runs: readonly Run[], start: number): AsyncGenerator<ChainPage> {
  const segments: Segment[] = [];
  for (const run of runs) {
    const from = Math.max(run.from, start);
    if (run.to < from) continue;
    for (const s of await segmentsOf(db, lid, { branch: run.branch, from, to: run.to })) {
      // Two reads of one pack that follow each other (blocks held loose and blocks added by one putPack, or two
      // branches meeting inside a pack) are one page: the pack is fetched and opened once, and read from its start.
      const prev = segments.at(-1);
      if (prev?.pack !== undefined && prev.pack === s.pack && prev.to + 1 === s.from) prev.to = s.to;
      else segments.push(s);
    }
  }
  const batches: string[][] = [];
  for (const s of segments) {
    if (!s.pack) continue;
    const last = batches.at(-1);
    if (last && last.length < PACK_BATCH) last.push(s.pack);
    else batches.push([s.pack]);
  }
  let next = 0;
  const fetchNext = () => (next < batches.length ? fetchPacks(db, lid, batches[next++]!) : null);
  let pending = fetchNext();
  let packs = new Map<string, SealedPack>();
  for (const s of segments) {
    if (!s.pack) {
      yield* loosePages(db, lid, s);
      continue;
    }
    if (!packs.has(s.pack)) {
      if (!pending) return;
      packs = await pending;
      pending = fetchNext();
    }
    const pack = packs.get(s.pack);
    // Gone since planned (collected): the caller plans again.
    if (!pack || s.from < pack.from || s.to > pack.to) return;
    yield { pack, from: s.from, to: s.to };
  }
}

// A run's segments, in height order: the pack reads that meet it, clipped, and the loose stretches between them.
async function segmentsOf(db: Queryable, lid: number, run: Run): Promise<Segment[]> {
  const reads = await db.query<{ from_height: string; to_height: string; pack_id: string }>(
    `SELECT from_height, to_height, pack_id FROM ledger_pack_reads
      WHERE ledger_id = $1 AND branch = $2 AND to_height >= $3 AND from_height <= $4 ORDER BY from_height`,
    [lid, run.branch, run.from, run.to],
  );
  const out: Segment[] = [];
  let at = run.from;
  for (const r of reads) {
    const lo = Math.max(Number(r.from_height), run.from);
    const hi = Math.min(Number(r.to_height), run.to);
    if (at < lo) out.push({ branch: run.branch, from: at, to: lo - 1 });
    out.push({ branch: run.branch, from: lo, to: hi, pack: String(r.pack_id) });
    at = hi + 1;
  }
  if (at <= run.to) out.push({ branch: run.branch, from: at, to: run.to });
  return out;
}

async function* loosePages(db: PackReader, lid: number, s: Segment): AsyncGenerator<{ blocks: StoredBlock[] }> {
  for (let from = s.from; from <= s.to; ) {
    const blocks = await looseRows(db, lid, s.branch, from, s.to);
    if (blocks.length === 0) return;
    yield { blocks };
    if (blocks.length < PAGE_ROWS) return;
    from = blocks.at(-1)!.height + 1;
  }
}

// Up to PAGE_ROWS loose blocks of a branch from `from` on: through binary COPY where the driver offers it.
async function looseRows(db: PackReader, lid: number, branch: number, from: number, to: number) {
  if (db.copyOut && [lid, branch, from, to].every(Number.isSafeInteger)) {
    const rows = await db.copyOut(
      `COPY (SELECT height, hash, sealed FROM ledger_blocks WHERE ledger_id = ${lid} AND branch = ${branch}
               AND height BETWEEN ${from} AND ${to} ORDER BY height LIMIT ${PAGE_ROWS}) TO STDOUT (FORMAT binary)`,
    );
    return rows.map(([height, hash, sealed]) => ({
      height: Number(height!.readBigInt64BE(0)),
      hash: hash!.toString('hex'),
      sealed: sealed!,
    }));
  }
  const rows = await db.query<{ height: number; hash: Uint8Array; sealed: Uint8Array }>(
    `SELECT height, hash, sealed FROM ledger_blocks
      WHERE ledger_id = $1 AND branch = $2 AND height BETWEEN $3 AND $4 ORDER BY height LIMIT $5`,
    [lid, branch, from, to, PAGE_ROWS],
  );
  return rows.map((r) => ({
    height: Number(r.height),
    hash: toBuffer(r.hash).toString('hex'),
    sealed: toBuffer(r.sealed),
  }));
}

/** PackReader is what reading needs of the database: queries, and binary COPY where the driver has it. */
export type PackReader = Queryable & Pick<SqlClient, 'copyOut'>;

/**
 * fetchPacks reads packs by id, as SealedPacks: through binary COPY where the driver offers it (the sealed bytes as
 * stored, no hex text), else one query (PGlite hands bytea over as bytes already).
 */
export function fetchPacks(db: PackReader, lid: number, ids: readonly string[]): Promise<Map<string, SealedPack>> {
  const p = (async () => {
    const out = new Map<string, SealedPack>();
    if (db.copyOut && Number.isSafeInteger(lid) && ids.every((id) => /^\d{1,18}$/.test(id))) {
      const rows = await db.copyOut(
        `COPY (SELECT id, from_height, hashes, sealed FROM ledger_packs WHERE ledger_id = ${lid} AND id IN (${ids.join(', ')})) TO STDOUT (FORMAT binary)`,
      );
      for (const [id, from, hashes, sealed] of rows)
        out.set(String(id!.readBigInt64BE(0)), toPack(Number(from!.readBigInt64BE(0)), hashes!, sealed!));
      return out;
    }
    const rows = await db.query<{ id: string; from_height: string; hashes: Uint8Array; sealed: Uint8Array }>(
      'SELECT id, from_height, hashes, sealed FROM ledger_packs WHERE ledger_id = $1 AND id = ANY($2::bigint[])',
      [lid, ids],
    );
    for (const r of rows) out.set(String(r.id), toPack(Number(r.from_height), toBuffer(r.hashes), toBuffer(r.sealed)));
    return out;
  })();
  // A batch fetched ahead may never be awaited (the caller stopped reading): its failure must not go unhandled.
  p.catch(() => {});
  return p;
}

/** toPack is a SealedPack from a ledger_packs row's columns. */
export function toPack(from: number, hashes: Buffer, sealed: Buffer): SealedPack {
  const list: string[] = [];
  for (let at = 0; at < hashes.length; at += 32) list.push(hashes.toString('hex', at, at + 32));
  return { from, to: from + list.length - 1, hashes: list, sealed };
}
