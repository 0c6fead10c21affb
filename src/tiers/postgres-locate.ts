import type { Queryable } from '../db/client.js';
import { toBuffer } from './postgres-rows.js';

/**
 * Where PostgresTier holds a block: a loose row of ledger_blocks, or a height a branch reads from a pack
 * (ledger_pack_reads, migration 0005). A block is held on exactly one branch, whichever form it takes.
 */

/**
 * locateSql selects the branch holding the block at height `h` with hash `x` (bytea) in ledger `l` (SQL expressions,
 * usually parameters), loose or packed: no row when it is not held.
 */
export function locateSql(l: string, h: string, x: string): string {
  return `SELECT branch FROM ledger_blocks WHERE ledger_id = ${l} AND height = ${h} AND hash = ${x}
    UNION ALL
    SELECT r.branch FROM ledger_pack_reads r JOIN ledger_packs p ON p.id = r.pack_id
     WHERE r.ledger_id = ${l} AND r.to_height >= ${h} AND r.from_height <= ${h}
       AND substring(p.hashes FROM (${h} - p.from_height)::integer * 32 + 1 FOR 32) = ${x}`;
}

/** locate is the branch holding block (height, hash) of ledger row `lid`, or null. */
export async function locate(q: Queryable, lid: number, height: number, hash: string): Promise<number | null> {
  const rows = await q.query<{ branch: number }>(`${locateSql('$1', '$2::bigint', '$3::bytea')} LIMIT 1`, [
    lid,
    height,
    Buffer.from(hash, 'hex'),
  ]);
  return rows[0] ? Number(rows[0].branch) : null;
}

/** occupied tells whether `branch` holds any block at `height` (a successor there makes the next append fork). */
export async function occupied(q: Queryable, lid: number, branch: number, height: number): Promise<boolean> {
  const rows = await q.query(
    `SELECT 1 FROM ledger_blocks WHERE ledger_id = $1 AND branch = $2 AND height = $3
     UNION ALL
     SELECT 1 FROM ledger_pack_reads WHERE ledger_id = $1 AND branch = $2 AND from_height <= $3 AND to_height >= $3
     LIMIT 1`,
    [lid, branch, height],
  );
  return rows.length > 0;
}

/** branchHashAt is the hash of the block `branch` holds at `height`, or null. */
export async function branchHashAt(q: Queryable, lid: number, branch: number, height: number): Promise<string | null> {
  const rows = await q.query<{ hash: Uint8Array }>(
    `SELECT hash FROM ledger_blocks WHERE ledger_id = $1 AND branch = $2 AND height = $3
     UNION ALL
     SELECT substring(p.hashes FROM ($3 - p.from_height)::integer * 32 + 1 FOR 32) FROM ledger_pack_reads r
       JOIN ledger_packs p ON p.id = r.pack_id
      WHERE r.ledger_id = $1 AND r.branch = $2 AND r.from_height <= $3 AND r.to_height >= $3
     LIMIT 1`,
    [lid, branch, height],
  );
  return rows[0] ? toBuffer(rows[0].hash).toString('hex') : null;
}

/** HeldBlock is a block held in a range of heights: its hash, its branch, and whether it is loose or packed. */
export interface HeldBlock {
  height: number;
  hash: string;
  branch: number;
  loose: boolean;
}

/** heldBetween lists every block of ledger row `lid` held at heights from..to, on any branch. */
export async function heldBetween(q: Queryable, lid: number, from: number, to: number): Promise<HeldBlock[]> {
  const out: HeldBlock[] = [];
  for (const r of await q.query<{ branch: number; height: number; hash: Uint8Array }>(
    'SELECT branch, height, hash FROM ledger_blocks WHERE ledger_id = $1 AND height BETWEEN $2 AND $3',
    [lid, from, to],
  )) {
    out.push({
      height: Number(r.height),
      hash: toBuffer(r.hash).toString('hex'),
      branch: Number(r.branch),
      loose: true,
    });
  }
  // Only the slice of each pack's hashes that falls in from..to.
  for (const r of await q.query<{ branch: number; lo: number; hi: number; hashes: Uint8Array }>(
    `SELECT r.branch, greatest(r.from_height, $2) AS lo, least(r.to_height, $3) AS hi,
            substring(p.hashes FROM (greatest(r.from_height, $2) - p.from_height)::integer * 32 + 1
                      FOR (least(r.to_height, $3) - greatest(r.from_height, $2) + 1)::integer * 32) AS hashes
       FROM ledger_pack_reads r JOIN ledger_packs p ON p.id = r.pack_id
      WHERE r.ledger_id = $1 AND r.to_height >= $2 AND r.from_height <= $3`,
    [lid, from, to],
  )) {
    const hashes = toBuffer(r.hashes);
    for (let h = Number(r.lo); h <= Number(r.hi); h++) {
      const at = (h - Number(r.lo)) * 32;
      out.push({ height: h, hash: hashes.toString('hex', at, at + 32), branch: Number(r.branch), loose: false });
    }
  }
  return out;
}
