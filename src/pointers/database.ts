import type { SqlClient } from '../db/client.js';
import { parseBackupKind, type BackupRecord } from '../crypto/records.js';
import type { CidPointer, PointerHistory } from './pointer.js';

type Row = Record<string, unknown>;

function toRecord(r: Row): BackupRecord {
  return {
    id: String(r.cid),
    tier: 'ipfs',
    ledgerId: String(r.genesis_hash),
    name: String(r.name),
    kind: parseBackupKind(r.kind),
    createdAt: new Date(r.created_at as string),
    createdBy: r.created_by === null ? null : Number(r.created_by),
    height: Number(r.height),
    headHash: String(r.head_hash),
    sizeBytes: Number(r.size_bytes),
    ...(typeof r.chain_root === 'string' ? { root: r.chain_root } : {}),
    protected: r.protected === true,
    seal: Buffer.from(String(r.backup_data), 'base64'),
  };
}

const COLUMNS =
  'i.cid, l.genesis_hash, i.name, i.kind, i.backup_data, i.created_at, i.created_by, i.height, i.head_hash, i.size_bytes, i.protected, i.chain_root';

/**
 * DatabasePointerStore keeps every IPFS backup in the ipfs_backups table: the history, newest first. Rows that
 * retention marked (pruned_at set) are left out of every answer until garbage collection forgets them.
 */
export class DatabasePointerStore implements PointerHistory {
  readonly name = 'database';
  /** db reads; writer writes (PostgresTier.writer: fenced by the writer lease when it is on). */
  constructor(
    private readonly db: () => SqlClient,
    private readonly writer: () => SqlClient = db,
  ) {}

  async latest(ledgerId?: string): Promise<CidPointer | null> {
    const rows = ledgerId
      ? await this.db().query(
          `SELECT ${COLUMNS} FROM ipfs_backups i JOIN ledgers l ON l.id = i.ledger_id WHERE l.genesis_hash = $1 AND i.is_head AND i.pruned_at IS NULL ORDER BY i.id DESC LIMIT 1`,
          [ledgerId],
        )
      : await this.db().query(
          `SELECT ${COLUMNS} FROM ipfs_backups i JOIN ledgers l ON l.id = i.ledger_id WHERE i.is_head AND i.pruned_at IS NULL ORDER BY i.id DESC LIMIT 1`,
        );
    const r = rows[0] ? toRecord(rows[0]) : null;
    return r ? { cid: r.id, record: r } : null;
  }

  async list(ledgerId: string | undefined, limit: number): Promise<BackupRecord[]> {
    const rows = ledgerId
      ? await this.db().query(
          `SELECT ${COLUMNS} FROM ipfs_backups i JOIN ledgers l ON l.id = i.ledger_id WHERE l.genesis_hash = $1 AND i.pruned_at IS NULL ORDER BY i.id DESC LIMIT $2`,
          [ledgerId, limit],
        )
      : await this.db().query(
          `SELECT ${COLUMNS} FROM ipfs_backups i JOIN ledgers l ON l.id = i.ledger_id WHERE i.pruned_at IS NULL ORDER BY i.id DESC LIMIT $1`,
          [limit],
        );
    return rows.map(toRecord);
  }

  async save(r: BackupRecord, head: boolean): Promise<void> {
    await this.writer().transaction(async (tx) => {
      await tx.query('INSERT INTO ledgers (genesis_hash) VALUES ($1) ON CONFLICT (genesis_hash) DO NOTHING', [
        r.ledgerId,
      ]);
      await tx.query(
        `INSERT INTO ipfs_backups (cid, ledger_id, name, kind, backup_data, created_at, created_by, height, head_hash, size_bytes, is_head, chain_root)
         SELECT $1, id, $2, $3, $4, $5, $6, $7, $8, $9, $11, $12 FROM ledgers WHERE genesis_hash = $10`,
        [
          r.id,
          r.name,
          r.kind,
          r.seal.toString('base64'),
          r.createdAt,
          r.createdBy,
          r.height,
          r.headHash,
          r.sizeBytes,
          r.ledgerId,
          head,
          r.root ?? null,
        ],
      );
    });
  }

  async get(cid: string): Promise<BackupRecord | null> {
    const rows = await this.db().query(
      `SELECT ${COLUMNS} FROM ipfs_backups i JOIN ledgers l ON l.id = i.ledger_id WHERE i.cid = $1 AND i.pruned_at IS NULL ORDER BY i.id DESC LIMIT 1`,
      [cid],
    );
    return rows[0] ? toRecord(rows[0]) : null;
  }

  async markPruned(cids: readonly string[]): Promise<number> {
    if (cids.length === 0) return 0;
    const rows = await this.writer().query(
      'UPDATE ipfs_backups SET pruned_at = now() WHERE cid = ANY($1::text[]) AND pruned_at IS NULL AND NOT protected RETURNING cid',
      [cids],
    );
    return new Set(rows.map((r) => String(r.cid))).size;
  }

  async setProtected(cid: string, on: boolean): Promise<boolean> {
    const rows = await this.writer().query(
      'UPDATE ipfs_backups SET protected = $2 WHERE cid = $1 AND pruned_at IS NULL RETURNING id',
      [cid, on],
    );
    return rows.length > 0;
  }

  async pruned(ledgerId: string): Promise<string[]> {
    const rows = await this.db().query(
      'SELECT DISTINCT i.cid FROM ipfs_backups i JOIN ledgers l ON l.id = i.ledger_id WHERE l.genesis_hash = $1 AND i.pruned_at IS NOT NULL',
      [ledgerId],
    );
    return rows.map((r) => String(r.cid));
  }

  async forget(cids: readonly string[]): Promise<void> {
    if (cids.length > 0)
      await this.writer().query('DELETE FROM ipfs_backups WHERE cid = ANY($1::text[]) AND pruned_at IS NOT NULL', [
        cids,
      ]);
  }
}
