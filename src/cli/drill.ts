import type { Command } from 'commander';
import type { DrillReport } from '../service/drills.js';
import { requireTier, TIER_NAMES } from '../tiers/registry.js';
import type { CliContext } from './context.js';
import { printJson } from './output.js';
import { withProgressBars } from './progress.js';
import { changeLedger } from './through-server.js';

/**
 * registerDrillCommand adds `pawledger drill [--tier NAME] [--json]`: restore a tier's newest backup (each tier's,
 * without --tier) into a scratch folder and replay it in full, now; exit 1 when any drill fails. Beside a running
 * serve it goes through the server's control channel (POST /admin/drill), so the server's one-at-a-time rule holds.
 */
export function registerDrillCommand(program: Command, ctx: () => CliContext, setExit: (code: number) => void): void {
  program
    .command('drill')
    .description(
      "restore each tier's newest backup into a scratch folder, replay it in full and record the verdict (exit 1 on failure)",
    )
    .option('--tier <name>', `drill this tier only (${TIER_NAMES.join(', ')})`)
    .option('--json', 'print JSON')
    .action(async (o: { tier?: string; json?: boolean }) => {
      const c = ctx();
      if (o.tier !== undefined) requireTier(c.config, o.tier);
      const tier = o.tier ? { tier: o.tier } : {};
      // Bars on a terminal while this process drills (the engine reports each restore and replay); beside a running
      // serve the server drills and this process waits for its answer, as restore, import and prune do.
      const report = await withProgressBars(o, () =>
        changeLedger<DrillReport>(c, { method: 'POST', url: '/admin/drill', body: tier }, (l) => l.drill(tier)),
      );
      if (o.json) printJson(report);
      else
        for (const d of report.drills) {
          const what = d.backupId ? `backup ${d.backupId} (block ${d.height})` : 'no backup';
          process.stdout.write(
            d.outcome === 'ok'
              ? `ok: ${d.tier}: ${what} restored and replayed in full in ${d.durationMs} ms\n`
              : `FAILED: ${d.tier}: ${what}: ${d.reason}\n`,
          );
        }
      if (!report.ok) setExit(1);
    });
}
