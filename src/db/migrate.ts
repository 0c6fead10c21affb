import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { SqlClient } from './client.js';

/** MIGRATIONS_DIR is the one migrations folder, shared by PGlite and PostgreSQL. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

// Any constant: two instances starting together must not apply the same migration twice.
const MIGRATION_LOCK = 7_414_263;

/**
 * migrate applies, in name order and each in its own transaction, the SQL files not yet recorded in
 * pawledger_migrations. It returns the names it applied (empty when the schema is current).
 */
export async function migrate(db: SqlClient, dir = MIGRATIONS_DIR): Promise<string[]> {
  await db.query(`CREATE TABLE IF NOT EXISTS pawledger_migrations (
    name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  // Tables dropped by hand while pawledger_migrations says all ran: forget the record so the files run again (every
  // migration file is written to be idempotent: IF NOT EXISTS throughout).
  const missing = await db.query<{ t: string | null }>("SELECT to_regclass('blockchain_backups')::text AS t");
  if (missing[0]?.t === null || missing[0]?.t === undefined) await db.query('DELETE FROM pawledger_migrations');
  const applied: string[] = [];
  for (const name of files) {
    const sql = await readFile(`${dir}/${name}`, 'utf8');
    const done = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      const seen = await tx.query('SELECT 1 FROM pawledger_migrations WHERE name = $1', [name]);
      if (seen.length > 0) return false;
      for (const statement of splitStatements(sql)) await tx.query(statement);
      await tx.query('INSERT INTO pawledger_migrations (name) VALUES ($1)', [name]);
      return true;
    });
    if (done) applied.push(name);
  }
  return applied;
}

/** pendingMigrations lists the migration files not applied yet (for doctor and status). */
export async function pendingMigrations(db: SqlClient, dir = MIGRATIONS_DIR): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const rows = await db
    .query<{ name: string }>('SELECT name FROM pawledger_migrations')
    .catch(() => [] as { name: string }[]);
  const seen = new Set(rows.map((r) => r.name));
  return files.filter((f) => !seen.has(f));
}

// Statements are separated by semicolons at line ends; the migration files keep to that (no functions or DO blocks),
// and each is idempotent (IF NOT EXISTS), so a file can run again after its tables were dropped.
function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*$/m)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter((s) => s.length > 0);
}
