import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { WriterLease } from '../db/lease.js';
import type { WriterStatus } from '../service/lease-keeper.js';
import { lockHolder } from '../store/lock.js';
import { openLeaseTier, WRITER_LEASE } from '../tiers/registry.js';
import type { CliContext } from './context.js';

/**
 * writerStatus says who writes the ledger, as seen from a CLI that is not writing: with LEDGER_LEASE on, the
 * database's lease row; otherwise the process holding the data folder's LOCK file (a running `pawledger serve`).
 */
export async function writerStatus(ctx: CliContext): Promise<WriterStatus> {
  const instance = `${hostname()}:${process.pid}`;
  if (ctx.config.lease) {
    const tier = openLeaseTier(ctx.config, ctx.log)!;
    const h = await (async () => {
      await tier.init();
      return new WriterLease(() => tier.db, WRITER_LEASE, ctx.config.leaseTtlMs).current();
    })().finally(() => tier.close());
    const held = h?.held ? h : null;
    return {
      mode: 'lease',
      role: 'standby',
      instance,
      holder: held?.holder ?? null,
      since: held?.acquiredAt.toISOString() ?? null,
      expiresAt: held?.expiresAt.toISOString() ?? null,
    };
  }
  const lock = await lockHolder(resolve(ctx.config.dataDir));
  return {
    mode: 'lock',
    role: 'standby',
    instance,
    holder: lock ? `${hostname()}:${lock.pid}` : null,
    since: lock?.since.toISOString() ?? null,
    expiresAt: null,
  };
}

/** describeWriter renders a WriterStatus as one line for `pawledger status`. */
export function describeWriter(w: WriterStatus): string {
  const how = w.mode === 'lease' ? 'writer lease (LEDGER_LEASE)' : 'data folder LOCK';
  if (!w.holder) return `none holds the ${how}`;
  const who = w.holder === w.instance ? 'this instance' : w.holder;
  return `${who} holds the ${how} since ${w.since}${w.expiresAt ? `, renewed until ${w.expiresAt}` : ''}`;
}
