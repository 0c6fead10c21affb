import { checkRecord } from '../crypto/records.js';
import type { LedgerCore } from './core.js';
import { checkContinuation } from './replay.js';
import type { BackupTier } from '../tiers/tier.js';
import type { BackupRecord } from '../crypto/records.js';
import { latestBackup, restoreInto } from './restore.js';

/** FollowResult says what one follow step did. */
export interface FollowResult {
  /** blocks is how many new blocks were appended to the local chain. */
  blocks: number;
  /** replaced is true when the local chain had diverged from the database's and was replaced by its newest backup. */
  replaced: boolean;
  /** unsent is true when the local chain holds blocks the database lacks: it was left as it is. */
  unsent: boolean;
  /** record is the database's newest backup record, or null when it holds none. */
  record: BackupRecord | null;
}

/**
 * followDatabase brings the running chain level with the database's newest backup record, which the instance holding
 * the writer lease writes with every save, restore and backup (of any ledger: a standby that started on an empty
 * database follows the writer's genesis). Blocks that extend the local head are fetched from it on, verified against
 * the chain, appended to the local store and applied. Any other newest record (a rollback the writer restored, to an
 * earlier point or another branch; another ledger) is the writer's word: the chain is replaced by that backup,
 * verified in full. Only when the local chain holds blocks the database lacks (saved before the lease was on) is it
 * left as it is, with `unsent` set: only the lease holder may send them. Run it inside the serial section.
 */
export async function followDatabase(core: LedgerCore, tier: BackupTier): Promise<FollowResult> {
  const record = await latestBackup(tier, null);
  const chain = core.chain();
  const head = chain.head;
  const none = { blocks: 0, replaced: false, unsent: false, record };
  if (!record || (record.ledgerId === chain.ledgerId && record.height === head.index && record.headHash === head.hash))
    return none;
  checkRecord(core.sealer, record);
  const where = `database backup ${record.id}`;
  if (
    record.ledgerId === chain.ledgerId &&
    record.height > head.index &&
    (await tier.hashAt(record, head.index)) === head.hash
  ) {
    let blocks = 0;
    let packed = false;
    for await (const page of tier.readChainPages(record, head.index + 1)) {
      // The writer compacted blocks this instance lacks into a pack: take its backup whole, below.
      if ('pack' in page) {
        packed = true;
        break;
      }
      const opened = checkContinuation(core.sealer, chain, page.blocks, where);
      await core.store.append(chain.ledgerId, page.blocks);
      for (const [i, block] of opened.entries()) {
        chain.state.apply(block);
        chain.sizeBytes += page.blocks[i]!.sealed.length;
        chain.head = block;
      }
      blocks += page.blocks.length;
    }
    if (packed) {
      const replaced = await restoreInto(core.store, tier, record, core.sealer, { log: core.log });
      core.setChain(replaced);
      core.log.info(
        { backupId: record.id, height: record.height },
        `Followed the writer: its newest backup ${record.id} (block ${record.height}) holds compacted blocks this instance lacks; took it whole, verified`,
      );
      return { ...none, blocks: replaced.state.totalBlocks, replaced: true };
    }
    core.log.info(
      { height: chain.head.index, blocks },
      `Followed the writer: ${blocks} new block(s) from the database, now at block ${chain.head.index}`,
    );
    return { ...none, blocks };
  }
  // A genesis block alone holds nothing to lose; any other head must be in the database before it is let go.
  if (head.index > 0 && !(await tier.hasBlock(chain.ledgerId, head.index, head.hash))) return { ...none, unsent: true };
  const replaced = await restoreInto(core.store, tier, record, core.sealer, { log: core.log });
  core.setChain(replaced);
  core.log.warn(
    { backupId: record.id, height: record.height, localHeight: head.index },
    `Followed the writer: its newest backup ${record.id} (block ${record.height}) does not extend the local chain (block ${head.index}, ${head.hash.slice(0, 16)}): a rollback or another ledger; took that backup, verified`,
  );
  return { ...none, blocks: replaced.state.totalBlocks, replaced: true };
}
