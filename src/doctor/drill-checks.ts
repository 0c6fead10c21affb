import type { DrillJournal } from '../engine/drill.js';
import type { Check } from './checks.js';

/**
 * drillCheck is the doctor's verdict on a tier's restore drills: fail when the newest failed, warn when the tier was
 * never drilled (a backup that was written is not yet a backup that restores), ok with the newest drill's age.
 */
export async function drillCheck(journal: DrillJournal, ledgerId: string, tier: string, now: Date): Promise<Check> {
  const name = `${tier} drills`;
  const [newest] = await journal.list(ledgerId, 1, tier);
  if (!newest)
    return {
      name,
      status: 'warn',
      detail: 'never drilled: no backup of this tier has been restored to prove it',
      fix: `Run \`pawledger drill --tier ${tier}\` (serve drills every LEDGER_DRILL_INTERVAL)`,
    };
  const age = Math.round((now.getTime() - Date.parse(newest.startedAt)) / 60_000);
  if (newest.outcome === 'failed')
    return {
      name,
      status: 'fail',
      detail: `the newest restore drill (${age} min ago, backup ${newest.backupId ?? 'none'}) failed: ${newest.reason}`,
      fix: `Repair or re-seed the tier, then run \`pawledger drill --tier ${tier}\``,
    };
  return {
    name,
    status: 'ok',
    detail: `backup ${newest.backupId} (block ${newest.height}) restored and replayed in full ${age} min ago, in ${newest.durationMs} ms`,
  };
}
