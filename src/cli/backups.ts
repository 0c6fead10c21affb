import type { Command } from 'commander';
import { verifyBackup, latestBackup } from '../backup/restore.js';
import { resolveKey } from '../crypto/key-source.js';
import { Sealer } from '../crypto/seal.js';
import { describeError, NotFoundError, ValidationError } from '../errors.js';
import type { TierStatus } from '../service/ledger.js';
import type { PostgresTier } from '../tiers/postgres.js';
import { createDbTier } from '../tiers/select.js';
import { withLedger, type CliContext } from './context.js';
import { printJson, printLines, printTable } from './output.js';

function onlyDb(tier: string | undefined, flag: string): void {
  if (tier !== undefined && tier !== 'db') throw new ValidationError(`${flag} ${tier} is not available yet: only db is`, flag);
}

// Commands that read the database alone (list, verify) work on a fresh machine, beside a running server, or without
// any local store: they open the tier, not the ledger.
async function withDb<T>(ctx: CliContext, fn: (db: PostgresTier) => Promise<T>): Promise<T> {
  const db = createDbTier(ctx.config);
  if (!db) throw new NotFoundError('the database tier is off (LEDGER_DB=off)', { hint: 'Set DATABASE_URL, or unset LEDGER_DB' });
  try {
    await db.init();
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** registerBackupCommands adds migrate, backup, backups list, restore and `verify --from db`'s helper. */
export function registerBackupCommands(program: Command, ctx: () => CliContext): void {
  program
    .command('migrate')
    .description('apply pending database migrations (serve applies them too)')
    .action(async () => {
      const applied = await withDb(ctx(), (db) => db.migrate());
      process.stdout.write(applied.length ? `applied ${applied.join(', ')}\n` : 'the database schema is up to date\n');
    });

  program
    .command('backup')
    .description('record a named backup of the current head (stop the server first, or use POST /admin/backups)')
    .requiredOption('--to <tier>', 'where: db')
    .option('--name <name>', 'display name', `Manual backup ${new Date().toISOString().slice(0, 19).replace('T', ' ')}`)
    .option('--admin <id>', 'id of the admin user making it (created_by)', (v) => {
      if (!/^\d{1,9}$/.test(v)) throw new ValidationError('--admin must be an integer user id', 'admin');
      return Number(v);
    })
    .option('--json', 'print JSON')
    .action(async (o: { to: string; name: string; admin?: number; json?: boolean }) => {
      onlyDb(o.to, '--to');
      const r = await withLedger(ctx(), false, (l) => l.backupToDatabase({ name: o.name, adminId: o.admin ?? null }));
      if (o.json) return printJson(r);
      printLines([['Backup ID', r.id], ['Name', r.name], ['Blocks', r.height + 1], ['Head', r.headHash], ['Size', `${r.sizeBytes} bytes`]]);
    });

  const backups = program.command('backups').description('list the backups a tier holds');
  backups
    .command('list')
    .description('list backups, newest first')
    .option('--tier <tier>', 'which tier: db', 'db')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print JSON')
    .action(async (o: { tier: string; limit: string; json?: boolean }) => {
      onlyDb(o.tier, '--tier');
      const limit = Number(o.limit);
      if (!Number.isSafeInteger(limit) || limit < 1) throw new ValidationError('--limit must be a positive integer', 'limit');
      const list = await withDb(ctx(), (db) => db.listBackups(undefined, { limit }));
      if (o.json) return printJson(list.map(({ seal: _seal, ...r }) => r));
      printTable(['ID', 'NAME', 'CREATED (UTC)', 'BY', 'BLOCKS', 'SIZE'],
        list.map((b) => [b.id, b.name, b.createdAt.toISOString().slice(0, 19).replace('T', ' '), b.createdBy ?? '-', b.height + 1, b.sizeBytes]));
    });

  program
    .command('restore')
    .description('make a database backup the running ledger (stop the server first, or use POST /admin/restore)')
    .requiredOption('--from <tier>', 'where: db')
    .option('--id <id>', 'the backup id (default: the newest backup of this ledger)')
    .option('--dry-run', 'only print what would happen')
    .option('--json', 'print JSON')
    .action(async (o: { from: string; id?: string; dryRun?: boolean; json?: boolean }) => {
      onlyDb(o.from, '--from');
      const plan = await withLedger(ctx(), false, (l) => l.restoreFromDatabase({ ...(o.id ? { backupId: o.id } : {}), dryRun: o.dryRun ?? false }));
      if (o.json) return printJson(plan);
      const what = plan.rollback ? `a rollback from block ${plan.currentHeight} to block ${plan.height} (later blocks stay in the database)` : `block ${plan.height}`;
      process.stdout.write(`${plan.dryRun ? 'would restore' : 'restored'} backup ${plan.backupId} ("${plan.name}"): ${what}\n`);
    });
}

/** verifyDatabaseBackup checks a database backup end to end without restoring it or touching the local store. */
export async function verifyDatabaseBackup(ctx: CliContext, id: string | undefined) {
  const sealer = new Sealer(await resolveKey(ctx.config, ctx.log, { generate: false }));
  return withDb(ctx, async (db) => {
    const record = id ? await db.getBackup(id) : await latestBackup(db, null);
    if (!record) throw new NotFoundError('the database holds no backup');
    const chain = await verifyBackup(db, record, sealer);
    return { backupId: record.id, totalBlocks: chain.state.totalBlocks, headHash: chain.head.hash };
  });
}

/** databaseTierStatus reports the database tier for `pawledger status`: its newest backup of the ledger, or why not. */
export async function databaseTierStatus(ctx: CliContext, ledgerId: string, height: number): Promise<TierStatus> {
  if (ctx.config.database.kind === 'off') return { name: 'db', state: 'off', height: -1 };
  try {
    const latest = await withDb(ctx, (db) => latestBackup(db, ledgerId).then((r) => ({ r, label: db.label })));
    const h = latest.r?.height ?? -1;
    return { name: 'db', state: h === height ? 'ok' : 'lagging', height: h, detail: `${latest.label}${latest.r ? `, newest backup ${latest.r.id}` : ', no backup yet'}` };
  } catch (err) {
    return { name: 'db', state: 'down', height: -1, detail: describeError(err) };
  }
}
