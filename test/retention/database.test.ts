/**
 * Retention on the database tier (the real server), through the Ledger: policies on a history with controlled
 * timestamps leave exactly the expected backups, each of which restores and verifies; the newest valid backup
 * survives a policy that would remove everything; a save racing a prune loses nothing; garbage collection frees the
 * blocks of an abandoned branch and nothing else; a dry run changes nothing; the periodic prune and the HTTP route.
 */
import { describe, expect, it } from 'vitest';
import { buildServer } from '../../src/server/app.js';
import { Ledger } from '../../src/service/ledger.js';
import { captureLogger, ledgerConfig, propertyInput, waitFor, databasePerTest } from '../support/pg.js';

const DAY = 86_400_000;
const tdb = databasePerTest('retention-db');
let start = Date.parse('2026-01-01T00:00:00Z');

function clock() {
  let t = (start += 100 * DAY);
  return { now: () => new Date(t), advance: (ms: number) => void (t += ms) };
}

async function open(now: () => Date, extra: NodeJS.ProcessEnv = {}, logger = captureLogger().logger): Promise<Ledger> {
  return Ledger.open({ config: ledgerConfig(tdb.dataDir(), tdb.db.url, extra), now, logger });
}

async function heights(ledger: Ledger): Promise<number[]> {
  return (await ledger.listBackups({ tier: 'db', allLedgers: false, limit: 1000 })).map((r) => r.height);
}

async function blockRows(ledger: Ledger): Promise<{ branch: number; height: number; hash: string; size: number }[]> {
  const rows = await tdb.db.sql<{ branch: number; height: string; hash: Buffer; size: number }>(
    `SELECT k.branch, k.height, k.hash, octet_length(k.sealed) AS size FROM ledger_blocks k JOIN ledgers l ON l.id = k.ledger_id
     WHERE l.genesis_hash = $1 ORDER BY k.branch, k.height`,
    [ledger.ledgerId],
  );
  return rows.map((r) => ({ branch: r.branch, height: Number(r.height), hash: r.hash.toString('hex'), size: r.size }));
}

/** verifiesAll checks every listed backup of the ledger end to end. */
async function verifiesAll(ledger: Ledger): Promise<void> {
  for (const r of await ledger.listBackups({ tier: 'db', allLedgers: false })) {
    expect(await ledger.verifyBackup({ tier: 'db', backupId: r.id }), `backup ${r.id}`).toMatchObject({ ok: true });
  }
}

describe('pruning the database tier', () => {
  it('older-than with keep-last on daily saves leaves exactly the expected backups, each restorable', async () => {
    const c = clock();
    const ledger = await open(c.now);
    try {
      for (let i = 1; i <= 10; i++) {
        c.advance(DAY);
        await ledger.register(propertyInput(`d${i}`, i));
      }
      expect(await heights(ledger)).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
      c.advance(DAY / 2);
      // Cut-off: day 7.5. Days 8-10 are newer; keep-last 2 adds nothing older.
      const report = await ledger.pruneBackups({ olderThan: '3d', keepLast: 2 }, { tier: 'db' });
      const [t] = report.tiers;
      expect(report).toMatchObject({ policy: 'keep-last=2,older-than=3d', dryRun: false });
      expect(t!.remove.map((r) => r.height)).toEqual([7, 6, 5, 4, 3, 2, 1, 0]);
      expect(t!.removed).toBe(8);
      expect(t!.collected).toEqual({ blocks: 0, bytes: 0 });
      expect(t!.keep.map((k) => [k.height, k.reasons])).toEqual([
        [10, ['newest valid', 'running head', 'keep-last 2', 'newer than 3d']],
        [9, ['keep-last 2', 'newer than 3d']],
        [8, ['newer than 3d']],
      ]);
      expect(await heights(ledger)).toEqual([10, 9, 8]);
      await verifiesAll(ledger);
      // The oldest kept one restores (a rollback), and so does the newest afterwards.
      const [newest, , oldest] = await ledger.listBackups({ tier: 'db', allLedgers: false });
      await ledger.restoreFromDatabase({ backupId: oldest!.id });
      expect(ledger.properties()).toHaveLength(8);
      await ledger.restoreFromDatabase({ backupId: newest!.id });
      expect(ledger.properties()).toHaveLength(10);
    } finally {
      await ledger.close();
    }
  });

  it('a policy that would remove everything keeps the newest valid backup, and refuses when none verifies', async () => {
    const c = clock();
    const ledger = await open(c.now);
    try {
      for (let i = 0; i < 4; i++) await ledger.register(propertyInput(`e${i}`, i));
      const [newest, second] = await ledger.listBackups({ tier: 'db', allLedgers: false });
      // An edited row no longer matches its seal: the newest valid backup is the one before it.
      await tdb.db.sql('UPDATE blockchain_backups SET name = $2 WHERE id = $1', [newest!.id, 'edited']);
      c.advance(2 * DAY);
      const dry = await ledger.pruneBackups({ olderThan: '1h' }, { tier: 'db', dryRun: true });
      expect(dry.tiers[0]!.newestValid).toBe(second!.id);
      expect(dry.tiers[0]!.keep.map((k) => [k.id, k.reasons])).toEqual([
        [newest!.id, ['running head']],
        [second!.id, ['newest valid']],
      ]);
      const real = await ledger.pruneBackups({ olderThan: '1h' }, { tier: 'db' });
      expect(real.tiers[0]!.removed).toBe(3);
      expect(await heights(ledger)).toEqual([4, 3]);
      expect(await ledger.verifyBackup({ tier: 'db', backupId: second!.id })).toMatchObject({ ok: true });

      await tdb.db.sql('UPDATE blockchain_backups SET name = name || $2 WHERE id = $1', [second!.id, ' (edited)']);
      await expect(ledger.pruneBackups({ keepLast: 1 }, { tier: 'db' })).rejects.toMatchObject({ code: 'INTEGRITY' });
      expect(await heights(ledger)).toEqual([4, 3]);
      // Pruning every tier reports the failure per tier instead of throwing.
      const all = await ledger.pruneBackups('keep-last=1');
      expect(all.tiers).toEqual([
        expect.objectContaining({ tier: 'db', removed: 0, error: expect.stringContaining('verifies') }),
      ]);
    } finally {
      await ledger.close();
    }
  });

  it('a save running while a prune runs loses nothing', async () => {
    const c = clock();
    let ledger = await open(c.now);
    const url = tdb.db.url;
    try {
      for (let i = 0; i < 30; i++) await ledger.register(propertyInput(`c${i}`, i));
      const saves = Array.from({ length: 20 }, (_, i) =>
        new Promise((r) => setTimeout(r, i * 3)).then(() => ledger.register(propertyInput(`during${i}`, i))),
      );
      const [report] = await Promise.all([ledger.pruneBackups({ keepLast: 1 }, { tier: 'db' }), ...saves]);
      expect(report.tiers[0]!.removed).toBeGreaterThan(0);
      expect(ledger.properties()).toHaveLength(50);
      const head = ledger.head;
      const [newest] = await ledger.listBackups({ tier: 'db', allLedgers: false });
      expect(newest).toMatchObject({ height: head.index, headHash: head.hash });
      await verifiesAll(ledger);
      await ledger.close();
      // A new machine restores every save from the database alone.
      ledger = await Ledger.open({ config: ledgerConfig(tdb.dataDir(), url), now: c.now });
      expect(ledger.head.hash).toBe(head.hash);
      expect(ledger.properties()).toHaveLength(50);
    } finally {
      await ledger.close();
    }
  });

  it('garbage collection frees the blocks of an abandoned branch and nothing else', async () => {
    const c = clock();
    const ledger = await open(c.now);
    try {
      for (let i = 1; i <= 6; i++) await ledger.register(propertyInput(`g${i}`, i));
      const at3 = (await ledger.listBackups({ tier: 'db', allLedgers: false })).find((r) => r.height === 3)!;
      const abandoned = (await blockRows(ledger)).filter((b) => b.height > 3);
      expect(abandoned).toHaveLength(3);
      await ledger.restoreFromDatabase({ backupId: at3.id });
      await ledger.register(propertyInput('h4', 4));
      await ledger.register(propertyInput('h5', 5));
      expect(await blockRows(ledger)).toHaveLength(9);
      // Keep the new branch's two backups and the restore's marker at block 3; the old branch's records go.
      const report = await ledger.pruneBackups({ keepLast: 3 }, { tier: 'db' });
      expect(report.tiers[0]!.removed).toBe(7);
      expect(report.tiers[0]!.collected).toEqual({ blocks: 3, bytes: abandoned.reduce((n, b) => n + b.size, 0) });
      const left = await blockRows(ledger);
      expect(left.map((b) => b.hash)).toEqual((await ledger.chain(0, 100)).map((b) => b.hash));
      expect(left.some((b) => abandoned.some((a) => a.hash === b.hash))).toBe(false);
      await verifiesAll(ledger);
      const again = await ledger.pruneBackups({ keepLast: 3 }, { tier: 'db' });
      expect(again.tiers[0]).toMatchObject({ removed: 0, collected: { blocks: 0, bytes: 0 } });
      // Saves go on after it, on the surviving branch.
      await ledger.register(propertyInput('h6', 6));
      await verifiesAll(ledger);
    } finally {
      await ledger.close();
    }
  });

  it('a dry run changes nothing and lists exactly what the real run removes; protected backups stay', async () => {
    const c = clock();
    const ledger = await open(c.now);
    try {
      await ledger.register(propertyInput('k0'));
      const kept = await ledger.backupToDatabase({ name: 'Before the audit', protect: true });
      for (let i = 1; i <= 5; i++) await ledger.register(propertyInput(`k${i}`, i));
      const rows = () =>
        tdb.db.sql(
          'SELECT b.* FROM blockchain_backups b JOIN ledgers l ON l.id = b.ledger_id WHERE l.genesis_hash = $1 ORDER BY b.id',
          [ledger.ledgerId],
        );
      const before = { rows: await rows(), blocks: await blockRows(ledger) };
      const dry = await ledger.pruneBackups({ keepLast: 2 }, { tier: 'db', dryRun: true });
      expect({ rows: await rows(), blocks: await blockRows(ledger) }).toEqual(before);
      expect(dry.tiers[0]).toMatchObject({ removed: 0, collected: { blocks: 0, bytes: 0 } });
      expect(dry.tiers[0]!.keep.find((k) => k.id === kept.id)?.reasons).toEqual(['protected']);
      const real = await ledger.pruneBackups({ keepLast: 2 }, { tier: 'db' });
      expect(real.tiers[0]!.remove.map((r) => r.id)).toEqual(dry.tiers[0]!.remove.map((r) => r.id));
      const ids = (await ledger.listBackups({ tier: 'db', allLedgers: false })).map((r) => r.id);
      expect(ids).toEqual(dry.tiers[0]!.keep.map((k) => k.id).sort((a, b) => Number(b) - Number(a)));
      expect(ids).toContain(kept.id);
      // Unprotected, it goes at the next prune.
      await ledger.protectBackup(kept.id, { on: false });
      await ledger.pruneBackups({ keepLast: 2 }, { tier: 'db' });
      expect((await ledger.listBackups({ tier: 'db', allLedgers: false })).map((r) => r.id)).not.toContain(kept.id);
      await expect(ledger.protectBackup('987654321')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    } finally {
      await ledger.close();
    }
  });

  it('the server prunes by LEDGER_RETENTION on a timer, logs the counts, and stops on close', async () => {
    const c = clock();
    const { logger, lines } = captureLogger();
    const ledger = await open(c.now, { LEDGER_RETENTION: 'keep-last=2', LEDGER_RETENTION_INTERVAL_MS: '1000' }, logger);
    let closed = false;
    try {
      for (let i = 0; i < 5; i++) await ledger.register(propertyInput(`t${i}`, i));
      expect(ledger.startRetention()).toBe(true);
      expect(ledger.startRetention()).toBe(false);
      await waitFor('a scheduled prune', () => lines.some((l) => l.includes('Scheduled prune')), 5000);
      const line = JSON.parse(lines.find((l) => l.includes('Scheduled prune'))!) as { msg: string; tiers: unknown[] };
      expect(line.msg).toBe('Scheduled prune (keep-last=2): db removed 4, kept 2, freed 0 objects');
      expect(line.tiers).toEqual([{ tier: 'db', removed: 4, kept: 2, collectedBlocks: 0, collectedBytes: 0 }]);
      expect(await heights(ledger)).toEqual([5, 4]);
      await ledger.close();
      closed = true;
      const count = lines.length;
      await new Promise((r) => setTimeout(r, 1200));
      expect(lines.length).toBe(count);
    } finally {
      if (!closed) await ledger.close();
    }
  });

  it('POST /admin/backups/prune takes the same options, with dryRun; bad ones name their field', async () => {
    const c = clock();
    const ledger = await open(c.now);
    const token = 'retention-admin-token-0123456789';
    const app = buildServer(ledger, { adminToken: token });
    const post = (url: string, payload: unknown, auth = true) =>
      app.inject({
        method: 'POST',
        url,
        payload: payload as object,
        headers: auth ? { authorization: `Bearer ${token}` } : {},
      });
    try {
      for (let i = 0; i < 3; i++) await ledger.register(propertyInput(`w${i}`, i));
      expect((await post('/admin/backups/prune', { keepLast: 1 }, false)).statusCode).toBe(401);
      const dry = await post('/admin/backups/prune', { keepLast: '1', tier: 'db', dryRun: true });
      expect(dry.statusCode).toBe(200);
      expect(dry.json()).toMatchObject({ policy: 'keep-last=1', dryRun: true, tiers: [{ tier: 'db', removed: 0 }] });
      expect(dry.json().tiers[0].remove).toHaveLength(3);
      expect(await heights(ledger)).toHaveLength(4);
      for (const [payload, field] of [
        [{ keepLast: 0 }, 'keepLast'],
        [{ olderThan: '6m' }, 'olderThan'],
        [{}, 'body'],
        [{ keepLast: 1, tier: 'x' }, 'tier'],
        [{ keepLast: 1, dryRun: 'yes' }, 'dryRun'],
      ] as const) {
        const r = await post('/admin/backups/prune', payload);
        expect(r.statusCode, JSON.stringify(payload)).toBe(400);
        expect(r.json().error).toMatchObject({ code: 'VALIDATION', field });
      }
      const [newest] = await ledger.listBackups({ tier: 'db', allLedgers: false });
      const protect = await post('/admin/backups/protect', { id: newest!.id });
      expect(protect.json()).toEqual({ id: newest!.id, tier: 'db', protected: true });
      const real = await post('/admin/backups/prune', { keepLast: 1 });
      expect(real.json().tiers[0]).toMatchObject({ tier: 'db', removed: 3 });
      expect(await heights(ledger)).toEqual([3]);
      expect((await ledger.listBackups({ tier: 'db', allLedgers: false }))[0]!.protected).toBe(true);
    } finally {
      await app.close();
      await ledger.close();
    }
  });
});
