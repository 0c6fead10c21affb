/**
 * What an operator sees when the database is misconfigured or broken: a server that refuses connections, tables
 * dropped under a running ledger, and a DATABASE_URL whose password must never reach a log line or an error.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { describeError } from '../../src/errors.js';
import { Ledger, type TierStatus } from '../../src/service/ledger.js';
import { openTiers } from '../../src/tiers/registry.js';
import { silentLogger } from '../../src/log.js';
import {
  captureLogger,
  ledgerConfig,
  newestBackupRow,
  pgUrl,
  propertyInput,
  waitFor,
  databasePerTest,
} from '../support/pg.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

const tdb = databasePerTest('db-config');

/** freePort is a local port nothing listens on. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function dbTier(ledger: Ledger): TierStatus {
  return ledger.status().tiers.find((t) => t.name === 'db')!;
}

function newDataDir(): string {
  return tdb.dataDir();
}

/** seeded is a data folder holding a ledger with `saves` saves, replicated to the test database, closed. */
async function seeded(saves: number): Promise<{ data: string; ledgerId: string; headHash: string }> {
  const data = newDataDir();
  const ledger = await Ledger.open({ config: ledgerConfig(data, tdb.db.url) });
  for (let i = 0; i < saves; i++) await ledger.register(propertyInput(`seed-${i}`, i));
  const result = { data, ledgerId: ledger.ledgerId, headHash: ledger.head.hash };
  await ledger.close();
  return result;
}

/** runMigrate does what `pawledger migrate` does: open the database tier, apply migrations, close. */
async function runMigrate(url: string): Promise<void> {
  const opened = openTiers(ledgerConfig(newDataDir(), url), { sealer: null, log: silentLogger(), only: 'db' });
  try {
    await opened.entries[0]!.tier.migrate!();
  } finally {
    await opened.close();
  }
}

async function dropTables(): Promise<void> {
  await tdb.db.sql(
    'DROP TABLE blockchain_backups, ledger_blocks, ledger_branches, ledgers, pawledger_migrations CASCADE',
  );
}

async function failure(p: Promise<unknown>): Promise<{ code?: string; text: string }> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'expected the call to fail').not.toBeNull();
  return { code: (err as { code?: string }).code, text: describeError(err) };
}

describe('a database that refuses connections', () => {
  it('lets the ledger open from its local store, lagging, with status saying the database is unreachable', async () => {
    const { data, headHash } = await seeded(3);
    const url = pgUrl(tdb.db.name, await freePort());
    const start = performance.now();
    const ledger = await Ledger.open({ config: ledgerConfig(data, url) });
    try {
      expect(performance.now() - start).toBeLessThan(3000);
      expect(ledger.head.hash).toBe(headHash);
      expect(ledger.properties()).toHaveLength(3);
      const tier = dbTier(ledger);
      expect(tier).toMatchObject({ state: 'lagging' });
      expect(tier.detail).toMatch(/unreachable/i);
      expect(tier.detail).toContain('ECONNREFUSED');
      const saveStart = performance.now();
      await ledger.register(propertyInput('offline'));
      expect(performance.now() - saveStart).toBeLessThan(500);
      expect(ledger.status().tiers.find((t) => t.name === 'local')).toMatchObject({ state: 'ok', height: 4 });
      expect(await failure(ledger.backupToDatabase({ name: 'while down' }))).toMatchObject({
        code: 'UNAVAILABLE',
        text: expect.stringMatching(/unreachable/i),
      });
    } finally {
      await ledger.close();
    }
  });

  it('with an empty local store, refuses to start rather than begin a new ledger beside the one in the database', async () => {
    const { ledgerId } = await seeded(2);
    const outcome = await Ledger.open({
      config: ledgerConfig(newDataDir(), pgUrl(tdb.db.name, await freePort())),
    }).then(
      (ledger) => ({ ledger }),
      (error: unknown) => ({ error }),
    );
    if ('ledger' in outcome) {
      const started = outcome.ledger.ledgerId;
      await outcome.ledger.close();
      expect.fail(
        `started a new empty ledger ${started.slice(0, 16)} while the database holding ledger ${ledgerId.slice(0, 16)} was unreachable`,
      );
    }
    expect(outcome.error).toMatchObject({ code: 'UNAVAILABLE' });
    expect(describeError(outcome.error)).toMatch(/unreachable/i);
  });
});

describe('tables dropped under a running ledger', () => {
  it('saves continue; status and every database call say to run `pawledger migrate` (ConfigError)', async () => {
    const ledger = await Ledger.open({ config: ledgerConfig(newDataDir(), tdb.db.url) });
    try {
      await ledger.register(propertyInput('before-drop'));
      await dropTables();
      await ledger.register(propertyInput('after-drop'));
      expect(ledger.properties()).toHaveLength(2);
      const tier = dbTier(ledger);
      expect(tier.state).toBe('lagging');
      expect(tier.detail).toMatch(/pawledger migrate/);
      expect(tier.detail).not.toMatch(/unreachable/i);

      for (const [what, call] of [
        ['listBackups', () => ledger.listBackups()],
        ['verifyBackup', () => ledger.verifyBackup()],
        ['restoreFromDatabase', () => ledger.restoreFromDatabase({ dryRun: true })],
        ['backupToDatabase', () => ledger.backupToDatabase({ name: 'after drop' })],
      ] as const) {
        const f = await failure(call());
        expect(f, what).toMatchObject({ code: 'CONFIG' });
        expect(f.text, what).toMatch(/pawledger migrate/);
        expect(f.text, what).not.toMatch(/unreachable/i);
      }
    } finally {
      await ledger.close();
    }
  });

  it('once `pawledger migrate` has run, the running ledger catches the database up without a restart', async () => {
    const ledger = await Ledger.open({ config: ledgerConfig(newDataDir(), tdb.db.url) });
    try {
      await ledger.register(propertyInput('before-drop'));
      await dropTables();
      await ledger.register(propertyInput('after-drop'));
      expect(dbTier(ledger).state).toBe('lagging');

      await runMigrate(tdb.db.url);
      await ledger.register(propertyInput('after-migrate'));
      await waitFor(
        'the database to catch up',
        () => dbTier(ledger).state === 'ok' && dbTier(ledger).height === ledger.head.index,
        6000,
      ).catch((err: Error) => expect.fail(`${err.message}; status still says: ${dbTier(ledger).detail}`));
      expect(await newestBackupRow(tdb.db)).toMatchObject({ head_hash: ledger.head.hash });
      expect(await ledger.verifyBackup()).toMatchObject({
        ok: true,
        headHash: ledger.head.hash,
        totalBlocks: ledger.head.index + 1,
      });
    } finally {
      await ledger.close();
    }
  });
});

describe('a DATABASE_URL with a password', () => {
  const PASSWORD = 'Pw-9f3Kq/x@y';
  const forms = [PASSWORD, encodeURIComponent(PASSWORD), 'Pw-9f3Kq'];

  it('never shows the password in a log line, an error or status, whatever goes wrong', async () => {
    const { logger, lines } = captureLogger();
    const seen: string[] = [];
    const note = (what: string, text: unknown) =>
      void seen.push(`${what}: ${typeof text === 'string' ? text : JSON.stringify(text)}`);
    const attempt = async (what: string, p: Promise<unknown>) => {
      const err = await p.then(
        () => null,
        (e: unknown) => e,
      );
      if (err) {
        const e = err as Error & { hint?: string; cause?: unknown };
        note(
          what,
          `${e.message} | ${e.hint ?? ''} | ${describeError(e)} | ${e.cause instanceof Error ? e.cause.message : ''}`,
        );
      }
      return err;
    };

    // Working database (trust auth ignores the password).
    const data = newDataDir();
    const ok = await Ledger.open({ config: ledgerConfig(data, pgUrl(tdb.db.name, 5432, PASSWORD)), logger });
    await ok.register(propertyInput('pw-0'));
    await ok.backupToDatabase({ name: 'with password' });
    note('status ok', ok.status());
    // Tables dropped: ConfigError from the server.
    await dropTables();
    await ok.register(propertyInput('pw-1'));
    note('status dropped', ok.status());
    await attempt('listBackups dropped', ok.listBackups());
    await attempt('backup dropped', ok.backupToDatabase({ name: 'x' }));
    await ok.close();
    await runMigrate(tdb.db.url);

    // Refused.
    const refused = await Ledger.open({
      config: ledgerConfig(data, pgUrl(tdb.db.name, await freePort(), PASSWORD)),
      logger,
    });
    await refused.register(propertyInput('pw-2'));
    note('status refused', refused.status());
    await attempt('backup refused', refused.backupToDatabase({ name: 'x' }));
    await refused.close();

    // Timed out (a blackhole).
    const proxy = await startTcpProxy(5432);
    try {
      await proxy.cut('blackhole');
      const hung = await Ledger.open({ config: ledgerConfig(data, pgUrl(tdb.db.name, proxy.port, PASSWORD)), logger });
      await hung.register(propertyInput('pw-3'));
      note('status timeout', hung.status());
      await hung.close();
    } finally {
      await proxy.close();
    }

    // A database that does not exist.
    const missing = await Ledger.open({
      config: ledgerConfig(data, pgUrl(`${tdb.db.name}_missing`, 5432, PASSWORD)),
      logger,
    });
    note('status missing database', missing.status());
    await attempt('list missing database', missing.listBackups());
    await missing.close();

    // A URL that does not parse, and an empty local store with the database refusing.
    await attempt(
      'bad port',
      Ledger.open({
        config: ledgerConfig(newDataDir(), `postgresql://postgres:${encodeURIComponent(PASSWORD)}@127.0.0.1:99999/x`),
        logger,
      }),
    );
    const fresh = Ledger.open({
      config: ledgerConfig(newDataDir(), pgUrl(tdb.db.name, await freePort(), PASSWORD)),
      logger,
    });
    if (!(await attempt('empty store, refused', fresh))) await (await fresh).close();

    const logs = lines.join('');
    // Not vacuous: the database is named in the logs and in status, with the password masked.
    expect(logs).toMatch(/postgres(ql)?:\/\/postgres:\*+@127\.0\.0\.1/);
    expect(seen.join('\n')).toMatch(/ECONNREFUSED/);
    expect(seen.join('\n')).toMatch(/pawledger migrate/);
    expect(seen.join('\n')).toMatch(/does not exist/);
    for (const form of forms) {
      expect(logs.includes(form), `log lines contain ${form}`).toBe(false);
      expect(
        seen.filter((s) => s.includes(form)),
        `errors or status containing ${form}`,
      ).toEqual([]);
    }
  });
});
