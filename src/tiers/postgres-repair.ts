import type { StoredBlock } from '../crypto/stored-block.js';
import type { SqlClient } from '../db/client.js';

const BATCH = 1000;

/**
 * repairBlocks rewrites, from a chain that verified, the bytes of database blocks stored under the same hash
 * but altered (a flipped byte found when a database backup failed verification at startup). Catch-up alone never
 * would: it compares blocks by hash, and an altered block keeps its hash. It returns how many blocks it rewrote.
 */
export async function repairBlocks(
  writer: SqlClient,
  ledgerId: string,
  blocks: AsyncIterable<StoredBlock>,
): Promise<number> {
  let repaired = 0;
  let batch: StoredBlock[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const params: unknown[] = [ledgerId];
    const values = batch.map((b) => {
      params.push(Buffer.from(b.hash, 'hex'), b.sealed);
      return `($${params.length - 1}::bytea, $${params.length}::bytea)`;
    });
    const rows = await writer.query(
      `UPDATE ledger_blocks b SET sealed = v.sealed FROM (VALUES ${values.join(', ')}) AS v (hash, sealed)
       WHERE b.ledger_id = (SELECT id FROM ledgers WHERE genesis_hash = $1) AND b.hash = v.hash AND b.sealed IS DISTINCT FROM v.sealed
       RETURNING 1`,
      params,
    );
    repaired += rows.length;
    batch = [];
  };
  for await (const b of blocks) {
    batch.push(b);
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  return repaired;
}
