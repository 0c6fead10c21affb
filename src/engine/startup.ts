import type { StoredBlock } from '../crypto/stored-block.js';
import { pageHashes, pageRange, type ChainPage } from '../crypto/packs.js';
import type { Config } from '../config.js';
import type { BackupRecord } from '../crypto/records.js';
import type { Sealer } from '../crypto/seal.js';
import { sealBlock } from '../crypto/sealed-blocks.js';
import { ConflictError, describeError, IntegrityError, NotFoundError, UnavailableError } from '../errors.js';
import { makeBlock } from '../ledger/block.js';
import { WorldState } from '../ledger/state.js';
import type { Logger } from '../log.js';
import { readExport } from '../store/export-file.js';
import type { LocalStore } from '../store/local-store.js';
import type { OpenedTiers, TierEntry } from '../tiers/registry.js';
import { withDeadline } from '../util/deadline.js';
import { collectCandidates, nextRecord, staleAfterRollback, type Candidate, type Collected } from './candidates.js';
import { preserveLocalBranch } from './fork.js';
import { ChainReplayer, replayChain, verifiedBatches, type ReplayedChain } from './replay.js';
import { checkpointBase, planRestore, restoreInto, type RestorePlan } from './restore.js';

/** StartFrom is a start an operator forces: a chosen backup of a tier (its newest without an id), or an export file. */
export type StartFrom = { tier: string; id?: string } | { file: string; force?: boolean };

/** StartingChain is the chain a ledger opens with and where it came from. */
export interface StartingChain {
  chain: ReplayedChain;
  /** from names the source: a tier's name, 'local', 'file' or 'genesis'. */
  from: string;
  /** plan is what a forced start from a tier's backup did, else null. */
  plan: RestorePlan | null;
  /** fork describes a fork between sources that startup resolved, for status and doctor; null when none. */
  fork: string | null;
  /** forced is true when an operator chose the start: every tier must then record it (afterRestore). */
  forced: boolean;
}

/** StartContext is what startup works with. */
export interface StartContext {
  store: LocalStore;
  sealer: Sealer;
  tiers: OpenedTiers;
  log: Logger;
  config: Config;
  now: () => Date;
  readOnly: boolean;
  restore?: StartFrom | undefined;
}

/**
 * startingChain finds the chain to open with, by the rule in docs/ARCHITECTURE.md: a forced start when an operator
 * chose one; else collect each source's offer (every tier's newest backups that pass their seal, and the local store),
 * drop the tiers a later rollback made stale, choose the freshest valid candidate and restore it (falling back to the
 * next when one fails to verify), rewrite blocks a tier holds altered; and only when no source holds anything, a new
 * genesis block. Sources that hold the ledger but give nothing that verifies stop the start: a new ledger is never
 * started beside one that exists. It logs each step.
 */
export async function startingChain(ctx: StartContext): Promise<StartingChain> {
  const { store, tiers, log } = ctx;
  const started = performance.now();
  if (!ctx.readOnly) {
    const names = tiers.entries.map((e) => e.tier.label);
    names.splice(tiers.localPriority, 0, `local store ${store.dir}`);
    log.info(`Initializing ledger with auto-restore: ${names.map((l, i) => `priority ${i + 1} ${l}`).join(', ')}`);
  }
  if (ctx.restore) return forcedStart(ctx, ctx.restore);
  const collected = await collectCandidates({
    store,
    sealer: ctx.sealer,
    entries: tiers.entries,
    localPriority: tiers.localPriority,
    log,
    timeoutMs: ctx.config.sourceTimeoutMs,
  });
  const found = await chooseAndRestore(ctx, collected);
  if (found) {
    const { chain } = found;
    const ms = Math.round(performance.now() - started);
    if (!ctx.readOnly) {
      const from = found.from === 'local' ? 'local store' : tiers.entries.find((e) => e.name === found.from)!.describe;
      log.info(
        { source: found.from, totalBlocks: chain.state.totalBlocks, totalProperties: chain.state.totalProperties, ms },
        `Ledger restored from ${from} in ${ms} ms: ${chain.state.totalBlocks} blocks, ${chain.state.totalProperties} properties`,
      );
    }
    logMovedAside(store, log);
    await repairDamaged(ctx, chain, found.damaged);
    return { chain, from: found.from, plan: null, fork: found.fork, forced: false };
  }
  refuseWithoutCopy(store, collected);
  if (ctx.readOnly)
    throw new NotFoundError(`no ledger in ${store.dir}`, { hint: 'Start `pawledger serve` once to create one' });
  return { chain: await genesis(ctx), from: 'genesis', plan: null, fork: null, forced: false };
}

/**
 * chooseAndRestore picks among the candidates, restores the winner into the local store (a tier's chain is fetched
 * and verified block by block; the local chain is replayed in place) and returns it; a candidate that fails is
 * logged and skipped for that source's next newest backup, or the next source. The winner is the candidate whose
 * chain holds every other's head, the local store first (it needs no transfer): a stale tier never rolls back
 * newer blocks held elsewhere. Candidates that diverge are a fork: the local branch is first kept in a tier that
 * keeps branches, then the highest priority wins, loudly; with no such tier the local chain wins (it holds
 * acknowledged saves). Null when no candidate verifies.
 */
async function chooseAndRestore(ctx: StartContext, collected: Collected) {
  const { store, sealer, log } = ctx;
  const timeoutMs = ctx.config.sourceTimeoutMs;
  // Different ledgers do not compete: the local store's ledger, else the highest-priority tier's.
  const ledgerId = store.ledgerId ?? collected.candidates.find((c) => c.tier)?.records[0]?.ledgerId;
  let live = staleAfterRollback(
    collected.candidates.filter((c) => c.tier === null || c.records[0]!.ledgerId === ledgerId),
    log,
  );
  const damaged: { entry: TierEntry; record: BackupRecord }[] = [];
  const keeper = ctx.tiers.entries.find((e) => e.tier.keepsBranches);
  let fork: string | null = null;
  let forkKept = false;
  const holds = async (c: Candidate, other: Candidate): Promise<boolean> => {
    if (other.height > c.height) return false;
    if (c.tier === null) return (await store.hashAt(other.height)) === other.hash;
    return (await withDeadline(c.tier.tier.hashAt(c.records[0]!, other.height), timeoutMs, c.label)) === other.hash;
  };
  while (live.length > 0) {
    const local = live.find((c) => c.tier === null);
    let best: Candidate | undefined;
    for (const c of [...live.filter((x) => x.tier === null), ...live.filter((x) => x.tier !== null)]) {
      let all = true;
      for (const o of live) if (o !== c && !(await holds(c, o).catch(() => false))) all = false;
      if (all) {
        best = c;
        break;
      }
    }
    if (!best) {
      best = local && !keeper ? local : live[0]!;
      const kept =
        local && keeper
          ? `, the local branch is kept in the ${keeper.describe} as a "Fork: local branch" backup`
          : best === local
            ? ' (no tier keeps branches, and the local chain holds acknowledged saves)'
            : '';
      fork = `the sources held diverging chains at startup (${live.map((c) => `${c.source} at block ${c.height}`).join(', ')}); took ${best.source}'s${kept}`;
      log.error({ source: best.source, heights: live.map((c) => `${c.source}:${c.height}`) }, `FORK: ${fork}`);
      if (local && keeper && !forkKept) {
        const localChain = await replayChain(store.readPages(), sealer, {
          where: `local store ${store.dir}`,
        }).catch(() => null);
        if (localChain) await preserveLocalBranch({ store, sealer, keeper, log }, localChain);
        forkKept = true;
      }
    }
    try {
      if (best.tier === null) {
        const chain = await replayLocal(store, sealer, log);
        return { chain: chain!, from: 'local', damaged, fork };
      }
      const chain = await restoreInto(store, best.tier.tier, best.records[0]!, sealer, { stallMs: timeoutMs, log });
      return { chain, from: best.tier.name, damaged, fork };
    } catch (err) {
      // A source that fails to deliver (unreachable, cut off) is skipped like a bad one when another can serve.
      const skippable =
        err instanceof IntegrityError ||
        err instanceof NotFoundError ||
        (err instanceof UnavailableError && live.length > 1);
      if (!skippable) throw err;
      if (best.tier === null && live.length === 1 && collected.rejected === 0) throw err;
      log.error(
        { source: best.source, err: describeError(err) },
        `${best.tier ? `${best.label} backup ${best.records[0]!.id}` : 'Local store'} failed, not used: ${describeError(err)}`,
      );
      collected.rejected++;
      if (best.tier && err instanceof IntegrityError) damaged.push({ entry: best.tier, record: best.records[0]! });
      if (best.tier === null || !nextRecord(best)) live = live.filter((c) => c !== best);
    }
  }
  return null;
}

// The blocks a chain holds loose (a pack is repaired by sending it again, which the catch-up does).
async function* looseBlocks(pages: AsyncIterable<ChainPage>): AsyncGenerator<StoredBlock> {
  for await (const page of pages) if ('blocks' in page) yield* page.blocks;
}

// A tier whose backup failed verification while the chosen chain holds its blocks: rewrite the altered copies.
async function repairDamaged(
  ctx: StartContext,
  chain: ReplayedChain,
  damaged: { entry: TierEntry; record: BackupRecord }[],
): Promise<void> {
  for (const entry of new Set(damaged.map((d) => d.entry))) {
    const top = Math.max(...damaged.filter((d) => d.entry === entry).map((d) => d.record.height));
    if (!entry.tier.repair || top > chain.head.index) continue;
    const repaired = await entry.tier.repair(chain.ledgerId, looseBlocks(ctx.store.readPages(0, top))).catch(() => 0);
    const what = entry.describe.charAt(0).toUpperCase() + entry.describe.slice(1);
    if (repaired > 0)
      ctx.log.warn(
        { tier: entry.name, repaired },
        `${what}: rewrote ${repaired} altered block(s) from the verified chain`,
      );
  }
}

/**
 * refuseWithoutCopy stops a start that found no chain to take while something exists: a damaged local store, backups
 * that fail their seal or their chain (a wrong key, tampering), or a tier that did not answer (it may hold the
 * ledger: a new genesis would orphan it, and the next wiped-disk restart would pick the new ledger).
 */
function refuseWithoutCopy(store: LocalStore, collected: Collected): void {
  const { unanswered } = collected;
  if (store.damage) {
    const waiting = unanswered ? ` (${describeError(unanswered)})` : '';
    throw new IntegrityError(
      `the local store ${store.dir} is damaged (${store.damage}) and no other tier gave a copy of the ledger that verifies${waiting}; nothing was changed`,
      {
        hint: unanswered
          ? 'Start again once that tier answers: pawledger restores from it and moves the damaged files aside'
          : 'Restore a copy (`pawledger restore --from TIER --id ID`, `restore --cid CID`, or `pawledger import FILE` from an export), which moves the damaged files aside; `pawledger doctor` names the damage',
      },
    );
  }
  if (collected.rejected > 0) {
    throw new IntegrityError(
      'backups of this ledger exist but none decrypts and verifies; refusing to start a new ledger over them',
      {
        hint: 'Check LEDGER_ENCRYPTION_KEY; `pawledger verify --from TIER --id ID` shows why a backup fails',
      },
    );
  }
  if (unanswered) throw unanswered;
}

// A new ledger: its genesis block, appended to the (empty) local store.
async function genesis(ctx: StartContext): Promise<ReplayedChain> {
  const block = makeBlock(null, [], ctx.now().toISOString());
  const stored = sealBlock(ctx.sealer, block.block.hash, block);
  await ctx.store.append(block.block.hash, [stored]);
  const state = new WorldState();
  state.apply(block.block);
  ctx.log.info(
    { source: 'genesis', ledgerId: block.block.hash },
    'No backup found anywhere: created a new genesis block (fresh deployment)',
  );
  return { ledgerId: block.block.hash, head: block.block, state, sizeBytes: stored.sealed.length, checkpoint: null };
}

/**
 * forcedStart opens with the start an operator chose: a tier's backup (verified in full, then made the local chain),
 * or an export file (verified in full; a file that does not extend the local chain needs `force`). A damaged local
 * store is replaced either way, its files moved aside.
 */
async function forcedStart(ctx: StartContext, from: StartFrom): Promise<StartingChain> {
  const { store, sealer, log } = ctx;
  if ('file' in from) {
    // A sound store first opens as usual (from the freshest source), so the file is judged against the real chain; a
    // damaged one has nothing left to judge against, and its files are kept aside.
    const current = store.damage ? null : (await startingChain({ ...ctx, restore: undefined })).chain;
    const chain = await importFile(ctx, from.file, from.force ?? false, current);
    logMovedAside(store, log);
    return { chain, from: 'file', plan: null, fork: null, forced: true };
  }
  const current = store.height >= 0 ? { height: store.height, hash: store.headHash! } : null;
  const entry = ctx.tiers.entries.find((e) => e.name === from.tier)!;
  await entry.tier.init();
  const { record, plan } = await planRestore(entry.tier, entry.name, {
    ...(from.id ? { id: from.id } : {}),
    ledgerId: store.ledgerId,
    current,
    sealer,
    dryRun: false,
  });
  const chain = await restoreInto(store, entry.tier, record, sealer, { log });
  log.info(
    { source: entry.name, backupId: record.id },
    `Ledger restored from chosen backup ${record.id}: ${chain.state.totalBlocks} blocks, ${chain.state.totalProperties} properties`,
  );
  logMovedAside(store, log);
  return { chain, from: entry.name, plan, fork: null, forced: true };
}

/**
 * importFile reads an export file, verifies it in full, and makes it the local chain. A chain that does not extend
 * the local one (another ledger, or a rollback) is refused unless `force`; a local store that holds only its genesis
 * block, or nothing (empty or damaged), has nothing to lose.
 */
export async function importFile(
  ctx: { store: LocalStore; sealer: Sealer; log: Logger },
  path: string,
  force: boolean,
  current: ReplayedChain | null = null,
): Promise<ReplayedChain> {
  const { store, sealer } = ctx;
  const { head, pages } = await readExport(path, sealer);
  const local = current
    ? { ledgerId: current.ledgerId, height: current.head.index, hash: current.head.hash }
    : { ledgerId: store.ledgerId, height: store.height, hash: store.headHash };
  const refuse = () =>
    new ConflictError(
      `${path} holds ${head.ledgerId === local.ledgerId ? 'a chain that does not extend' : 'another ledger than'} the current one (block ${local.height}); importing would discard blocks (use --force)`,
    );
  const guard = local.height > 0 && !force;
  if (guard && head.ledgerId !== local.ledgerId) throw refuse();
  // The file is read once, verified as it streams into a new generation; a chain that turns out not to extend the
  // local one throws before the switch, so the store keeps its chain.
  async function* extending(): AsyncGenerator<ChainPage> {
    let holdsLocal = false;
    for await (const page of pages) {
      const { from, to } = pageRange(page);
      if (local.height >= from && local.height <= to) holdsLocal = pageHashes(page)[local.height - from] === local.hash;
      yield page;
    }
    if (guard && !holdsLocal) throw refuse();
  }
  const replayer = new ChainReplayer(sealer, path, head.ledgerId);
  await store.replace(head.ledgerId, verifiedBatches(extending(), replayer, head, { task: `import ${path}` }));
  const replayed = replayer.finish(head);
  if (!replayed) throw new IntegrityError(`${path} holds no blocks`);
  ctx.log.info(
    { path, totalBlocks: replayed.state.totalBlocks },
    `Ledger imported from ${path}: ${replayed.state.totalBlocks} blocks, ${replayed.state.totalProperties} properties`,
  );
  return replayed;
}

// After a verified copy replaced a damaged local store, say where the damaged files went (they are never deleted).
function logMovedAside(store: LocalStore, log: Logger): void {
  if (store.movedAside) {
    log.warn(
      { movedAside: store.movedAside },
      `The damaged local store was replaced by the verified copy; its files were moved to ${store.movedAside}`,
    );
  }
}

/**
 * replayLocal replays the local store's chain: from its newest checkpoint when it keeps one (every block authenticated,
 * hashed and linked; the blocks after the checkpoint replayed; the full replay left to the background, as after a
 * restore from a tier), else from block 0. A checkpoint that does not open is logged and the chain replayed in full.
 */
export async function replayLocal(store: LocalStore, sealer: Sealer, log: Logger): Promise<ReplayedChain | null> {
  const where = `local store ${store.dir}`;
  const stored = store.ledgerId === null ? null : await store.checkpoint();
  const base = stored ? await checkpointBase(stored, store.ledgerId!, sealer, where, log) : null;
  const chain = await replayChain(store.readPages(), sealer, {
    where,
    base,
    task: 'load the local store',
    total: store.height + 1,
  });
  return chain && base
    ? { ...chain, checkpoint: { height: base.height, hash: base.hash, summary: base.summary } }
    : chain;
}
