import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep, setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { openCheckpoint } from '../crypto/checkpoints.js';
import type { ChainPage } from '../crypto/packs.js';
import type { BackupRecord } from '../crypto/records.js';
import type { Sealer } from '../crypto/seal.js';
import { describeError, IntegrityError } from '../errors.js';
import { stateDigest } from '../ledger/state-codec.js';
import { LocalStore } from '../store/local-store.js';
import type { BackupTier } from '../tiers/tier.js';
import { progressTask } from '../util/progress.js';
import { openedPages } from './parallel-open.js';
import { ChainReplayer, type ReplayedChain } from './replay.js';
import { latestBackup, restoreInto } from './restore.js';

/** DrillOutcome is a drill's verdict: the backup restored and verified in full ('ok'), or not ('failed'). */
export type DrillOutcome = 'ok' | 'failed';

/** DrillRecord is one drill's result, as it is kept (pawledger_drills, or drills.json without a database). */
export interface DrillRecord {
  ledgerId: string;
  tier: string;
  /** backupId is the backup restored, or null when the tier offered none. */
  backupId: string | null;
  height: number | null;
  durationMs: number;
  outcome: DrillOutcome;
  /** reason says why a drill failed (null when it passed). */
  reason: string | null;
  startedAt: string;
}

/** DrillJournal keeps the newest drill records: the database's table, or a file in the data folder. */
export interface DrillJournal {
  /** add keeps a record, and forgets the oldest beyond the newest `keep`. */
  add(record: DrillRecord, keep: number): Promise<void>;
  /** list returns the newest records, newest first (of one tier when named). */
  list(ledgerId: string, limit: number, tier?: string): Promise<DrillRecord[]>;
}

/** DrillTarget is what a drill checks a tier against: the running chain, and the newest backup the tier took. */
export interface DrillTarget {
  tier: BackupTier;
  name: string;
  ledgerId: string;
  /** hashAt is the running chain's hash at a height (null past its head). */
  hashAt(height: number): Promise<string | null>;
  /** expected is the newest backup this process knows the tier took (it must still be there), or undefined. */
  expected: BackupRecord | undefined;
}

/**
 * runDrill proves a tier's newest backup restorable: it restores it into a fresh local store in a scratch folder
 * (never the live one; removed afterwards), replaying every block from genesis (restoreInto with `full`), then checks
 * the tier's newest checkpoint on that chain against the state replayed up to it (its digest), that the backup is at
 * least as new as the one this process last gave the tier, and that it lies on the running chain. It yields to the
 * event loop between pages, so saves go on. It never throws for a verdict: a failure is a record with its reason.
 */
export async function runDrill(
  target: DrillTarget,
  sealer: Sealer,
  options: { stallMs: number; now?: () => Date },
): Promise<DrillRecord> {
  const now = options.now ?? (() => new Date());
  const startedAt = now();
  const started = performance.now();
  const done = (record: BackupRecord | null, reason: string | null): DrillRecord => ({
    ledgerId: target.ledgerId,
    tier: target.name,
    backupId: record?.id ?? null,
    height: record?.height ?? null,
    durationMs: Math.round(performance.now() - started),
    outcome: reason === null ? 'ok' : 'failed',
    reason,
    startedAt: startedAt.toISOString(),
  });
  let record: BackupRecord | null = null;
  // What the storage holds now, not what this process remembers of it.
  const tier = target.tier.uncached?.() ?? target.tier;
  try {
    record = await latestBackup(tier, target.ledgerId);
    if (!record) return done(null, `${target.tier.label} holds no backup of this ledger`);
    const expected = target.expected;
    if (expected && expected.height > record.height)
      return done(
        record,
        `the newest backup in ${target.tier.label} is at block ${record.height}, but it took backup ${expected.id} at block ${expected.height}: backups were lost`,
      );
    await restoreScratch(yielding(tier), record, sealer, options.stallMs);
    if ((await target.hashAt(record.height)) !== record.headHash)
      return done(record, `backup ${record.id} (block ${record.height}) is not on the running chain`);
    return done(record, null);
  } catch (err) {
    return done(record, describeError(err));
  }
}

// Restore into a scratch store, in full, and check the tier's checkpoint against the replayed state; always clean up.
async function restoreScratch(tier: BackupTier, record: BackupRecord, sealer: Sealer, stallMs: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pawledger-drill-'));
  let store: LocalStore | null = null;
  try {
    store = (await LocalStore.open(dir, { onDamage: 'throw' })).store;
    const chain = await restoreInto(store, tier, record, sealer, {
      full: true,
      stallMs,
      pageBlocks: DRILL_PAGE_BLOCKS,
      task: `drill ${tier.name} backup ${record.id}`,
    });
    await checkCheckpoint(tier, record, sealer, store, chain);
  } finally {
    await store?.close().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

// The tier's newest checkpoint on the record's chain must open and hold the state replayed from block 0 to its block.
async function checkCheckpoint(
  tier: BackupTier,
  record: BackupRecord,
  sealer: Sealer,
  store: LocalStore,
  chain: ReplayedChain,
): Promise<void> {
  const stored = await tier.checkpointFor?.(record);
  if (!stored || stored.height > record.height) return;
  const where = `the checkpoint at block ${stored.height} in ${tier.name} backup ${record.id}`;
  const { summary } = await openCheckpoint(
    sealer,
    record.ledgerId,
    stored,
    stored.parts(),
    `${tier.name} backup ${record.id}`,
  );
  let state = chain.state;
  if (stored.height < record.height) {
    const replayer = new ChainReplayer(sealer, `the drill's copy of ${tier.name} backup ${record.id}`, record.ledgerId);
    // A second pass, up to the checkpoint's block: the bar shows it as a task of its own.
    const progress = progressTask(`drill ${tier.name} checkpoint ${stored.height}`, stored.height + 1);
    try {
      for await (const { page, opened } of openedPages(
        paced(store.readPages(0, stored.height)),
        sealer,
        replayer.where,
        record.ledgerId,
        { expectedBlocks: stored.height + 1, pageBlocks: DRILL_PAGE_BLOCKS },
      )) {
        replayer.pushPage(page, opened);
        progress.update(replayer.blocksDone);
        await yieldToEventLoop();
      }
    } finally {
      progress.end();
    }
    state = replayer.finish({ height: stored.height, hash: stored.hash })!.state;
  } else if (stored.hash !== record.headHash) {
    throw new IntegrityError(`${where} is not on the backup's chain`);
  }
  const digest = stateDigest(state);
  if (digest !== summary.digest || state.totalProperties !== summary.properties)
    throw new IntegrityError(
      `${where} records a world state (${summary.properties} properties, digest ${summary.digest.slice(0, 16)}) other than the one replayed from block 0 (${state.totalProperties} properties, digest ${digest.slice(0, 16)})`,
    );
}

// A drill's pages hold at most this many loose blocks (a pack stays whole: one seal, about 512 KiB of blocks, and is
// the longest stretch a drill holds the event loop), whatever page size the tier or the store reads in.
const DRILL_PAGE_BLOCKS = 128;

// Pages cut to DRILL_PAGE_BLOCKS; after each the drill rests as long as it worked on it (the event loop is then free
// for saves, each a few turns of it: the local fsync, the database), so it takes at most about half the main thread.
async function* paced(pages: AsyncIterable<ChainPage>): AsyncGenerator<ChainPage> {
  let since = performance.now();
  const rest = async () => {
    await sleep(Math.min(50, performance.now() - since));
    since = performance.now();
  };
  for await (const page of pages) {
    if (!('blocks' in page) || page.blocks.length <= DRILL_PAGE_BLOCKS) {
      yield page;
      await rest();
      continue;
    }
    for (let i = 0; i < page.blocks.length; i += DRILL_PAGE_BLOCKS) {
      yield { blocks: page.blocks.slice(i, i + DRILL_PAGE_BLOCKS) };
      await rest();
    }
  }
}

// The tier, reading its chain in paced pages.
function yielding(tier: BackupTier): BackupTier {
  return new Proxy(tier, {
    get(target, prop) {
      if (prop === 'readChainPages')
        return (record: BackupRecord, start?: number) => paced(tier.readChainPages(record, start));
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
