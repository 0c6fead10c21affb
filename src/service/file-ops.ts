import { ConflictError, IntegrityError } from '../errors.js';
import { readExport, writeExport } from '../store/export-file.js';
import type { LedgerCore } from './backup-ops.js';
import { replayChain } from '../engine/replay.js';

/** exportChain writes the whole chain as one sealed file, atomically; an existing file is replaced only with `replace`. */
export async function exportChain(core: LedgerCore, path: string, replace = false): Promise<{ bytes: number; totalBlocks: number }> {
  const { ledgerId, head: h } = core.chain();
  const head = { ledgerId, height: h.index, hash: h.hash };
  const { bytes } = await writeExport(path, head, core.store.read(0, head.height), core.sealer, replace);
  core.log.info({ path, bytes, totalBlocks: head.height + 1 }, `Ledger exported to ${path}: ${head.height + 1} blocks, ${bytes} bytes`);
  return { bytes, totalBlocks: head.height + 1 };
}

/**
 * importChain reads an export file, verifies it in full, and makes it the ledger; the tiers then catch up. A chain
 * that does not extend the current one (another ledger, or a rollback) is refused unless `force` is set.
 */
export async function importChain(core: LedgerCore, path: string, force: boolean): Promise<{ totalBlocks: number }> {
  core.assertWriter();
  return core.exclusive(async () => {
    const { head, blocks } = await readExport(path, core.sealer);
    const replayed = await replayChain(blocks, core.sealer, { where: path, ledgerId: head.ledgerId, expectHead: head });
    if (!replayed) throw new IntegrityError(`${path} holds no blocks`);
    const current = core.chain();
    const extendsCurrent = replayed.ledgerId === current.ledgerId && blocks[current.head.index]?.hash === current.head.hash;
    // A ledger that is only its genesis block (a fresh data folder) holds no transaction: replacing it loses nothing.
    const pristine = current.head.index === 0;
    if (!extendsCurrent && !pristine && !force) {
      throw new ConflictError(`${path} holds ${replayed.ledgerId === current.ledgerId ? 'a chain that does not extend' : 'another ledger than'} the current one (block ${current.head.index}); importing would discard blocks (use --force)`);
    }
    const swap = () => core.store.replace(replayed.ledgerId, [blocks]);
    const queue = core.tiers.ipfs?.queue;
    await (queue ? queue.hold(swap) : swap());
    core.setChain(replayed);
    core.log.info({ path, totalBlocks: replayed.state.totalBlocks }, `Ledger imported from ${path}: ${replayed.state.totalBlocks} blocks, ${replayed.state.totalProperties} properties`);
    await core.tiers.db?.replicator.catchUp();
    core.tiers.ipfs?.queue.notify();
    return { totalBlocks: replayed.state.totalBlocks };
  });
}
