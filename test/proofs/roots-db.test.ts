/**
 * The chain root in backup records: stored in PostgreSQL (migrations/0007_chain_roots.sql), covered by the record's
 * seal when present, and absent from older records, which still verify. A deploy that wipes the disk restores from
 * the database and rebuilds the node file, to the same root.
 */
import { rm } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { checkRecord, sealRecord } from '../../src/crypto/records.js';
import { Ledger } from '../../src/service/ledger.js';
import { testSealer } from '../support/chain.js';
import { databasePerTest, ledgerConfig, propertyInput } from '../support/pg.js';

const tdb = databasePerTest('proof-roots');

describe('chain roots in backup records', () => {
  it('are sealed when present; a record without one verifies as before, and neither can be added nor removed', () => {
    const sealer = testSealer();
    const fields = {
      ledgerId: 'ab'.repeat(32),
      name: 'n',
      kind: 'manual' as const,
      createdAt: new Date(0),
      createdBy: null,
      height: 3,
      headHash: 'cd'.repeat(32),
      sizeBytes: 10,
    };
    const old = sealRecord(sealer, fields);
    const rooted = sealRecord(sealer, { ...fields, root: 'ef'.repeat(32) });
    const as = (r: typeof old) => ({ ...r, id: '1', tier: 'db', protected: false });
    expect(() => checkRecord(sealer, as(old))).not.toThrow();
    expect(() => checkRecord(sealer, as(rooted))).not.toThrow();
    expect(() => checkRecord(sealer, as({ ...old, root: 'ef'.repeat(32) }))).toThrow(/does not match its seal/);
    expect(() => checkRecord(sealer, as({ ...rooted, root: undefined }))).toThrow(/does not match its seal/);
    expect(() => checkRecord(sealer, as({ ...rooted, root: '00'.repeat(32) }))).toThrow(/does not match its seal/);
  });

  it('are stored by PostgreSQL with every save, and a wiped disk comes back from it to the same root', async () => {
    const dataDir = tdb.dataDir();
    let ledger = await Ledger.open({ config: ledgerConfig(dataDir, tdb.db.url) });
    await ledger.register(propertyInput('p1'));
    await ledger.register(propertyInput('p2'));
    await ledger.proofsReady();
    const { proof } = await ledger.proof('p1');
    const rows = await tdb.db.sql<{ height: string; chain_root: string | null }>(
      'SELECT height, chain_root FROM blockchain_backups ORDER BY id DESC LIMIT 1',
    );
    expect(rows[0]).toEqual({ height: '2', chain_root: proof.head.root });
    await ledger.close();

    await rm(dataDir, { recursive: true, force: true });
    ledger = await Ledger.open({ config: ledgerConfig(dataDir, tdb.db.url) });
    try {
      expect(await ledger.proofsReady()).toEqual({ state: 'ready', rebuilt: 3 });
      expect((await ledger.proof('p1')).proof).toEqual(proof);
      const [newest] = await ledger.listBackups({ tier: 'db', limit: 1 });
      expect(newest!.root).toBe(proof.head.root);
    } finally {
      await ledger.close();
    }
  });
});
