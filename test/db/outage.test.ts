/**
 * Database outages while the ledger runs: a TCP proxy between pawledger and PostgreSQL is cut (connections destroyed,
 * new ones refused or blackholed) and restored; the server also kills pawledger's backends. Saves must keep
 * resolving quickly from the local store, status must show the database lagging, and the replicator must catch up
 * on its own once the database is back, leaving a newest backup that verifies and names the local head.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Ledger, type TierStatus } from '../../src/service/ledger.js';
import {
  captureLogger,
  createTempDatabase,
  ledgerConfig,
  newestBackupRow,
  pgUrl,
  propertyInput,
  tempDir,
  waitFor,
  type TempDatabase,
} from '../support/pg.js';
import { startTcpProxy, type CutMode, type TcpProxy } from '../support/tcp-proxy.js';

const PG_TIMEOUT_MS = 1500;
/** SLACK covers scheduling noise on a loaded machine on top of the bound being checked. */
const SLACK_MS = 1000;

let db: TempDatabase;
let proxy: TcpProxy;
let dir: string;
let cleanup: () => Promise<void>;
let seq = 0;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('db-outage'));
});
afterAll(async () => {
  await cleanup?.();
});
beforeEach(async () => {
  db = await createTempDatabase();
  proxy = await startTcpProxy(5432);
});
afterEach(async () => {
  await proxy?.close();
  await db?.drop();
});

function dbTier(ledger: Ledger): TierStatus {
  return ledger.status().tiers.find((t) => t.name === 'db')!;
}

/** watchCrashes records uncaught exceptions (what would kill `pawledger serve`) until stop(). */
function watchCrashes(): { errors: string[]; stop: () => void } {
  const errors: string[] = [];
  const on = (err: unknown) => void errors.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  process.on('uncaughtException', on);
  return { errors, stop: () => void process.off('uncaughtException', on) };
}

async function timedSave(ledger: Ledger, id: string): Promise<number> {
  const start = performance.now();
  await ledger.register(propertyInput(id));
  return performance.now() - start;
}

/** expectLevel checks, over a direct connection, that the database holds the ledger's chain up to its head. */
async function expectLevel(ledger: Ledger): Promise<void> {
  const newest = await newestBackupRow(db);
  expect(newest).toMatchObject({ head_hash: ledger.head.hash });
  expect(Number(newest!.height)).toBe(ledger.head.index);
  const blocks = await db.sql<{ n: number; heights: number }>(
    'SELECT count(*)::int AS n, count(DISTINCT height)::int AS heights FROM ledger_blocks',
  );
  expect(blocks[0]).toEqual({ n: ledger.head.index + 1, heights: ledger.head.index + 1 });
  expect(await ledger.verifyBackup()).toMatchObject({
    ok: true,
    backupId: newest!.id,
    headHash: ledger.head.hash,
    totalBlocks: ledger.head.index + 1,
  });
}

describe('saves during a database outage', () => {
  for (const mode of ['refuse', 'blackhole'] as CutMode[]) {
    it(`(${mode}) resolve quickly, show the database lagging, and the replicator catches up on its own after the link returns`, async () => {
      const ledger = await Ledger.open({
        config: ledgerConfig(join(dir, `data-${seq++}`), pgUrl(db.name, proxy.port)),
      });
      try {
        for (let i = 0; i < 3; i++) await ledger.register(propertyInput(`up-${i}`));
        expect(dbTier(ledger)).toMatchObject({ state: 'ok', height: 3 });

        await proxy.cut(mode);
        const first = await timedSave(ledger, 'cut-0');
        expect(first).toBeLessThan(PG_TIMEOUT_MS + SLACK_MS);
        const rest: number[] = [];
        for (let i = 1; i < 6; i++) rest.push(await timedSave(ledger, `cut-${i}`));
        // Once the first save found the database gone (refused at once, or blackholed: after the statement deadline),
        // no save waits on it: it is probed and caught up beside the saves, never inside their serial section.
        const bound = 500;
        expect(Math.max(...rest), `save times while cut: ${rest.map(Math.round).join(', ')} ms`).toBeLessThan(bound);
        console.info(
          `[outage ${mode}] first save while cut ${Math.round(first)} ms, then ${rest.map(Math.round).join(', ')} ms`,
        );

        expect(ledger.head.index).toBe(9);
        const lagging = dbTier(ledger);
        expect(lagging).toMatchObject({ state: 'lagging', height: 3 });
        // A refused link reads as unreachable; a blackholed one, whose connections hang, as not answering in time.
        expect(lagging.detail).toMatch(/unreachable|did not answer/i);
        expect(ledger.status().tiers.find((t) => t.name === 'local')).toMatchObject({ state: 'ok', height: 9 });

        await proxy.restore();
        const ms = await waitFor(
          'the database to catch up',
          () => dbTier(ledger).state === 'ok' && dbTier(ledger).height === 9,
          10_000,
        );
        console.info(`[outage ${mode}] caught up ${Math.round(ms)} ms after the link returned`);
        expect(dbTier(ledger).detail).not.toMatch(/unreachable/i);
        await expectLevel(ledger);

        // Saves replicate synchronously again.
        await ledger.register(propertyInput('back'));
        expect(dbTier(ledger)).toMatchObject({ state: 'ok', height: 10 });
        await expectLevel(ledger);
      } finally {
        const start = performance.now();
        await ledger.close();
        expect(performance.now() - start).toBeLessThan(PG_TIMEOUT_MS + SLACK_MS);
      }
    });
  }

  it('close() during a blackholed outage returns within the timeout', async () => {
    const ledger = await Ledger.open({ config: ledgerConfig(join(dir, `data-${seq++}`), pgUrl(db.name, proxy.port)) });
    await ledger.register(propertyInput('a'));
    await proxy.cut('blackhole');
    await ledger.register(propertyInput('b'));
    await new Promise((r) => setTimeout(r, 150)); // let a background retry start and hang on the blackhole
    const start = performance.now();
    await ledger.close();
    const ms = performance.now() - start;
    console.info(`[outage blackhole] close() took ${Math.round(ms)} ms`);
    expect(ms).toBeLessThan(PG_TIMEOUT_MS + SLACK_MS);
  });
});

describe("the server terminating pawledger's connections mid-run", () => {
  it('loses no save and no block: the database ends level with the local head', async () => {
    const crashes = watchCrashes();
    const ledger = await Ledger.open({ config: ledgerConfig(join(dir, `data-${seq++}`), db.url) });
    try {
      let terminated = 0;
      let saving = true;
      const saves = (async () => {
        for (let i = 0; i < 30; i++) {
          await ledger.register(propertyInput(`term-${i}`, i));
          await new Promise((r) => setTimeout(r, 15));
        }
        saving = false;
      })();
      const killer = (async () => {
        while (saving) {
          await new Promise((r) => setTimeout(r, 60));
          const rows = await db.sql<{ ok: boolean }>(
            "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'pawledger' AND datname = $1",
            [db.name],
          );
          terminated += rows.filter((r) => r.ok).length;
        }
      })();
      await Promise.all([saves, killer]);
      expect(terminated, "the test killed pawledger's backends several times").toBeGreaterThanOrEqual(3);
      expect(ledger.head.index).toBe(30);
      expect(ledger.properties()).toHaveLength(30);
      const ms = await waitFor(
        'the database to catch up',
        () => dbTier(ledger).state === 'ok' && dbTier(ledger).height === 30,
        10_000,
      );
      console.info(`[terminate] ${terminated} backends terminated; level ${Math.round(ms)} ms after the last save`);
      await expectLevel(ledger);
      // Every record points at a block the database holds.
      const orphans = await db.sql(
        "SELECT b.id FROM blockchain_backups b WHERE NOT EXISTS (SELECT 1 FROM ledger_blocks k WHERE k.ledger_id = b.ledger_id AND k.height = b.height AND encode(k.hash, 'hex') = b.head_hash)",
      );
      expect(orphans).toEqual([]);
      expect(crashes.errors, 'uncaught exceptions (they kill the server)').toEqual([]);
    } finally {
      crashes.stop();
      await ledger.close();
    }
  });

  it('does not crash the process when a backend is terminated while a transaction sits between statements', async () => {
    const crashes = watchCrashes();
    const ledger = await Ledger.open({ config: ledgerConfig(join(dir, `data-${seq++}`), pgUrl(db.name, proxy.port)) });
    try {
      await ledger.register(propertyInput('x-0'));
      // The server's reply to the manual backup's BEGIN is held in the proxy while the server terminates that
      // backend; both then reach pawledger together, as they do when a termination lands right after a statement.
      const holding = proxy.holdInTransaction();
      const backup = ledger.backupToDatabase({ name: 'During termination' }).then(
        (r) => ({ ok: r }),
        (e: unknown) => ({ error: e }),
      );
      const held = await holding;
      const killed = await db.sql<{ ok: boolean }>(
        "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'pawledger' AND datname = $1 AND state LIKE 'idle in transaction%'",
        [db.name],
      );
      expect(killed.filter((r) => r.ok)).toHaveLength(1);
      await waitFor('the server to close the terminated connection', () => held.serverClosed, 5000);
      held.release();
      const outcome = await backup;
      await new Promise((r) => setTimeout(r, 100));
      expect(crashes.errors, 'uncaught exceptions (they kill the server)').toEqual([]);
      if ('error' in outcome) expect(outcome.error).toMatchObject({ code: 'UNAVAILABLE' });

      // The ledger carries on: saves resolve and the database ends level.
      for (let i = 1; i < 4; i++) await ledger.register(propertyInput(`x-${i}`));
      await waitFor(
        'the database to catch up',
        () => dbTier(ledger).state === 'ok' && dbTier(ledger).height === ledger.head.index,
        10_000,
      );
      await expectLevel(ledger);
    } finally {
      crashes.stop();
      await ledger.close();
    }
  });
});

describe('a database left behind the local store at startup', () => {
  it('keeps the local head (no rollback) and heals the database during open', async () => {
    const data = join(dir, `data-${seq++}`);
    const url = pgUrl(db.name, proxy.port);
    const first = await Ledger.open({ config: ledgerConfig(data, url) });
    for (let i = 0; i < 3; i++) await first.register(propertyInput(`before-${i}`));
    await proxy.cut('refuse');
    for (let i = 0; i < 4; i++) await first.register(propertyInput(`during-${i}`));
    expect(dbTier(first)).toMatchObject({ state: 'lagging', height: 3 });
    const head = first.head;
    const properties = first.properties();
    await first.close();
    expect(Number((await newestBackupRow(db))!.height)).toBe(3);

    await proxy.restore();
    const { logger, lines } = captureLogger();
    const second = await Ledger.open({ config: ledgerConfig(data, url), logger });
    try {
      expect(second.head).toEqual(head);
      expect(second.properties()).toEqual(properties);
      expect(
        lines.some((l) => /restored from local store/.test(l)),
        lines.join(''),
      ).toBe(true);
      expect(dbTier(second)).toMatchObject({ state: 'ok', height: head.index });
      await expectLevel(second);
    } finally {
      await second.close();
    }
  });
});
