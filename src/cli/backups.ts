import type { Command } from 'commander';
import { resolve } from 'node:path';
import { latestBackup, restoreChosen, verifyBackup } from '../engine/restore.js';
import { policyFrom, RULES } from '../engine/retention.js';
import { resolveKey } from '../service/key-source.js';
import { Sealer } from '../crypto/seal.js';
import { describeError, NotFoundError, ValidationError } from '../errors.js';
import type { RestorePlan, TierName } from '../service/backup-ops.js';
import type { PruneReport, PruneTarget } from '../engine/prune.js';
import { Ledger } from '../service/ledger.js';
import { LocalStore } from '../store/local-store.js';
import type { TierStatus } from '../service/ledger.js';
import { openTiers } from '../tiers/open.js';
import type { PostgresTier } from '../tiers/postgres.js';
import { createDbTier } from '../tiers/select.js';
import type { BackupTier } from '../tiers/tier.js';
import type { BackupRecord } from '../crypto/records.js';
import { withLedger, type CliContext } from './context.js';
import { printJson, printLines, printTable } from './output.js';

function tierName(value: string | undefined, flag: string): TierName {
  if (value === undefined || value === 'db' || value === 'ipfs') return value ?? 'db';
  throw new ValidationError(`${flag} must be db or ipfs, got ${JSON.stringify(value)}`, flag.replace(/^--/, ''));
}

function pruneTarget(value: string): PruneTarget {
  if (value === 'all') return value;
  return tierName(value, '--tier');
}

function stripSeal({ seal: _seal, ...r }: BackupRecord) {
  return r;
}

/**
 * withTier opens one tier alone and runs fn on it. Commands that read a tier alone (list, verify, status) work on a
 * fresh machine, beside a running server, or without any local store. The database lists without the key; IPFS
 * manifests need it.
 */
export async function withTier<T>(ctx: CliContext, name: TierName, fn: (tier: BackupTier, sealer: Sealer | null) => Promise<T>): Promise<T> {
  const sealer = name === 'ipfs' ? new Sealer(await resolveKey(ctx.config, ctx.log, { generate: false })) : null;
  const { db, ipfs } = sealer ? openTiers(ctx.config, sealer, ctx.log) : { db: createDbTier(ctx.config), ipfs: null };
  const tier = name === 'db' ? db : ipfs;
  try {
    if (!tier) {
      throw new NotFoundError(`the ${name === 'db' ? 'database' : 'IPFS'} tier is off`, {
        hint: name === 'db' ? 'Set DATABASE_URL, or unset LEDGER_DB=off' : 'Set PINATA_JWT (or PINATA_API_KEY and PINATA_SECRET_KEY), IPFS_API_URL, or IPFS_PROVIDER=embedded',
      });
    }
    await db?.init().catch((err: unknown) => {
      if (name === 'db') throw err;
    });
    await tier.init();
    return await fn(tier, sealer);
  } finally {
    await db?.close();
    await ipfs?.close();
  }
}

/** registerBackupCommands adds migrate, backup, backups list, prune and protect, and restore. */
export function registerBackupCommands(program: Command, ctx: () => CliContext, setExit: (code: number) => void = () => {}): void {
  program
    .command('migrate')
    .description('apply pending database migrations (serve applies them too)')
    .action(async () => {
      const applied = await withTier(ctx(), 'db', (db) => (db as PostgresTier).migrate());
      process.stdout.write(applied.length ? `applied ${applied.join(', ')}\n` : 'the database schema is up to date\n');
    });

  program
    .command('backup')
    .description('record a named backup of the current head (stop the server first, or use POST /admin/backups)')
    .requiredOption('--to <tier>', 'where: db or ipfs (ipfs prints the manifest CID, the restore handle)')
    .option('--name <name>', 'display name', `Manual backup ${new Date().toISOString().slice(0, 19).replace('T', ' ')}`)
    .option('--admin <id>', 'id of the admin user making it (created_by)', (v) => {
      if (!/^\d{1,9}$/.test(v)) throw new ValidationError('--admin must be an integer user id', 'admin');
      return Number(v);
    })
    .option('--protect', 'protect it: retention never removes it')
    .option('--json', 'print JSON')
    .action(async (o: { to: string; name: string; admin?: number; protect?: boolean; json?: boolean }) => {
      const tier = tierName(o.to, '--to');
      const options = { name: o.name, adminId: o.admin ?? null, protect: o.protect ?? false };
      const r = await withLedger(ctx(), false, (l) => (tier === 'db'
        ? l.backupToDatabase(options)
        : l.backupToIpfs(options).then((id) => ({ id, name: o.name, height: l.head.index, headHash: l.head.hash }))));
      if (o.json) return printJson(r);
      if (tier === 'ipfs') return void process.stdout.write(`${r.id}\n`);
      printLines([['Backup ID', r.id], ['Name', r.name], ['Blocks', r.height + 1], ['Head', r.headHash]]);
    });

  const backups = program.command('backups').description('list, prune and protect the backups a tier holds');
  backups
    .command('list')
    .description('list backups, newest first')
    .option('--tier <tier>', 'which tier: db or ipfs', 'db')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print JSON')
    .action(async (o: { tier: string; limit: string; json?: boolean }) => {
      const name = tierName(o.tier, '--tier');
      const limit = Number(o.limit);
      if (!Number.isSafeInteger(limit) || limit < 1) throw new ValidationError('--limit must be a positive integer', 'limit');
      const list = await withTier(ctx(), name, (tier) => tier.listBackups(undefined, { limit }));
      if (o.json) return printJson(list.map(stripSeal));
      printTable(['ID', 'NAME', 'CREATED (UTC)', 'BY', 'BLOCKS', 'SIZE', 'PROTECTED'],
        list.map((b) => [b.id, b.name, b.createdAt.toISOString().slice(0, 19).replace('T', ' '), b.createdBy ?? '-', b.height + 1, b.sizeBytes, b.protected ? 'yes' : '']));
    });

  const prune = backups
    .command('prune')
    .description('remove the backups a retention policy does not keep, then free the blocks no kept backup reaches (stop the server first, or use POST /admin/backups/prune)')
    .option('--older-than <age>', 'only remove backups older than this: 12h, 30d, 8w')
    .option('--keep-last <n>', 'keep the n newest backups');
  for (const period of ['hourly', 'daily', 'weekly', 'monthly']) {
    prune.option(`--keep-${period} <n>`, `keep the newest backup of each of the n most recent ${period === 'daily' ? 'days' : period.replace('ly', 's')} (UTC)`);
  }
  prune
    .option('--tier <tier>', 'which tier: db, ipfs or all', 'all')
    .option('--dry-run', 'only list what would be removed and what stays, and why')
    .option('--json', 'print JSON')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const target = pruneTarget(String(o.tier));
      const flag = (key: string | null) => RULES.find((r) => r.key === key)?.flag;
      const policy = policyFrom(o, (rule, message) => new ValidationError(rule ? `--${flag(rule)} ${message}` : message, flag(rule) ?? 'policy'));
      const report = await withLedger(ctx(), false, (l) => l.pruneBackups(policy, { tier: target, dryRun: o.dryRun === true }));
      if (o.json) printJson(report);
      else printPruneReport(report);
      if (report.tiers.some((t) => t.error)) setExit(1);
    });

  backups
    .command('protect <id>')
    .description('protect a backup from pruning (or, with --off, no longer)')
    .option('--tier <tier>', 'which tier: db or ipfs', 'db')
    .option('--off', 'remove the protection')
    .action(async (id: string, o: { tier: string; off?: boolean }) => {
      const name = tierName(o.tier, '--tier');
      // With the writer lease on, only its holder writes the database: open the ledger, which takes the lease if free.
      if (ctx().config.lease) await withLedger(ctx(), false, (l) => l.protectBackup(id, { tier: name, on: !o.off }));
      else await withTier(ctx(), name, (tier) => tier.setProtected(id, !o.off));
      process.stdout.write(`backup ${id} on the ${name} tier is ${o.off ? 'no longer protected' : 'protected'}\n`);
    });

  program
    .command('restore')
    .description('make a backup the running ledger (stop the server first, or use POST /admin/restore)')
    .option('--from <tier>', 'where: db (default) or ipfs')
    .option('--id <id>', 'the backup id (default: the newest backup of this ledger)')
    .option('--cid <cid>', 'an IPFS manifest CID (implies --from ipfs)')
    .option('--dry-run', 'only print what would happen')
    .option('--json', 'print JSON')
    .action(async (o: { from?: string; id?: string; cid?: string; dryRun?: boolean; json?: boolean }) => {
      const name = o.cid ? 'ipfs' : tierName(o.from, '--from');
      const id = o.cid ?? o.id;
      if (name === 'ipfs' && !id) throw new ValidationError('restoring from IPFS needs --cid', 'cid');
      const c = ctx();
      // A real restore opens the ledger starting from the chosen backup (no genesis is made on an empty disk first);
      // a dry run only reads the local store and the tier.
      const plan = o.dryRun
        ? await dryRestore(c, name, id)
        : await withLedger({ ...c, openLedger: () => Ledger.open({ config: c.config, logger: c.log, restore: { tier: name, ...(id ? { id } : {}) } }) }, false, async (l) => l.restorePlan!);
      if (o.json) return printJson(plan);
      const what = plan.rollback ? `a rollback from block ${plan.currentHeight} to block ${plan.height} (later blocks stay in the tier)` : `block ${plan.height}`;
      process.stdout.write(`${plan.dryRun ? 'would restore' : 'restored'} backup ${plan.backupId} ("${plan.name}"): ${what}, head ${plan.headHash}\n`);
    });
}

function printPruneReport(report: PruneReport): void {
  for (const t of report.tiers) {
    if (t.error) {
      process.stdout.write(`${t.tier}: not pruned: ${t.error}\n`);
      continue;
    }
    const rows = [
      ...t.remove.map((b) => [report.dryRun ? 'would remove' : 'removed', b.id, b.name, b.createdAt.slice(0, 19).replace('T', ' '), b.height + 1, b.reason]),
      ...t.keep.map((b) => ['keep', b.id, b.name, b.createdAt.slice(0, 19).replace('T', ' '), b.height + 1, b.reasons.join('; ')]),
    ];
    process.stdout.write(`${t.tier}: ${report.dryRun ? 'would remove' : 'removed'} ${report.dryRun ? t.remove.length : t.removed} of ${t.keep.length + t.remove.length} backups by ${report.policy}; newest that verifies: ${t.newestValid ?? 'none'}\n`);
    if (rows.length > 0) printTable(['ACTION', 'ID', 'NAME', 'CREATED (UTC)', 'BLOCKS', 'WHY'], rows);
    if (!report.dryRun) process.stdout.write(`${t.tier}: freed ${t.collected.blocks} stored objects (${t.collected.bytes} bytes)\n`);
  }
}

async function dryRestore(ctx: CliContext, name: TierName, id: string | undefined): Promise<RestorePlan> {
  const sealer = new Sealer(await resolveKey(ctx.config, ctx.log, { generate: false }));
  // A damaged local store does not stop a restore (it replaces it): plan as if it were empty.
  const { store } = await LocalStore.open(resolve(ctx.config.dataDir), { readOnly: true, onDamage: 'report' });
  try {
    return await withTier(ctx, name, async (tier) => {
      const r = await restoreChosen({ store, sealer, tier }, id, true);
      return { tier: name, backupId: r.record.id, name: r.record.name, height: r.record.height, headHash: r.record.headHash, currentHeight: r.localHeight, rollback: r.rollback, dryRun: true };
    });
  } finally {
    await store.close();
  }
}

/** verifyTierBackup checks a backup end to end without restoring it or touching the local store. */
export async function verifyTierBackup(ctx: CliContext, name: TierName, id: string | undefined) {
  const sealer = new Sealer(await resolveKey(ctx.config, ctx.log, { generate: false }));
  return withTier(ctx, name, async (tier) => {
    const record = id ? await tier.getBackup(id) : await latestBackup(tier, null);
    if (!record) throw new NotFoundError(`${tier.label} holds no backup`);
    const chain = await verifyBackup(tier, record, sealer);
    return { backupId: record.id, totalBlocks: chain.state.totalBlocks, headHash: chain.head.hash };
  });
}

/** databaseTierStatus reports the database tier for `pawledger status`: its newest backup of the ledger, or why not. */
export async function databaseTierStatus(ctx: CliContext, ledgerId: string, height: number): Promise<TierStatus> {
  if (ctx.config.database.kind === 'off') return { name: 'db', state: 'off', height: -1 };
  try {
    const latest = await withTier(ctx, 'db', (db) => latestBackup(db, ledgerId).then((r) => ({ r, label: db.label })));
    const h = latest.r?.height ?? -1;
    return { name: 'db', state: h === height ? 'ok' : 'lagging', height: h, detail: `${latest.label}${latest.r ? `, newest backup ${latest.r.id}` : ', no backup yet'}` };
  } catch (err) {
    return { name: 'db', state: 'down', height: -1, detail: describeError(err) };
  }
}
