import { pageHashes } from '../crypto/packs.js';
import { sealRecord } from '../crypto/records.js';
import type { Sealer } from '../crypto/seal.js';
import { IntegrityError, NotWriterError } from '../errors.js';
import { appendLeaf, chainRoot, leafOf, type Peak, rootOfPeaks } from '../ledger/accumulator.js';
import type { Logger } from '../log.js';
import type { LocalStore } from '../store/local-store.js';
import type { TierEntry } from '../tiers/registry.js';
import { Mutex } from '../util/mutex.js';
import type { ReplayedChain } from './replay.js';
import { Replicator } from './replicator.js';

/**
 * preserveLocalBranch keeps the local store's chain, before startup takes a diverging chain from a tier, in a tier
 * that keeps branches (the database): it sends the blocks that tier lacks and records their head as a manual backup
 * named "Fork: local branch at block N", so nothing the local store acknowledged is lost. A standby writes nothing:
 * if the tier already holds the branch that is fine; if not, only the writer lease's holder may keep it, and this
 * instance must not start on the other chain.
 */
export async function preserveLocalBranch(
  ctx: { store: LocalStore; sealer: Sealer; keeper: TierEntry; log: Logger },
  chain: ReplayedChain,
): Promise<void> {
  const { store, sealer, keeper, log } = ctx;
  const name = `Fork: local branch at block ${chain.head.index}`;
  const replicator = new Replicator(
    { ...keeper, role: 'sync', describe: `${keeper.describe} (fork branch)` },
    {
      ledgerId: chain.ledgerId,
      headHeight: chain.head.index,
      hashAt: (h) => store.hashAt(h),
      readPages: (from, to) => store.readPages(from, to),
      autoRecord: async () =>
        sealRecord(sealer, {
          ledgerId: chain.ledgerId,
          name,
          kind: 'manual',
          createdAt: new Date(),
          createdBy: null,
          height: chain.head.index,
          headHash: chain.head.hash,
          sizeBytes: chain.sizeBytes,
          // The branch's chain root, as every record carries it: hashed from its block hashes here (a rare event;
          // the running accumulator follows the chain taken, not this branch).
          root: await branchRoot(store, chain.head.index),
        }),
    },
    { log, serial: new Mutex(), retryMs: 1000, debounceMs: 0 },
  );
  const ok = await replicator.catchUp();
  await replicator.stop(0);
  if (!ok && replicator.lastFailure instanceof NotWriterError) {
    if (await keeper.tier.hasBlock(chain.ledgerId, chain.head.index, chain.head.hash)) {
      log.warn(
        { height: chain.head.index },
        `The local branch (block ${chain.head.index}) is already in the ${keeper.describe} as a branch; a standby does not record it`,
      );
      return;
    }
    throw new NotWriterError(
      `the local store holds a branch (block ${chain.head.index}) the ${keeper.describe} lacks, and only the writer lease's holder may keep it there`,
      {
        hint: 'Stop the instance that holds the writer lease, then start this one: it takes the lease and keeps the branch as a "Fork: local branch" backup',
      },
    );
  }
  if (!ok)
    throw new IntegrityError(
      `could not keep the local branch in the ${keeper.describe} before taking another chain: ${replicator.lastError}`,
    );
}

// The chain root of the local store's chain up to `height`, from its block hashes (kept in the clear).
async function branchRoot(store: LocalStore, height: number): Promise<string> {
  const peaks: Peak[] = [];
  for await (const page of store.readPages(0, height)) for (const h of pageHashes(page)) appendLeaf(peaks, leafOf(h));
  return chainRoot(height + 1, rootOfPeaks(peaks)!).toString('hex');
}
