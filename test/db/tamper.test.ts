/**
 * Tampering in the database, by SQL, as someone with database access but not the key would: a changed byte in a
 * stored block, or an edited backup record. verifyBackup must report it naming the block or the backup, a restore
 * must refuse it and leave the running ledger as it was, and a startup from an empty disk must never run a chain
 * other than the ledger's own.
 */
import { describe, expect, it } from 'vitest';
import { Ledger } from '../../src/service/ledger.js';
import {
  captureLogger,
  ledgerConfig,
  propertyInput,
  snapshotFiles,
  type BackupRow,
  databasePerTest,
} from '../support/pg.js';

const TAMPERED_HEIGHT = 3;
const SAVES = 6;

const tdb = databasePerTest('db-tamper');

/** opened is a ledger with SAVES saves, replicated, and what a user sees of it. */
async function opened(): Promise<{ ledger: Ledger; data: string }> {
  const data = tdb.dataDir();
  const ledger = await Ledger.open({ config: ledgerConfig(data, tdb.db.url) });
  for (let i = 0; i < SAVES; i++) await ledger.register(propertyInput(`t-${i}`, i));
  return { ledger, data };
}

async function snapshot(ledger: Ledger, data: string) {
  return {
    height: ledger.head.index,
    headHash: ledger.head.hash,
    properties: ledger.properties(),
    files: await snapshotFiles(data),
  };
}

async function flipByte(height: number, at: 'first' | 'version' | 'middle' | 'last'): Promise<void> {
  const k = { first: '0', version: '4', middle: 'length(sealed) / 2', last: 'length(sealed) - 1' }[at];
  const rows = await tdb.db.sql(
    `UPDATE ledger_blocks SET sealed = set_byte(sealed, ${k}, get_byte(sealed, ${k}) # 255) WHERE height = $1 RETURNING height`,
    [height],
  );
  expect(rows).toHaveLength(1);
}

async function newestRow(): Promise<BackupRow> {
  return (await tdb.db.sql<BackupRow>('SELECT * FROM blockchain_backups ORDER BY id DESC LIMIT 1'))[0]!;
}

describe('a block changed in the database', () => {
  for (const at of ['first', 'version', 'middle', 'last'] as const) {
    it(`(${at} byte of block ${TAMPERED_HEIGHT}) fails verifyBackup and restore, naming the block; the running ledger is unchanged`, async () => {
      const { ledger, data } = await opened();
      try {
        const backupId = (await newestRow()).id;
        await flipByte(TAMPERED_HEIGHT, at);
        const before = await snapshot(ledger, data);

        const report = await ledger.verifyBackup();
        expect(report).toMatchObject({ ok: false, backupId });
        expect(report.ok === false && report.reason).toMatch(new RegExp(`\\bblock ${TAMPERED_HEIGHT}\\b`));

        const err = await ledger.restoreFromDatabase().then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toMatchObject({ code: 'INTEGRITY' });
        expect((err as Error).message).toMatch(new RegExp(`\\bblock ${TAMPERED_HEIGHT}\\b`));
        expect(await snapshot(ledger, data)).toEqual(before);
        expect(await ledger.verify()).toMatchObject({ ok: true, headHash: before.headHash });

        // An older backup, whose chain ends before the changed block, still verifies and restores.
        const older = (
          await tdb.db.sql<BackupRow>('SELECT * FROM blockchain_backups WHERE height = $1', [TAMPERED_HEIGHT - 1])
        )[0]!;
        expect(await ledger.verifyBackup({ backupId: older.id })).toMatchObject({
          ok: true,
          headHash: older.head_hash,
        });
        // The ledger keeps saving.
        const { block } = await ledger.register(propertyInput('after-tamper'));
        expect(block.previousHash).toBe(before.headHash);
      } finally {
        await ledger.close();
      }
    });
  }
});

describe('an edited backup record', () => {
  const edits = {
    backup_data:
      "backup_data = overlay(backup_data placing (CASE WHEN substr(backup_data, 20, 1) = 'A' THEN 'B' ELSE 'A' END) from 20 for 1)",
    name: "name = name || ' (edited)'",
    height: 'height = height - 1',
    head_hash: `head_hash = (SELECT encode(hash, 'hex') FROM ledger_blocks WHERE height = ${TAMPERED_HEIGHT})`,
    created_by: 'created_by = 1',
  };
  for (const [column, set] of Object.entries(edits)) {
    it(`(${column}) fails verifyBackup and restore (dry run too) with an integrity error naming the backup id; the running ledger is unchanged`, async () => {
      const { ledger, data } = await opened();
      try {
        const target = (
          await tdb.db.sql<BackupRow>('SELECT * FROM blockchain_backups WHERE height = $1', [SAVES - 2])
        )[0]!;
        await ledger.register(propertyInput('later'));
        const changed = await tdb.db.sql<BackupRow>(`UPDATE blockchain_backups SET ${set} WHERE id = $1 RETURNING *`, [
          target.id,
        ]);
        expect(changed[0]![column as keyof BackupRow]).not.toEqual(target[column as keyof BackupRow]);
        const before = await snapshot(ledger, data);

        const report = await ledger.verifyBackup({ backupId: target.id });
        expect(report).toMatchObject({ ok: false, backupId: target.id });
        expect(report.ok === false && report.reason).toMatch(new RegExp(`\\bbackup ${target.id}\\b`));

        for (const dryRun of [false, true]) {
          const err = await ledger.restoreFromDatabase({ backupId: target.id, dryRun }).then(
            () => null,
            (e: unknown) => e,
          );
          expect(err, `restore${dryRun ? ' --dry-run' : ''}`).toMatchObject({ code: 'INTEGRITY' });
          expect((err as Error).message).toMatch(new RegExp(`\\bbackup ${target.id}\\b`));
        }
        expect(await snapshot(ledger, data)).toEqual(before);
        expect(await ledger.verify()).toMatchObject({ ok: true, headHash: before.headHash });
      } finally {
        await ledger.close();
      }
    });
  }
});

describe('startup from an empty disk when the newest backup was tampered with', () => {
  const cases = {
    'a block in its chain': () => flipByte(TAMPERED_HEIGHT, 'middle'),
    'its record (name)': async () =>
      void (await tdb.db.sql(
        "UPDATE blockchain_backups SET name = 'Totally legit' WHERE id = (SELECT max(id) FROM blockchain_backups)",
      )),
  };
  for (const [what, tamper] of Object.entries(cases)) {
    it(`(${what}) fails loudly or falls back to a valid backup of the same ledger, never another chain`, async () => {
      const { ledger } = await opened();
      const ledgerId = ledger.ledgerId;
      const goodHeads = new Map((await ledger.chain(0, 1000)).map((b) => [b.hash, b.index]));
      await ledger.close();
      await tamper();
      const rowsBefore = await tdb.db.sql('SELECT count(*)::int AS n FROM blockchain_backups');

      const { logger, lines } = captureLogger();
      const outcome = await Ledger.open({ config: ledgerConfig(tdb.dataDir(), tdb.db.url), logger }).then(
        (l) => ({ ledger: l, error: null }),
        (error: unknown) => ({ ledger: null, error }),
      );
      if (outcome.error) {
        expect(outcome.error).toMatchObject({ code: 'INTEGRITY' });
        expect(
          await tdb.db.sql('SELECT count(*)::int AS n FROM blockchain_backups'),
          'nothing is written to the database',
        ).toEqual(rowsBefore);
        return;
      }
      const reopened = outcome.ledger!;
      try {
        expect(
          reopened.ledgerId,
          `started another ledger instead of ${ledgerId.slice(0, 16)}: ${lines.map((l) => JSON.parse(l).msg).join(' | ')}`,
        ).toBe(ledgerId);
        expect(goodHeads.get(reopened.head.hash)).toBe(reopened.head.index);
        expect(await reopened.verify()).toMatchObject({ ok: true });
        expect(reopened.properties().every((p) => p.id.startsWith('t-'))).toBe(true);
        expect(reopened.properties().some((p) => p.name === 'Totally legit')).toBe(false);
      } finally {
        await reopened.close();
      }
    });
  }
});
