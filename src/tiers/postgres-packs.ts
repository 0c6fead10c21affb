import type { SealedPack } from '../crypto/packs.js';
import type { Queryable } from '../db/client.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { branchAfter } from './postgres-branches.js';
import { heldBetween, locate, type HeldBlock } from './postgres-locate.js';

/**
 * storePack is PostgresTier.putPack inside its (fenced) transaction, for ledger row `lid`: it inserts the pack, has
 * each branch that held some of its blocks loose read them from it instead (deleting those rows), and adds the blocks
 * the database lacks on the branch append would put them on. A pack already stored is skipped. It returns the bytes
 * written and how many loose rows it deleted. The pack's blocks the database already reads from another pack stay read from there. A stored pack whose
 * bytes were altered is rewritten from this copy (the repair of a pack).
 */
export async function storePack(
  tx: Queryable,
  lid: number,
  parentHash: string | null,
  pack: SealedPack,
  label: string,
): Promise<{ bytes: number; dropped: number }> {
  const count = pack.to - pack.from + 1;
  if (pack.from < 0 || count < 1 || pack.hashes.length !== count || (pack.from === 0) !== (parentHash === null))
    throw new ValidationError(
      `a pack of blocks ${pack.from}-${pack.to} with ${pack.hashes.length} hashes is malformed`,
    );
  const last = Buffer.from(pack.hashes.at(-1)!, 'hex');
  const hashes = Buffer.from(pack.hashes.join(''), 'hex');
  // Stored already: skipped, unless its stored bytes differ (altered in place): then this copy, which the sender
  // verified, replaces them. That is how an altered pack is repaired.
  const seen = await tx.query<{ altered: boolean }>(
    `SELECT (hashes IS DISTINCT FROM $5 OR sealed IS DISTINCT FROM $6) AS altered FROM ledger_packs
      WHERE ledger_id = $1 AND to_height = $2 AND last_hash = $3 AND from_height = $4`,
    [lid, pack.to, last, pack.from, hashes, pack.sealed],
  );
  if (seen.length > 0) {
    if (!seen[0]!.altered) return { bytes: 0, dropped: 0 };
    await tx.query(
      `UPDATE ledger_packs SET hashes = $5, sealed = $6
        WHERE ledger_id = $1 AND to_height = $2 AND last_hash = $3 AND from_height = $4`,
      [lid, pack.to, last, pack.from, hashes, pack.sealed],
    );
    return { bytes: pack.sealed.length + hashes.length, dropped: 0 };
  }
  if (parentHash !== null && (await locate(tx, lid, pack.from - 1, parentHash)) === null)
    throw new NotFoundError(
      `${label} lacks block ${pack.from - 1} (${parentHash.slice(0, 16)}) that the pack of blocks ${pack.from}-${pack.to} follows`,
    );
  // The pack's blocks the database holds: a prefix of it (a block is held only after its parent).
  const byHeight = new Map<number, HeldBlock>();
  for (const b of await heldBetween(tx, lid, pack.from, pack.to))
    if (b.hash === pack.hashes[b.height - pack.from]) byHeight.set(b.height, b);
  let lacking = pack.from;
  while (lacking <= pack.to && byHeight.has(lacking)) lacking++;
  const [row] = await tx.query<{ id: string }>(
    `INSERT INTO ledger_packs (ledger_id, from_height, to_height, last_hash, hashes, sealed)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
    [lid, pack.from, pack.to, last, hashes, pack.sealed],
  );
  const id = row!.id;
  // Loose runs become reads of the pack, branch by branch (a branch holds a contiguous run of the pack's heights).
  const loose = new Map<number, { from: number; to: number }>();
  for (let h = pack.from; h < lacking; h++) {
    const b = byHeight.get(h)!;
    if (!b.loose) continue;
    const run = loose.get(b.branch);
    if (run) run.to = h;
    else loose.set(b.branch, { from: h, to: h });
  }
  let dropped = 0;
  for (const [branch, run] of loose) {
    dropped += run.to - run.from + 1;
    await tx.query('DELETE FROM ledger_blocks WHERE ledger_id = $1 AND branch = $2 AND height BETWEEN $3 AND $4', [
      lid,
      branch,
      run.from,
      run.to,
    ]);
    await addRead(tx, lid, branch, run.from, run.to, id);
  }
  if (lacking <= pack.to) {
    const parent = lacking === pack.from ? parentHash : pack.hashes[lacking - 1 - pack.from]!;
    const branch = await branchAfter(tx, lid, parent, lacking, label);
    await addRead(tx, lid, branch, lacking, pack.to, id);
  }
  return { bytes: pack.sealed.length + hashes.length, dropped };
}

async function addRead(tx: Queryable, lid: number, branch: number, from: number, to: number, pack: string) {
  await tx.query(
    'INSERT INTO ledger_pack_reads (ledger_id, branch, from_height, to_height, pack_id) VALUES ($1, $2, $3, $4, $5)',
    [lid, branch, from, to, pack],
  );
}

/** packHeld tells whether ledger row `lid` holds a pack ending at block `to` with hash `hash`. */
export async function packHeld(q: Queryable, lid: number, to: number, hash: string): Promise<boolean> {
  const rows = await q.query('SELECT 1 FROM ledger_packs WHERE ledger_id = $1 AND to_height = $2 AND last_hash = $3', [
    lid,
    to,
    Buffer.from(hash, 'hex'),
  ]);
  return rows.length > 0;
}
