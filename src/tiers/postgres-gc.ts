import type { Queryable } from '../db/client.js';
import { locateSql } from './postgres-locate.js';

/** GC_BATCH_ROWS bounds one DELETE: a thousand block rows, one short transaction each. */
export const GC_BATCH_ROWS = 1000;

/**
 * collectBlocks deletes the blocks of ledger row `lid` that no backup record reaches, and the branches left empty.
 *
 * A record reaches its head's branch from that branch's first height up to the record's height, then its parent
 * branch below that, and so on down to block 0 (the lineage in ledger_branches). So each branch has a reach: the
 * highest height any record's lineage covers on it (-1 for none). Blocks of a branch above its reach are garbage:
 * the tail of a branch a rollback abandoned, or a whole branch no record leads to. They are deleted top down, in
 * statements of at most `batchRows` rows, so a crash (or a timeout) leaves each branch a shorter contiguous run and a
 * second run finishes the job. Heights a branch reads from a pack above its reach are dropped from its reads (after
 * its loose rows, so the branch stays contiguous); then the packs no branch reads any more are deleted, and the
 * checkpoints whose block is gone. The caller runs it where no append to this ledger can interleave.
 */
export async function collectBlocks(
  db: Queryable,
  lid: number,
  batchRows = GC_BATCH_ROWS,
): Promise<{ blocks: number; bytes: number }> {
  const lineage = new Map<number, { parent: number | null; first: number }>();
  for (const b of await db.query(
    'SELECT branch, parent_branch, first_height FROM ledger_branches WHERE ledger_id = $1',
    [lid],
  )) {
    lineage.set(Number(b.branch), {
      parent: b.parent_branch === null ? null : Number(b.parent_branch),
      first: Number(b.first_height),
    });
  }
  const heads = await db.query<{ branch: number; top: string }>(
    `SELECT x.branch, max(b.height) AS top FROM blockchain_backups b
       CROSS JOIN LATERAL (${locateSql('b.ledger_id', 'b.height', "decode(b.head_hash, 'hex')")} LIMIT 1) x
     WHERE b.ledger_id = $1 GROUP BY x.branch`,
    [lid],
  );
  const reach = new Map<number, number>();
  for (const h of heads) {
    let branch: number | null = Number(h.branch);
    let to = Number(h.top);
    // A branch already reached this high passed the same heights on to its ancestors.
    while (branch !== null && (reach.get(branch) ?? -1) < to) {
      reach.set(branch, to);
      const b = lineage.get(branch);
      if (!b) break;
      to = b.first - 1;
      branch = b.parent;
    }
  }
  let blocks = 0;
  let bytes = 0;
  for (const branch of lineage.keys()) {
    const floor = reach.get(branch) ?? -1;
    const top = await db.query<{ top: string | null }>(
      'SELECT max(height) AS top FROM ledger_blocks WHERE ledger_id = $1 AND branch = $2',
      [lid, branch],
    );
    for (let hi = top[0]?.top == null ? floor : Number(top[0].top); hi > floor; hi -= batchRows) {
      const lo = Math.max(floor + 1, hi - batchRows + 1);
      const [d] = await db.query<{ n: string; bytes: string }>(
        `WITH d AS (DELETE FROM ledger_blocks WHERE ledger_id = $1 AND branch = $2 AND height BETWEEN $3 AND $4 RETURNING octet_length(sealed) AS size)
         SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM d`,
        [lid, branch, lo, hi],
      );
      blocks += Number(d!.n);
      bytes += Number(d!.bytes);
    }
    blocks += await dropReadsAbove(db, lid, branch, floor);
  }
  const [freed] = await db.query<{ bytes: string }>(
    `WITH d AS (DELETE FROM ledger_packs p WHERE p.ledger_id = $1
                  AND NOT EXISTS (SELECT 1 FROM ledger_pack_reads r WHERE r.pack_id = p.id)
                RETURNING octet_length(p.sealed) + octet_length(p.hashes) AS size)
     SELECT coalesce(sum(size), 0) AS bytes FROM d`,
    [lid],
  );
  bytes += Number(freed!.bytes);
  await db.query(
    `DELETE FROM ledger_checkpoints c WHERE c.ledger_id = $1 AND NOT EXISTS (${locateSql('c.ledger_id', 'c.height', 'c.hash')})`,
    [lid],
  );
  // Branches left without blocks and without children go too (their numbers may then be reused).
  for (;;) {
    const gone = await db.query(
      `DELETE FROM ledger_branches lb WHERE lb.ledger_id = $1
         AND NOT EXISTS (SELECT 1 FROM ledger_blocks k WHERE k.ledger_id = lb.ledger_id AND k.branch = lb.branch)
         AND NOT EXISTS (SELECT 1 FROM ledger_pack_reads r WHERE r.ledger_id = lb.ledger_id AND r.branch = lb.branch)
         AND NOT EXISTS (SELECT 1 FROM ledger_branches c WHERE c.ledger_id = lb.ledger_id AND c.parent_branch = lb.branch)
       RETURNING branch`,
      [lid],
    );
    if (gone.length === 0) break;
  }
  return { blocks, bytes };
}

// A branch's reads of packs above `floor`: whole reads deleted, the one across it cut at it. Returns the heights dropped.
async function dropReadsAbove(db: Queryable, lid: number, branch: number, floor: number): Promise<number> {
  const [gone] = await db.query<{ n: string }>(
    `WITH d AS (DELETE FROM ledger_pack_reads WHERE ledger_id = $1 AND branch = $2 AND from_height > $3
                RETURNING to_height - from_height + 1 AS n)
     SELECT coalesce(sum(n), 0) AS n FROM d`,
    [lid, branch, floor],
  );
  const cut = await db.query<{ n: string }>(
    `UPDATE ledger_pack_reads r SET to_height = $3 FROM ledger_pack_reads o
      WHERE r.ledger_id = $1 AND r.branch = $2 AND r.from_height <= $3 AND r.to_height > $3
        AND o.ledger_id = r.ledger_id AND o.branch = r.branch AND o.from_height = r.from_height
      RETURNING o.to_height - $3 AS n`,
    [lid, branch, floor],
  );
  return Number(gone!.n) + cut.reduce((n, r) => n + Number(r.n), 0);
}
