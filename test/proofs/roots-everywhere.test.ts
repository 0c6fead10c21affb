/**
 * Every backup record carries the chain root at its height, in the database and in the dir tier's manifests: the
 * first record of a new ledger, named ones, and those written right after a restore, while the accumulator's node
 * file is still being rebuilt (a save then waits for it instead of leaving the root out).
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Ledger } from '../../src/service/ledger.js';
import { manifestCommitment } from '../../src/tiers/packs/format.js';
import { databasePerTest, ledgerConfig, propertyInput, tempDir } from '../support/pg.js';

const tdb = databasePerTest('proof-roots-all');

// The root of the chain at each height, from consistency proofs against the head.
async function rootsByHeight(ledger: Ledger): Promise<Map<number, string>> {
  await ledger.proofsReady();
  const head = ledger.head.index;
  const roots = new Map<number, string>();
  for (let h = 0; h <= head; h++) roots.set(h, (await ledger.consistency(h, head)).from.root);
  return roots;
}

async function manifests(dir: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name.endsWith('.tmp')) continue;
    const bytes = await readFile(join(entry.parentPath, entry.name));
    if (bytes.subarray(0, 4).toString('latin1') === 'PWLM') out.push(bytes);
  }
  return out;
}

describe('the chain root in every backup record', () => {
  it.each([
    ['saves alone', {}],
    ['packs and checkpoints', { LEDGER_PACK_BYTES: '1', LEDGER_CHECKPOINT_BLOCKS: '2' }],
  ])(
    'is in the first record, named ones, those made right after a restore, in the database and dir manifests (%s)',
    async (_, extra: Record<string, string>) => {
      const dataDir = tdb.dataDir();
      const backup = await tempDir('roots-dir');
      const config = () => ledgerConfig(dataDir, tdb.db.url, { LEDGER_BACKUP_DIR: backup.dir, ...extra });
      try {
        let ledger = await Ledger.open({ config: config() });
        await ledger.register(propertyInput('p1'));
        await ledger.backup({ tier: 'db', name: 'named' });
        await ledger.register(propertyInput('p2'));
        await ledger.close();

        // A wiped disk: the chain comes back from the database, the node file is rebuilt, and saves go on at once.
        await rm(dataDir, { recursive: true, force: true });
        ledger = await Ledger.open({ config: config() });
        await ledger.register(propertyInput('p3'));
        await ledger.backup({ tier: 'dir', name: 'named after restore' });
        await ledger.register(propertyInput('p4'));
        for (const id of ['p5', 'p6', 'p7']) await ledger.register(propertyInput(id));
        await ledger.maintain();
        await ledger.close();

        ledger = await Ledger.open({ config: config() });
        let roots: Map<number, string>;
        try {
          roots = await rootsByHeight(ledger);
        } finally {
          await ledger.close();
        }
        const rows = await tdb.db.sql<{ height: string; chain_root: string | null; kind: string }>(
          'SELECT height, chain_root, kind FROM blockchain_backups ORDER BY id',
        );
        expect(rows.length).toBeGreaterThanOrEqual(5);
        expect(rows.map((r) => r.kind)).toContain('manual');
        for (const r of rows) expect(r).toEqual({ ...r, chain_root: roots.get(+r.height) });
        // The dir tier's manifests, read back without the key: each commits to the root at its head.
        const files = await manifests(backup.dir);
        expect(files.length).toBeGreaterThan(1);
        for (const f of files) {
          const head = manifestCommitment(f);
          expect(head).toEqual({ ...head, root: roots.get(head.height) });
        }
      } finally {
        await backup.cleanup();
      }
    },
  );
});
