import type { Replicator } from '../engine/replicator.js';
import type { LocalStore } from '../store/local-store.js';
import type { TierStatus } from './ledger-types.js';

/**
 * tierStatuses describes the local store and each tier in restore priority order, from what this process knows
 * (no disk or network access): the local store's height, and each tier's state ('ok' once it holds the head),
 * height, role, newest backup and last error; then the tiers the configuration leaves off, with how to turn them on.
 */
export function tierStatuses(ctx: {
  store: LocalStore;
  failed: boolean;
  replicators: readonly Replicator[];
  localPriority: number;
  off: { name: string; hint: string }[];
}): TierStatus[] {
  const tiers: TierStatus[] = ctx.replicators.map((r) => {
    const newest = r.lastBackup?.id;
    const detail = [r.tier.label, newest ? `newest backup ${newest}` : '', r.lastError ?? '']
      .filter(Boolean)
      .join(': ');
    return {
      name: r.entry.name,
      state: r.level ? 'ok' : 'lagging',
      height: r.height,
      role: r.entry.role,
      ...(newest ? { newestBackup: newest } : {}),
      detail,
    };
  });
  tiers.splice(ctx.localPriority, 0, {
    name: 'local',
    state: ctx.failed ? 'down' : 'ok',
    height: ctx.store.height,
    role: 'local',
    detail: ctx.store.dir,
  });
  for (const t of ctx.off) tiers.push({ name: t.name, state: 'off', height: -1, detail: t.hint });
  return tiers;
}
