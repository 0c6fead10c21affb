import type { Queryable } from '../db/client.js';

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
 * second run finishes the job. The caller runs it where no append to this ledger can interleave.
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
    `SELECT lb.branch, max(b.height) AS top FROM blockchain_backups b
       JOIN ledger_blocks lb ON lb.ledger_id = b.ledger_id AND lb.hash = decode(b.head_hash, 'hex') AND lb.height = b.height
     WHERE b.ledger_id = $1 GROUP BY lb.branch`,
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
  }
  // Branches left without blocks and without children go too (their numbers may then be reused).
  for (;;) {
    const gone = await db.query(
      `DELETE FROM ledger_branches lb WHERE lb.ledger_id = $1
         AND NOT EXISTS (SELECT 1 FROM ledger_blocks k WHERE k.ledger_id = lb.ledger_id AND k.branch = lb.branch)
         AND NOT EXISTS (SELECT 1 FROM ledger_branches c WHERE c.ledger_id = lb.ledger_id AND c.parent_branch = lb.branch)
       RETURNING branch`,
      [lid],
    );
    if (gone.length === 0) break;
  }
  return { blocks, bytes };
}
