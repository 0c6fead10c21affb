import { resolve } from 'node:path';
import type { AssuranceStatus, TierAssurance } from '../service/assurance.js';
import { drillJournal } from '../service/assurance.js';
import type { Ledger, TierStatus } from '../service/ledger.js';
import { openDatabaseTier } from '../tiers/registry.js';
import type { CliContext } from './context.js';

/**
 * assuranceStatus is the assurance section for `pawledger status`, which opens the ledger read-only (beside a running
 * server, without its tiers): each tier's lag from its newest backup (`tiers`, as the command found them), how long
 * the tier has lacked the oldest block it lacks (that block's time), and its newest drill from the drill journal.
 */
export async function assuranceStatus(ctx: CliContext, ledger: Ledger, tiers: TierStatus[]): Promise<AssuranceStatus> {
  const { maxLagBlocks, maxLagSeconds, drillIntervalMs } = ctx.config.assurance;
  // Only the database, which needs no key: other tiers are asked nothing here.
  const opened = openDatabaseTier(ctx.config, ctx.log);
  const now = Date.now();
  try {
    const journal = drillJournal(opened, resolve(ctx.config.dataDir));
    const out: TierAssurance[] = [];
    for (const t of tiers) {
      if (t.role === 'local' || t.name === 'local' || t.state === 'off') continue;
      const lagBlocks = Math.max(0, ledger.head.index - t.height);
      const oldest = lagBlocks > 0 ? (await ledger.chain(t.height + 1, 1))[0] : undefined;
      const lagSeconds = oldest ? Math.max(0, Math.floor((now - Date.parse(oldest.timestamp)) / 1000)) : 0;
      const [lastDrill] = await journal.list(ledger.ledgerId, 1, t.name).catch(() => []);
      out.push({
        tier: t.name,
        lagBlocks,
        lagSeconds,
        stale: (maxLagBlocks > 0 && lagBlocks > maxLagBlocks) || (maxLagSeconds > 0 && lagSeconds > maxLagSeconds),
        lastBackupAt: null,
        failingSince: null,
        lastDrill: lastDrill ?? null,
      });
    }
    return { tiers: out, maxLagBlocks, maxLagSeconds, drillIntervalMs };
  } finally {
    await opened?.close();
  }
}

/** describeAssurance is one status line per tier: lag, stale or not, and the newest drill's verdict. */
export function describeAssurance(a: AssuranceStatus): [string, string][] {
  return a.tiers.map((t) => {
    const d = t.lastDrill;
    const drill = !d
      ? 'never drilled'
      : d.outcome === 'ok'
        ? `drill ok ${d.startedAt} (backup ${d.backupId}, block ${d.height}, ${d.durationMs} ms)`
        : `DRILL FAILED ${d.startedAt}: ${d.reason}`;
    return [
      `assurance ${t.tier}`,
      `${t.stale ? 'STALE, ' : ''}${t.lagBlocks} blocks and ${t.lagSeconds} s behind; ${drill}`,
    ];
  });
}
