import { latestBackup, verifyBackup } from '../engine/restore.js';
import { describeError, NotFoundError } from '../errors.js';
import type { Sealer } from '../crypto/seal.js';
import { resolveSealer } from '../service/key-source.js';
import type { TierStatus } from '../service/ledger.js';
import { configuredTiers, localPriority, offTiers, openTiers, requireTier } from '../tiers/registry.js';
import type { BackupTier } from '../tiers/tier.js';
import { remainingOf, type TierKeys } from '../engine/rotation.js';
import type { CliContext } from './context.js';

/**
 * withTier opens one tier alone and runs fn on it: commands that read a tier (list, verify, status, a dry restore)
 * work on a fresh machine, beside a running server, or without any local store. A tier that keeps only sealed
 * objects (IPFS, a folder) needs the key; the database lists without it.
 */
export async function withTier<T>(
  ctx: CliContext,
  name: string,
  fn: (tier: BackupTier, sealer: Sealer | null) => Promise<T>,
): Promise<T> {
  requireTier(ctx.config, name);
  const sealer = await resolveSealer(ctx.config, ctx.log, { generate: false }).catch(() => null);
  const opened = openTiers(ctx.config, { sealer, log: ctx.log, only: name });
  try {
    const { tier } = opened.entries[0]!;
    await tier.init();
    return await fn(tier, sealer);
  } finally {
    await opened.close();
  }
}

/** verifyTierBackup checks a backup (the tier's newest without an id) end to end without restoring it. */
export async function verifyTierBackup(ctx: CliContext, name: string, id: string | undefined) {
  const sealer = await resolveSealer(ctx.config, ctx.log, { generate: false });
  return withTier(ctx, name, async (tier) => {
    const record = id ? await tier.getBackup(id) : await latestBackup(tier, null);
    if (!record) throw new NotFoundError(`${tier.label} holds no backup`);
    const chain = await verifyBackup(tier, record, sealer);
    return { backupId: record.id, totalBlocks: chain.state.totalBlocks, headHash: chain.head.hash };
  });
}

/**
 * tierStatuses reports each tier for `pawledger status`, which opens the ledger read-only beside a running server:
 * each configured tier's newest backup of the ledger (ok when it is at the local height) or why it cannot be read,
 * with the local store's line at its place in the restore order, then the tiers that are off.
 */
export async function tierStatuses(
  ctx: CliContext,
  local: TierStatus,
  ledgerId: string,
  height: number,
): Promise<TierStatus[]> {
  const out: TierStatus[] = [];
  for (const name of configuredTiers(ctx.config)) {
    try {
      const { r, label } = await withTier(ctx, name, async (tier) => ({
        r: await latestBackup(tier, ledgerId),
        label: tier.label,
      }));
      const h = r?.height ?? -1;
      out.push({
        name,
        state: h === height ? 'ok' : 'lagging',
        height: h,
        ...(r ? { newestBackup: r.id } : {}),
        detail: `${label}${r ? `, newest backup ${r.id}` : ', no backup yet'}`,
      });
    } catch (err) {
      out.push({ name, state: 'down', height: -1, detail: describeError(err) });
    }
  }
  out.splice(localPriority(ctx.config), 0, local);
  for (const t of offTiers(ctx.config)) out.push({ name: t.name, state: 'off', height: -1, detail: t.hint });
  return out;
}

/**
 * tierKeys counts each configured tier's objects of the ledger by key id, for `pawledger status` beside a running
 * server (the read-only ledger has no tiers): a tier that cannot be counted says why.
 */
export async function tierKeys(ctx: CliContext, ledgerId: string, activeKeyId: string): Promise<TierKeys[]> {
  const out: TierKeys[] = [];
  for (const name of configuredTiers(ctx.config)) {
    try {
      const keys = await withTier(ctx, name, async (tier) => (tier.keyCounts ? tier.keyCounts(ledgerId) : null));
      if (keys) out.push({ tier: name, keys, remaining: remainingOf(keys, activeKeyId), resealed: 0 });
    } catch (err) {
      out.push({ tier: name, keys: {}, remaining: -1, resealed: 0, error: describeError(err) });
    }
  }
  return out;
}
