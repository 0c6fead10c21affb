import type { Queryable } from '../db/client.js';
import { NotFoundError } from '../errors.js';
import { locate, occupied } from './postgres-locate.js';

/**
 * branchAfter is the branch a block at `height` following block `parent` (null: the block is block 0) belongs to:
 * the parent's own branch if the parent is its tip, else a new branch forking there (ledger_branches). The parent may
 * be loose or packed. A missing parent is NotFoundError: the caller must send the missing blocks first.
 */
export async function branchAfter(
  tx: Queryable,
  lid: number,
  parent: string | null,
  height: number,
  label: string,
): Promise<number> {
  if (parent === null) {
    const roots = await tx.query('SELECT 1 FROM ledger_branches WHERE ledger_id = $1 AND first_height = 0', [lid]);
    if (roots.length > 0) return newBranch(tx, lid, null, 0);
    await tx.query(
      'INSERT INTO ledger_branches (ledger_id, branch, parent_branch, first_height) VALUES ($1, 1, NULL, 0)',
      [lid],
    );
    return 1;
  }
  const branch = height > 0 ? await locate(tx, lid, height - 1, parent) : null;
  if (branch === null)
    throw new NotFoundError(`${label} lacks block ${height - 1} (${parent.slice(0, 16)}) that block ${height} follows`);
  if (!(await occupied(tx, lid, branch, height))) return branch;
  return newBranch(tx, lid, branch, height);
}

async function newBranch(tx: Queryable, lid: number, parent: number | null, firstHeight: number): Promise<number> {
  const rows = await tx.query<{ branch: number }>(
    `INSERT INTO ledger_branches (ledger_id, branch, parent_branch, first_height)
     SELECT $1, COALESCE(MAX(branch), 0) + 1, $2::integer, $3 FROM ledger_branches WHERE ledger_id = $1 RETURNING branch`,
    [lid, parent, firstHeight],
  );
  return Number(rows[0]!.branch);
}

/**
 * lineageRuns is the chain ending at height `to` on `branch` as runs of branches, oldest first: that branch from its
 * first height, then its parent's below that, down to block 0.
 */
export async function lineageRuns(
  q: Queryable,
  lid: number,
  branch: number,
  to: number,
  label: string,
): Promise<{ branch: number; from: number; to: number }[]> {
  const branches = new Map<number, { parent: number | null; first: number }>();
  for (const b of await q.query(
    'SELECT branch, parent_branch, first_height FROM ledger_branches WHERE ledger_id = $1',
    [lid],
  )) {
    branches.set(Number(b.branch), {
      parent: b.parent_branch === null ? null : Number(b.parent_branch),
      first: Number(b.first_height),
    });
  }
  const runs: { branch: number; from: number; to: number }[] = [];
  let at: number | null = branch;
  let top = to;
  while (at !== null) {
    const b = branches.get(at);
    if (!b) throw new NotFoundError(`${label} lacks branch ${at} of its ledger row ${lid}`);
    runs.unshift({ branch: at, from: b.first, to: top });
    top = b.first - 1;
    at = b.parent;
  }
  return runs;
}
