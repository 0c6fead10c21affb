import { withProgressBars } from './progress.js';
import type { Command } from 'commander';
import { resolve } from 'node:path';
import type { BackupRecord } from '../crypto/records.js';
import type { PruneReport } from '../engine/prune.js';
import { planRestore } from '../engine/restore.js';
import { describeOutcomes } from '../engine/restore-service.js';
import { policyFrom, RULES } from '../engine/retention.js';
import { ValidationError } from '../errors.js';
import type { BackupResult, RestoreResult } from '../service/backup-ops.js';
import { resolveSealer } from '../service/key-source.js';
import { Ledger } from '../service/ledger.js';
import { LocalStore } from '../store/local-store.js';
import { CID_TIER, configuredTiers, requireTier, TIER_NAMES } from '../tiers/registry.js';
import { withLedger, type CliContext } from './context.js';
import { printJson, printLines, printTable } from './output.js';
import { withTier } from './tier-access.js';
import { changeLedger, throughServerOr } from './through-server.js';

const TIERS = `a tier name (${TIER_NAMES.join(', ')})`;

// The tier a command names, checked against the configuration; without one, the first tier in restore order.
function tierOf(ctx: CliContext, value: string | undefined, flag: string): string {
  const name = value ?? configuredTiers(ctx.config)[0];
  if (!name)
    throw new ValidationError(
      `no tier is configured besides the local store, so ${flag} has nothing to name`,
      flag.replace(/^--/, ''),
    );
  requireTier(ctx.config, name, flag.replace(/^--/, ''));
  return name;
}

function stripSeal({ seal: _seal, ...r }: BackupRecord) {
  return r;
}

/** registerBackupCommands adds migrate, backup, backups list, prune and protect, and restore. */
export function registerBackupCommands(
  program: Command,
  ctx: () => CliContext,
  setExit: (code: number) => void = () => {},
): void {
  program
    .command('migrate')
    .description('apply pending migrations to every tier that has a schema (the database; serve applies them too)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const c = ctx();
      let applied: string[] = [];
      for (const name of configuredTiers(c.config))
        applied = applied.concat(await withTier(c, name, async (tier) => (await tier.migrate?.()) ?? []));
      if (o.json) return printJson({ applied });
      process.stdout.write(applied.length ? `applied ${applied.join(', ')}\n` : 'the database schema is up to date\n');
    });

  program
    .command('backup')
    .description('record a named backup of the current head in a tier (beside a running server, through it)')
    .requiredOption('--to <tier>', `where: ${TIERS}; on IPFS the backup id is the manifest CID, the restore handle`)
    .option('--name <name>', 'display name', `Manual backup ${new Date().toISOString().slice(0, 19).replace('T', ' ')}`)
    .option('--admin <id>', 'id of the admin user making it (created_by)', (v) => {
      if (!/^\d{1,9}$/.test(v)) throw new ValidationError('--admin must be an integer user id', 'admin');
      return Number(v);
    })
    .option('--protect', 'protect it: retention never removes it')
    .option('--json', 'print JSON')
    .action(async (o: { to: string; name: string; admin?: number; protect?: boolean; json?: boolean }) => {
      const tier = tierOf(ctx(), o.to, '--to');
      const input = { tier, name: o.name, adminId: o.admin ?? null, protect: o.protect ?? false };
      const r = await changeLedger(
        ctx(),
        { method: 'POST', url: '/admin/backups', body: input, unwrap: (b) => (b as { backup: BackupResult }).backup },
        (l) => l.backup(input),
      );
      if (o.json) return printJson(r);
      printLines([
        ['Backup ID', r.id],
        ['Tier', r.tier],
        ['Name', r.name],
        ['Blocks', r.height + 1],
        ['Head', r.headHash],
      ]);
    });

  const backups = program.command('backups').description('list, prune and protect the backups a tier holds');
  backups
    .command('list')
    .description('list backups, newest first')
    .option('--tier <tier>', `which tier: ${TIERS} (default: the first in restore order)`)
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print JSON')
    .action(async (o: { tier?: string; limit: string; json?: boolean }) => {
      const name = tierOf(ctx(), o.tier, '--tier');
      const limit = Number(o.limit);
      if (!Number.isSafeInteger(limit) || limit < 1)
        throw new ValidationError('--limit must be a positive integer', 'limit');
      const list = await withTier(ctx(), name, (tier) => tier.listBackups(undefined, { limit }));
      if (o.json) return printJson(list.map(stripSeal));
      printTable(
        ['ID', 'NAME', 'CREATED (UTC)', 'BY', 'BLOCKS', 'SIZE', 'PROTECTED'],
        list.map((b) => [
          b.id,
          b.name,
          b.createdAt.toISOString().slice(0, 19).replace('T', ' '),
          b.createdBy ?? '-',
          b.height + 1,
          b.sizeBytes,
          b.protected ? 'yes' : '',
        ]),
      );
    });

  const prune = backups
    .command('prune')
    .description(
      'remove the backups a retention policy does not keep, then free what no kept backup reaches (beside a running server, through it)',
    )
    .option('--older-than <age>', 'only remove backups older than this: 12h, 30d, 8w')
    .option('--keep-last <n>', 'keep the n newest backups');
  for (const period of ['hourly', 'daily', 'weekly', 'monthly']) {
    prune.option(
      `--keep-${period} <n>`,
      `keep the newest backup of each of the n most recent ${period === 'daily' ? 'days' : period.replace('ly', 's')} (UTC)`,
    );
  }
  prune
    .option('--tier <tier>', `which tier: ${TIERS}, or all`, 'all')
    .option('--dry-run', 'only list what would be removed and what stays, and why')
    .option('--json', 'print JSON')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const target = o.tier === 'all' ? 'all' : tierOf(ctx(), String(o.tier), '--tier');
      const flag = (key: string | null) => RULES.find((r) => r.key === key)?.flag;
      const policy = policyFrom(
        o,
        (rule, message) => new ValidationError(rule ? `--${flag(rule)} ${message}` : message, flag(rule) ?? 'policy'),
      );
      const dryRun = o.dryRun === true;
      const report = await withProgressBars({ json: o.json === true }, () =>
        changeLedger(
          ctx(),
          { method: 'POST', url: '/admin/backups/prune', body: { tier: target, dryRun, ...policy } },
          (l) => l.pruneBackups(policy, { tier: target, dryRun }),
        ),
      );
      if (o.json) printJson(report);
      else printPruneReport(report);
      if (report.tiers.some((t) => t.error)) setExit(1);
    });

  backups
    .command('protect <id>')
    .description('protect a backup from pruning (or, with --off, no longer)')
    .option('--tier <tier>', `which tier: ${TIERS} (default: the first in restore order)`)
    .option('--off', 'remove the protection')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { tier?: string; off?: boolean; json?: boolean }) => {
      const name = tierOf(ctx(), o.tier, '--tier');
      const on = !o.off;
      await throughServerOr(
        ctx(),
        { method: 'POST', url: '/admin/backups/protect', body: { tier: name, id, protected: on } },
        // With the writer lease on, only its holder writes the database: open the ledger, which takes the lease if free.
        () =>
          ctx().config.lease
            ? withLedger(ctx(), false, (l) => l.protectBackup(id, { tier: name, on }))
            : withTier(ctx(), name, (tier) => tier.setProtected(id, on)),
      );
      if (o.json) return printJson({ id, tier: name, protected: on });
      process.stdout.write(`backup ${id} on the ${name} tier is ${o.off ? 'no longer protected' : 'protected'}\n`);
    });

  program
    .command('restore')
    .description('make a backup the running ledger, recorded in every tier (beside a running server, through it)')
    .option('--from <tier>', `where: ${TIERS} (default: the first in restore order)`)
    .option('--id <id>', 'the backup id (default: the newest backup of this ledger)')
    .option('--cid <cid>', 'an IPFS manifest CID: the same as --from ipfs --id CID')
    .option('--dry-run', 'only print what would happen')
    .option('--json', 'print JSON')
    .action(async (o: { from?: string; id?: string; cid?: string; dryRun?: boolean; json?: boolean }) => {
      if (o.cid && o.id) throw new ValidationError('give --id or --cid, not both', 'cid');
      const c = ctx();
      const name = tierOf(c, o.cid ? CID_TIER : o.from, o.cid ? '--cid' : '--from');
      const id = o.cid ?? o.id;
      // A real restore opens the ledger starting from the chosen backup (no genesis is made on an empty disk first,
      // and a damaged local store is replaced); a dry run only reads the local store and the tier.
      const plan: RestoreResult = o.dryRun
        ? await dryRestore(c, name, id)
        : await withProgressBars(o, () =>
            changeLedger(
              c,
              {
                method: 'POST',
                url: '/admin/restore',
                body: o.cid ? { cid: o.cid } : { tier: name, ...(id ? { id } : {}) },
              },
              async (l) => l.restorePlan!,
              () => Ledger.open({ config: c.config, logger: c.log, restore: { tier: name, ...(id ? { id } : {}) } }),
            ),
          );
      if (o.json) return printJson(plan);
      const what = plan.rollback
        ? `a rollback from block ${plan.currentHeight} to block ${plan.height} (later blocks stay in the tier)`
        : `block ${plan.height}`;
      process.stdout.write(
        `${plan.dryRun ? 'would restore' : 'restored'} backup ${plan.backupId} ("${plan.name}"): ${what}, head ${plan.headHash}\n`,
      );
      if (plan.tiers) process.stdout.write(`recorded in every tier: ${describeOutcomes(plan.tiers)}\n`);
      if (plan.tiers?.some((t) => !t.recorded)) setExit(1);
    });
}

function printPruneReport(report: PruneReport): void {
  for (const t of report.tiers) {
    if (t.error) {
      process.stdout.write(`${t.tier}: not pruned: ${t.error}\n`);
      continue;
    }
    const rows = [
      ...t.remove.map((b) => [
        report.dryRun ? 'would remove' : 'removed',
        b.id,
        b.name,
        b.createdAt.slice(0, 19).replace('T', ' '),
        b.height + 1,
        b.reason,
      ]),
      ...t.keep.map((b) => [
        'keep',
        b.id,
        b.name,
        b.createdAt.slice(0, 19).replace('T', ' '),
        b.height + 1,
        b.reasons.join('; '),
      ]),
    ];
    process.stdout.write(
      `${t.tier}: ${report.dryRun ? 'would remove' : 'removed'} ${report.dryRun ? t.remove.length : t.removed} of ${t.keep.length + t.remove.length} backups by ${report.policy}; newest that verifies: ${t.newestValid ?? 'none'}\n`,
    );
    if (rows.length > 0) printTable(['ACTION', 'ID', 'NAME', 'CREATED (UTC)', 'BLOCKS', 'WHY'], rows);
    if (!report.dryRun)
      process.stdout.write(`${t.tier}: freed ${t.collected.blocks} stored objects (${t.collected.bytes} bytes)\n`);
  }
}

// What a restore would do, read beside a running server or on an empty machine: the local store read-only (a damaged
// one plans as if empty: a restore replaces it) and the tier alone.
async function dryRestore(ctx: CliContext, name: string, id: string | undefined): Promise<RestoreResult> {
  const sealer = await resolveSealer(ctx.config, ctx.log, { generate: false });
  const { store } = await LocalStore.open(resolve(ctx.config.dataDir), { readOnly: true, onDamage: 'report' });
  try {
    const current = store.height >= 0 ? { height: store.height, hash: store.headHash! } : null;
    return await withTier(
      ctx,
      name,
      async (tier) =>
        (
          await planRestore(tier, name, {
            ...(id ? { id } : {}),
            ledgerId: store.ledgerId,
            current,
            sealer,
            dryRun: true,
          })
        ).plan,
    );
  } finally {
    await store.close();
  }
}
