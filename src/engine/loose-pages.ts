import type { ChainPage } from '../crypto/packs.js';
import type { StoredBlock } from '../crypto/stored-block.js';

/** loosePages is a chain's pages as runs of blocks sealed one by one; a pack is not yet readable here (TEMPORARY). */
export async function* loosePages(source: AsyncIterable<ChainPage>): AsyncGenerator<StoredBlock[]> {
  for await (const page of source) {
    if ('pack' in page) throw new Error('packs are not readable yet');
    yield page.blocks;
  }
}
