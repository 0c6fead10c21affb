import type { Row } from '../db/client.js';
import type { StoredBlock } from '../crypto/stored-block.js';
import { parseBackupKind, type BackupRecord, type NewBackup } from '../crypto/records.js';

/** The SQL text and row mapping of PostgresTier: its column lists, statement builders and row conversions. */

/** RECORD_COLUMNS are the columns toRecord reads, from blockchain_backups b joined to ledgers l. */
export const RECORD_COLUMNS = `b.id, b.name, b.backup_data, b.created_at, b.created_by, b.height, b.head_hash, b.size_bytes,
  b.kind, b.protected, b.chain_root, l.genesis_hash`;

/** toBuffer takes a bytea column as a Buffer, whichever form the driver gave it. */
export function toBuffer(v: unknown): Buffer {
  return Buffer.isBuffer(v) ? v : Buffer.from(v as Uint8Array);
}

/** toRecord maps a blockchain_backups row (RECORD_COLUMNS) to a BackupRecord. */
export function toRecord(r: Row): BackupRecord {
  return {
    id: String(r.id),
    tier: 'db',
    ledgerId: String(r.genesis_hash),
    name: String(r.name),
    kind: parseBackupKind(r.kind),
    createdAt: new Date(r.created_at as string | Date),
    createdBy: r.created_by === null ? null : Number(r.created_by),
    height: Number(r.height),
    headHash: String(r.head_hash),
    sizeBytes: Number(r.size_bytes),
    ...(typeof r.chain_root === 'string' ? { root: r.chain_root } : {}),
    protected: r.protected === true,
    seal: Buffer.from(String(r.backup_data), 'base64'),
  };
}

// The INSERT of a run of blocks. Fenced, its rows come from a VALUES list (typed, since nothing else types them)
// that yields nothing unless the statement's `fence` CTE found the lease current.
export function blockInsert(
  lid: number,
  branch: number,
  blocks: readonly StoredBlock[],
  firstParam: number,
  fenced = false,
) {
  const params: unknown[] = [lid, branch];
  const values: string[] = [];
  let bytes = 0;
  const [i, b, h, x, s] = fenced ? ['::integer', '::integer', '::bigint', '::bytea', '::bytea'] : ['', '', '', '', ''];
  for (const block of blocks) {
    const n = firstParam + params.length;
    params.push(block.height, Buffer.from(block.hash, 'hex'), block.sealed);
    values.push(`($${firstParam}${i}, $${firstParam + 1}${b}, $${n}${h}, $${n + 1}${x}, $${n + 2}${s})`);
    bytes += block.sealed.length + 32 + 16;
  }
  const columns = 'INSERT INTO ledger_blocks (ledger_id, branch, height, hash, sealed)';
  const sql = fenced
    ? `${columns} SELECT * FROM (VALUES ${values.join(', ')}) AS v WHERE EXISTS (SELECT 1 FROM fence)`
    : `${columns} VALUES ${values.join(', ')}`;
  return { sql, params, bytes };
}

/** recordPlaceholders are the 12 parameters of a blockchain_backups row, numbered from `first`. */
export function recordPlaceholders(first: number): string {
  return Array.from({ length: 12 }, (_, i) => `$${first + i}`).join(', ');
}

/** recordParams are a record's values in recordPlaceholders' order. */
export function recordParams(lid: number, r: NewBackup): unknown[] {
  const filename = `ledger-${r.ledgerId.slice(0, 12)}-${r.height}.pwl`;
  return [
    r.name,
    filename,
    r.seal.toString('base64'),
    r.createdAt,
    r.createdBy,
    lid,
    r.height,
    r.headHash,
    r.height + 1,
    r.sizeBytes,
    r.kind,
    r.root ?? null,
  ];
}
