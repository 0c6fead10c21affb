import type { Config } from '../config.js';
import type { Sealer } from '../crypto/seal.js';
import { NotFoundError } from '../errors.js';
import { makeBlock } from '../ledger/block.js';
import { WorldState } from '../ledger/state.js';
import type { Logger } from '../log.js';
import type { RestorePlan, TierName } from '../service/backup-ops.js';
import type { ReplayedChain } from './replay.js';
import { sealBlock } from '../crypto/sealed-blocks.js';
import type { LocalStore } from '../store/local-store.js';
import type { IpfsTier } from '../tiers/packs/pack-tier.js';
import type { PostgresTier } from '../tiers/postgres.js';
import { repairDatabaseBlocks } from './repair.js';
import { restoreAtStartup, restoreChosen, type RestoredFrom } from './restore.js';

/** StartingChain is the chain a ledger opens with, where it came from, and the plan of a chosen restore. */
export interface StartingChain {
  chain: ReplayedChain;
  from: RestoredFrom;
  plan: RestorePlan | null;
  /** fork describes a fork between sources that startup resolved, for status and doctor; null when none. */
  fork: string | null;
}

/**
 * startingChain finds the chain to open with: a chosen backup when `restore` names one, else the freshest valid
 * source (restoreAtStartup), else a new genesis block (never in read-only mode). A database backup that failed
 * verification while the chosen chain holds its blocks has those blocks rewritten. It logs what it did.
 */
export async function startingChain(ctx: {
  store: LocalStore;
  sealer: Sealer;
  tiers: { db: PostgresTier | null; ipfs: IpfsTier | null };
  log: Logger;
  config: Config;
  now: () => Date;
  readOnly: boolean;
  restore?: { tier: TierName; id?: string };
}): Promise<StartingChain> {
  const { store, sealer, tiers, log } = ctx;
  const started = performance.now();
  const remote = [tiers.db, tiers.ipfs].filter((t): t is PostgresTier | IpfsTier => t !== null);
  if (!ctx.readOnly) log.info(`Initializing ledger with auto-restore: ${[...remote.map((t) => t.label), `local store ${store.dir}`].map((l, i) => `priority ${i + 1} ${l}`).join(', ')}`);
  if (ctx.restore) {
    const tier = tiers[ctx.restore.tier];
    if (!tier) throw new NotFoundError(`the ${ctx.restore.tier === 'db' ? 'database' : 'IPFS'} tier is off`);
    await tiers.db?.init().catch((err: unknown) => {
      if (tier === tiers.db) throw err;
    });
    const r = await restoreChosen({ store, sealer, tier }, ctx.restore.id, false);
    const plan: RestorePlan = { tier: ctx.restore.tier, backupId: r.record.id, name: r.record.name, height: r.record.height, headHash: r.record.headHash, currentHeight: r.localHeight, rollback: r.rollback, dryRun: false };
    log.info({ source: ctx.restore.tier, backupId: r.record.id }, `Ledger restored from chosen backup ${r.record.id}: ${r.chain!.state.totalBlocks} blocks, ${r.chain!.state.totalProperties} properties`);
    logMovedAside(store, log);
    return { chain: r.chain!, from: ctx.restore.tier, plan, fork: null };
  }
  const found = await restoreAtStartup({ store, sealer, tiers: remote, log, timeoutMs: ctx.config.sourceTimeoutMs });
  if (found) {
    const { chain } = found;
    const ms = Math.round(performance.now() - started);
    const from = { db: 'database', ipfs: 'IPFS', local: 'local store', genesis: 'genesis' }[found.from];
    if (!ctx.readOnly) {
      log.info({ source: found.from, totalBlocks: chain.state.totalBlocks, totalProperties: chain.state.totalProperties, ms },
        `Ledger restored from ${from} in ${ms} ms: ${chain.state.totalBlocks} blocks, ${chain.state.totalProperties} properties`);
    }
    logMovedAside(store, log);
    // A database backup that failed verification while a sound chain holds its head: rewrite the altered blocks.
    const top = Math.max(-1, ...found.damaged.filter((r) => r.tier === 'db').map((r) => r.height));
    if (tiers.db && top >= 0 && top <= chain.head.index) {
      const repaired = await repairDatabaseBlocks(tiers.db, chain.ledgerId, store.read(0, top)).catch(() => 0);
      if (repaired > 0) log.warn({ tier: 'db', repaired }, `Database: rewrote ${repaired} altered block(s) from the verified chain`);
    }
    return { chain, from: found.from, plan: null, fork: found.fork };
  }
  if (ctx.readOnly) throw new NotFoundError(`no ledger in ${store.dir}`, { hint: 'Start `pawledger serve` once to create one' });
  const genesis = makeBlock(null, [], ctx.now().toISOString());
  const stored = sealBlock(sealer, genesis.block.hash, genesis);
  await store.append(genesis.block.hash, [stored]);
  const state = new WorldState();
  state.apply(genesis.block);
  log.info({ source: 'genesis', ledgerId: genesis.block.hash }, 'No backup found anywhere: created a new genesis block (fresh deployment)');
  return { chain: { ledgerId: genesis.block.hash, head: genesis.block, state, sizeBytes: stored.sealed.length }, from: 'genesis', plan: null, fork: null };
}

// After a verified copy replaced a damaged local store, say where the damaged files went (they are never deleted).
function logMovedAside(store: LocalStore, log: Logger): void {
  if (store.movedAside) {
    log.warn({ movedAside: store.movedAside }, `The damaged local store was replaced by the verified copy; its files were moved to ${store.movedAside}`);
  }
}
