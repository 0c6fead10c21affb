import { basename } from 'node:path';
import type { LedgerCore } from '../engine/core.js';
import { afterRestore, holdAll } from '../engine/restore-service.js';
import { importFile } from '../engine/startup.js';
import { writeExport } from '../store/export-file.js';
import { pageRange, type ChainPage } from '../crypto/packs.js';
import { progressTask } from '../util/progress.js';

/** exportChain writes the whole chain as one sealed file, atomically; an existing file is replaced only with `replace`. */
export async function exportChain(
  core: LedgerCore,
  path: string,
  replace = false,
): Promise<{ bytes: number; totalBlocks: number }> {
  const { ledgerId, head: h } = core.chain();
  const head = { ledgerId, height: h.index, hash: h.hash };
  const progress = progressTask(`export to ${path}`, head.height + 1);
  const { bytes } = await writeExport(
    path,
    head,
    counted(core.store.readPages(0, head.height), progress),
    core.sealer,
    replace,
  )
    .then((r) => {
      // A consumer that stops pulling after the last page never resumes `counted` past it.
      progress.update(head.height + 1);
      return r;
    })
    .finally(() => progress.end());
  core.log.info(
    { path, bytes, totalBlocks: head.height + 1 },
    `Ledger exported to ${path}: ${head.height + 1} blocks, ${bytes} bytes`,
  );
  return { bytes, totalBlocks: head.height + 1 };
}

/**
 * importChain makes an export file the running ledger (engine/startup.ts importFile: verified in full, refused unless
 * it extends the current chain or `force`), then records it in every tier as a restore would.
 */
export async function importChain(core: LedgerCore, path: string, force: boolean): Promise<{ totalBlocks: number }> {
  core.assertWriter();
  return core.exclusive(async () => {
    const replayed = await holdAll(core.replicators, () => importFile(core, path, force, core.chain()));
    core.setChain(replayed);
    await afterRestore(core, importedName(path));
    return { totalBlocks: replayed.state.totalBlocks };
  });
}

/** importedName is the name of the record an import leaves in every tier. */
export function importedName(path: string): string {
  return `Imported ${basename(path)}`.slice(0, 200);
}

// The pages as they are read, reporting how many blocks have gone by.
async function* counted(
  pages: AsyncIterable<ChainPage>,
  progress: { update(done: number): void },
): AsyncGenerator<ChainPage> {
  for await (const page of pages) {
    yield page;
    progress.update(pageRange(page).to + 1);
  }
}
