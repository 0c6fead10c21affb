import type { BackupRecord } from '../../src/crypto/records.js';
import type { StoredBlock } from '../../src/crypto/stored-block.js';
import type { BackupTier } from '../../src/tiers/tier.js';

/** readChain yields a record's blocks as a tier holds them one by one; a pack page fails the test. */
export async function* readChain(tier: BackupTier, record: BackupRecord, start = 0): AsyncGenerator<StoredBlock> {
  for await (const page of tier.readChainPages(record, start)) {
    if ('pack' in page) throw new Error(`${tier.name} yielded a pack where loose blocks were expected`);
    yield* page.blocks;
  }
}
