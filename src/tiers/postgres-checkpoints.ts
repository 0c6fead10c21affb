import type { SealedCheckpoint } from '../crypto/checkpoints.js';
import type { Queryable } from '../db/client.js';
import { NotFoundError } from '../errors.js';
import { lineageRuns } from './postgres-branches.js';
import { branchHashAt, locate } from './postgres-locate.js';
import type { Run } from './postgres-read.js';
import { toBuffer } from './postgres-rows.js';
import type { StoredCheckpoint } from './tier.js';

/** CHECKPOINTS_KEPT is how many checkpoints putCheckpoint keeps on a chain: the newest, and one to fall back on. */
export const CHECKPOINTS_KEPT = 2;

/**
 * storeCheckpoint is PostgresTier.putCheckpoint inside its (fenced) transaction: it stores the checkpoint's parts
 * (none if it is stored already) and drops the older checkpoints of its chain past the newest CHECKPOINTS_KEPT. The
 * checkpoint's block must be held (else NotFoundError). It returns the bytes written and how many it dropped.
 */
export async function storeCheckpoint(
  tx: Queryable,
  lid: number,
  cp: SealedCheckpoint,
  label: string,
): Promise<{ bytes: number; dropped: number }> {
  const branch = await locate(tx, lid, cp.height, cp.hash);
  if (branch === null)
    throw new NotFoundError(`${label} lacks block ${cp.height} (${cp.hash.slice(0, 16)}) that the checkpoint follows`);
  const hash = Buffer.from(cp.hash, 'hex');
  const seen = await tx.query('SELECT 1 FROM ledger_checkpoints WHERE ledger_id = $1 AND height = $2 AND hash = $3', [
    lid,
    cp.height,
    hash,
  ]);
  let bytes = 0;
  if (seen.length === 0) {
    for (const [i, body] of cp.parts.entries()) {
      await tx.query(
        'INSERT INTO ledger_checkpoints (ledger_id, height, hash, part, body) VALUES ($1, $2, $3, $4, $5)',
        [lid, cp.height, hash, i, body],
      );
      bytes += body.length;
    }
  }
  const runs = await lineageRuns(tx, lid, branch, cp.height, label);
  const onChain = await checkpointsOn(tx, lid, runs, cp.height);
  const dropped = onChain.slice(CHECKPOINTS_KEPT);
  for (const old of dropped) {
    await tx.query('DELETE FROM ledger_checkpoints WHERE ledger_id = $1 AND height = $2 AND hash = $3', [
      lid,
      old.height,
      Buffer.from(old.hash, 'hex'),
    ]);
  }
  return { bytes, dropped: dropped.length };
}

/** checkpointsOn lists the checkpoints on the chain of `runs` at or below `height`, newest first. */
export async function checkpointsOn(
  q: Queryable,
  lid: number,
  runs: readonly Run[],
  height: number,
): Promise<{ height: number; hash: string }[]> {
  const out: { height: number; hash: string }[] = [];
  for (const r of await q.query<{ height: string; hash: Uint8Array }>(
    'SELECT DISTINCT height, hash FROM ledger_checkpoints WHERE ledger_id = $1 AND height <= $2 ORDER BY height DESC',
    [lid, height],
  )) {
    const h = Number(r.height);
    const hash = toBuffer(r.hash).toString('hex');
    const run = runs.find((x) => h >= x.from && h <= x.to);
    if (run && (await branchHashAt(q, lid, run.branch, h)) === hash) out.push({ height: h, hash });
  }
  return out;
}

/** storedCheckpoint is a checkpoint whose parts are read one at a time, on demand. */
export function storedCheckpoint(q: Queryable, lid: number, height: number, hash: string): StoredCheckpoint {
  return {
    height,
    hash,
    async *parts() {
      for (let part = 0; ; part++) {
        const rows = await q.query<{ body: Uint8Array }>(
          'SELECT body FROM ledger_checkpoints WHERE ledger_id = $1 AND height = $2 AND hash = $3 AND part = $4',
          [lid, height, Buffer.from(hash, 'hex'), part],
        );
        if (rows.length === 0) return;
        yield toBuffer(rows[0]!.body);
      }
    },
  };
}
