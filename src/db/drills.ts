import type { DrillJournal, DrillRecord } from '../engine/drill.js';
import type { SqlClient } from './client.js';

type Row = Record<string, unknown>;

function toRecord(r: Row): DrillRecord {
  return {
    ledgerId: String(r.ledger_id),
    tier: String(r.tier),
    backupId: r.backup_id === null ? null : String(r.backup_id),
    height: r.height === null ? null : Number(r.height),
    durationMs: Number(r.duration_ms),
    outcome: r.outcome === 'ok' ? 'ok' : 'failed',
    reason: r.reason === null ? null : String(r.reason),
    startedAt: new Date(r.started_at as string).toISOString(),
  };
}

/**
 * DatabaseDrillJournal keeps drill records in pawledger_drills (migrations/0006_drills.sql), the newest `keep` of
 * each ledger. Drill records are not ledger data: they are written without the writer lease's fence, so a standby
 * records its own drills too.
 */
export class DatabaseDrillJournal implements DrillJournal {
  constructor(private readonly db: () => Promise<SqlClient>) {}

  async add(r: DrillRecord, keep: number): Promise<void> {
    await (await this.db()).query(
      `INSERT INTO pawledger_drills (ledger_id, tier, backup_id, height, duration_ms, outcome, reason, started_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [r.ledgerId, r.tier, r.backupId, r.height, r.durationMs, r.outcome, r.reason, r.startedAt],
    );
    await (await this.db()).query(
      `DELETE FROM pawledger_drills WHERE ledger_id = $1 AND id <= (
         SELECT id FROM pawledger_drills WHERE ledger_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)`,
      [r.ledgerId, keep],
    );
  }

  async list(ledgerId: string, limit: number, tier?: string): Promise<DrillRecord[]> {
    const rows = tier
      ? await (await this.db()).query(
          'SELECT * FROM pawledger_drills WHERE ledger_id = $1 AND tier = $2 ORDER BY id DESC LIMIT $3',
          [ledgerId, tier, limit],
        )
      : await (await this.db()).query('SELECT * FROM pawledger_drills WHERE ledger_id = $1 ORDER BY id DESC LIMIT $2', [
          ledgerId,
          limit,
        ]);
    return rows.map(toRecord);
  }
}
