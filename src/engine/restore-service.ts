import { describeError } from '../errors.js';
import type { LedgerCore } from './core.js';
import { planRestore, restoreInto, type RestorePlan } from './restore.js';
import type { Replicator } from './replicator.js';

/** holdAll runs fn with every replicator held: no tier reads the local store while it is swapped underneath. */
export function holdAll<T>(replicators: readonly Replicator[], fn: () => Promise<T>): Promise<T> {
  return replicators.reduce<() => Promise<T>>((inner, r) => () => r.hold(inner), fn)();
}

/** TierOutcome says whether one tier recorded the restored head. */
export interface TierOutcome {
  tier: string;
  recorded: boolean;
  error?: string;
}

/**
 * afterRestore runs the steps every restore ends with, whatever started it (startup with a chosen backup, the command
 * line, HTTP, an import): every tier records the restored head as a backup of kind 'restore' named `name` (the
 * lagging ones are re-seeded on the way), and the call waits for each, async tiers included. A tier that cannot is
 * retried in the background; while it lags, its newest backup is older than the restore record the others hold, so
 * the next start takes it as stale rather than bring the abandoned blocks back. Run it in the serial section.
 */
export async function afterRestore(core: LedgerCore, name: string): Promise<TierOutcome[]> {
  const outcomes: TierOutcome[] = [];
  const record = await core.record(name, 'restore', null);
  for (const r of core.replicators) {
    const recorded = await r.catchUp(record);
    outcomes.push({ tier: r.entry.name, recorded, ...(recorded ? {} : { error: r.lastError ?? 'not level' }) });
    if (!recorded) {
      core.log.warn(
        { tier: r.entry.name, err: r.lastError },
        `The ${r.entry.describe} could not record the restored head yet (${r.lastError}); it retries in the background`,
      );
    }
  }
  if (core.replicators.length > 0 && outcomes.every((o) => !o.recorded)) {
    core.log.error("No tier recorded the restore: until one does, a restart may take a tier's newer chain back");
  }
  return outcomes;
}

/**
 * restoreRunning makes a backup of the tier `tierName` (`id`, or its newest of this ledger) the running ledger: its
 * chain is fetched and verified block by block, then swapped in for the local store's, then afterRestore records it
 * in every tier. Restoring an older backup is a rollback: later saves start a new branch in tiers that keep branches,
 * and the newer blocks stay restorable. With dryRun it only says what would happen.
 */
export async function restoreRunning(
  core: LedgerCore,
  tierName: string,
  options: { id?: string; dryRun: boolean },
): Promise<RestorePlan & { tiers?: TierOutcome[] }> {
  const replicator = core.replicator(tierName);
  const { tier } = replicator;
  return core.exclusive(async () => {
    const { ledgerId, head } = core.chain();
    const { record, plan } = await planRestore(tier, tierName, {
      ...(options.id ? { id: options.id } : {}),
      ledgerId,
      current: { height: head.index, hash: head.hash },
      sealer: core.sealer,
      dryRun: options.dryRun,
    });
    if (plan.dryRun) return plan;
    core.assertWriter();
    const chain = await holdAll(core.replicators, () => restoreInto(core.store, tier, record, core.sealer));
    core.setChain(chain);
    core.log.info(
      { tier: tierName, backupId: record.id, totalBlocks: chain.state.totalBlocks, rollback: plan.rollback },
      `Ledger restored from ${tier.label} backup ${record.id} ("${record.name}"): ${chain.state.totalBlocks} blocks, ${chain.state.totalProperties} properties${plan.rollback ? ' (rollback: later saves start a new branch)' : ''}`,
    );
    const tiers = await afterRestore(core, restoredName(record.id, record.name));
    return { ...plan, tiers };
  });
}

/** restoredName is the name of the record a restore leaves in every tier. */
export function restoredName(backupId: string, name: string): string {
  return `Restored backup ${backupId} (${name})`.slice(0, 200);
}

/** describeOutcomes renders tier outcomes for a log line or the command line: "db recorded, ipfs failed (why)". */
export function describeOutcomes(outcomes: TierOutcome[]): string {
  return outcomes
    .map((o) => (o.recorded ? `${o.tier} recorded` : `${o.tier} not yet (${describeError(o.error)})`))
    .join(', ');
}
