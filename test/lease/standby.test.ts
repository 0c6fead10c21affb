/**
 * Two ledgers on one real PostgreSQL database with LEDGER_LEASE=on, as two instances of a deploy: the first takes the
 * lease and writes; the second restores, serves reads, follows the writer's blocks and refuses writes; when the
 * writer closes (releasing the lease) the standby takes over within seconds, caught up first. With the lease on, a
 * save is acknowledged only once the database holds it.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NotWriterError, UnavailableError } from '../../src/errors.js';
import { Ledger } from '../../src/service/ledger.js';
import { PostgresTier } from '../../src/tiers/postgres.js';
import { captureLogger, databasePerTest, ledgerConfig, pgUrl, propertyInput, waitFor } from '../support/pg.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const t = databasePerTest('lease-standby');
const LEASE = { LEDGER_LEASE: 'on', LEDGER_FOLLOW_MS: '100', LEDGER_LEASE_TTL_MS: '2000', IPFS_PROVIDER: 'off' };
const open: Ledger[] = [];
let proxy: TcpProxy | null = null;

afterEach(async () => {
  for (const l of open.splice(0)) await l.close().catch(() => {});
  await proxy?.close();
  proxy = null;
});

async function instance(url = t.db.url, extra: NodeJS.ProcessEnv = {}, dataDir = t.dataDir()) {
  const { logger, lines } = captureLogger();
  const ledger = await Ledger.open({ config: ledgerConfig(dataDir, url, { ...LEASE, ...extra }), logger });
  open.push(ledger);
  return { ledger, lines, log: () => lines.join('\n'), dataDir };
}

describe('LEDGER_LEASE=on: one writer, standbys that follow and take over', () => {
  it('keeps the second instance a read-only follower until the first releases the lease, then hands over', async () => {
    const a = await instance();
    await a.ledger.register(propertyInput('a1'));
    expect(a.ledger.status().writer).toMatchObject({
      mode: 'lease',
      role: 'writer',
      holder: a.ledger.status().writer.instance,
    });

    const b = await instance();
    expect(b.ledger.status().writer).toMatchObject({
      mode: 'lease',
      role: 'standby',
      holder: a.ledger.status().writer.instance,
    });
    expect(b.ledger.properties().map((p) => p.id)).toEqual(['a1']);
    expect(b.log()).toContain(`Writer lease held by ${a.ledger.status().writer.instance}`);

    // Writes on the standby are refused and name the holder; nothing reaches the database.
    const refused = b.ledger.register(propertyInput('b1'));
    await expect(refused).rejects.toBeInstanceOf(NotWriterError);
    await expect(refused).rejects.toThrow(/standby: .* holds the writer lease since/);
    await expect(b.ledger.backupToDatabase({ name: 'from standby' })).rejects.toBeInstanceOf(NotWriterError);

    // The standby follows the writer's saves.
    for (let i = 2; i <= 5; i++) await a.ledger.register(propertyInput(`a${i}`));
    await waitFor('the standby to follow', () => b.ledger.head.index === a.ledger.head.index);
    expect(b.ledger.head.hash).toBe(a.ledger.head.hash);
    expect((await b.ledger.verify()).ok).toBe(true);
    expect(b.log()).toMatch(/Followed the writer: \d+ new block\(s\) from the database/);

    // The writer closes (SIGTERM does this): it releases the lease and the standby takes over within seconds.
    await a.ledger.close();
    open.splice(open.indexOf(a.ledger), 1);
    await waitFor('the standby to take over within seconds', () => b.ledger.status().writer.role === 'writer', 5000);
    expect(a.log()).toContain('Writer lease released');
    expect(b.log()).toContain('Writer lease taken over');
    const saved = await b.ledger.register(propertyInput('b1'));
    expect(saved.block.index).toBe(6);

    // One chain, one branch: every save of both instances exactly once.
    const ids = await t.db.sql<{ n: string }>('SELECT count(DISTINCT branch) AS n FROM ledger_blocks');
    expect(ids[0]!.n).toBe('1');
    expect(b.ledger.properties().map((p) => p.id)).toEqual(['a1', 'a2', 'a3', 'a4', 'a5', 'b1']);
    const newest = await b.ledger.listBackups({ limit: 1 });
    expect(newest[0]).toMatchObject({ height: 6, headHash: saved.block.hash });
  }, 30_000);

  it("takes over once the holder's lease expires, and the old holder's late save is refused by the database", async () => {
    // A renews only every 20 s: expiring its row by the database's clock stands for A paused past its lease.
    const a = await instance(t.db.url, { LEDGER_LEASE_TTL_MS: '60000' });
    await a.ledger.register(propertyInput('a1'));
    const b = await instance();
    await t.db.sql("UPDATE pawledger_lease SET expires_at = now() - interval '1 second'");
    await waitFor('the standby to take over an expired lease', () => b.ledger.status().writer.role === 'writer', 5000);
    await b.ledger.register(propertyInput('b1'));
    // A's next save is refused by the database (its token is stale) and it becomes a standby.
    await expect(a.ledger.register(propertyInput('a2'))).rejects.toBeInstanceOf(NotWriterError);
    expect(a.ledger.status().writer.role).toBe('standby');
    expect(a.log()).toContain('Writer lease lost to another instance');
    await waitFor('the old writer to follow the new one', () => a.ledger.head.hash === b.ledger.head.hash, 5000);
    expect(a.ledger.properties().map((p) => p.id)).toEqual(['a1', 'b1']);
    expect((await t.db.sql('SELECT 1 FROM ledger_blocks')).length).toBe(3);
  }, 30_000);

  it('acknowledges a save only once the database holds it: a database outage answers UNAVAILABLE and loses nothing', async () => {
    proxy = await startTcpProxy(5432);
    const a = await instance(pgUrl(t.db.name, proxy.port));
    await a.ledger.register(propertyInput('a1'));
    await proxy.cut('refuse');
    await expect(a.ledger.register(propertyInput('a2'))).rejects.toBeInstanceOf(UnavailableError);
    // Nothing was saved locally either: the running chain still ends at a1, and reads keep working.
    expect(a.ledger.head.index).toBe(1);
    expect(a.ledger.properties().map((p) => p.id)).toEqual(['a1']);
    await proxy.restore();
    const saved = await a.ledger.register(propertyInput('a2'));
    expect(saved.block.index).toBe(2);
    const rows = await t.db.sql<{ height: string }>('SELECT height FROM ledger_blocks ORDER BY height');
    expect(rows.map((r) => Number(r.height))).toEqual([0, 1, 2]);
  }, 30_000);

  it('answers UNAVAILABLE within the bounded deadline while the database hangs, and loses nothing once it answers', async () => {
    proxy = await startTcpProxy(5432);
    const deadlineMs = 1000;
    const a = await instance(pgUrl(t.db.name, proxy.port), { LEDGER_TIER_TIMEOUT_MS: String(deadlineMs) });
    await a.ledger.register(propertyInput('a1'));
    // The database stops answering on its open connections and accepts new ones it never answers: not a refusal the
    // client notices at once, only the deadline finds it.
    proxy.hang();
    for (const id of ['a2', 'a3']) {
      const started = performance.now();
      await expect(a.ledger.register(propertyInput(id))).rejects.toBeInstanceOf(UnavailableError);
      // The deadline plus room for a loaded machine: never the connect timeout (PG_TIMEOUT_MS) or a hang for ever.
      expect(performance.now() - started, `the save of ${id} waited`).toBeLessThan(deadlineMs + 1500);
    }
    // Nothing refused was kept locally either; reads go on.
    expect(a.ledger.head.index).toBe(1);
    expect(a.ledger.properties().map((p) => p.id)).toEqual(['a1']);
    await proxy.restore();
    await waitFor(
      'a save to be acknowledged again once the database answers',
      async () =>
        a.ledger.register(propertyInput('a2')).then(
          () => true,
          (err) => {
            if (!(err instanceof UnavailableError)) throw err;
            return false;
          },
        ),
      15_000,
    );
    await a.ledger.register(propertyInput('a3'));
    expect(a.ledger.properties().map((p) => p.id)).toEqual(['a1', 'a2', 'a3']);
    const rows = await t.db.sql<{ height: string }>('SELECT height FROM ledger_blocks ORDER BY height');
    expect(rows.map((r) => Number(r.height))).toEqual([0, 1, 2, 3]);
    expect((await a.ledger.verify()).ok).toBe(true);
  }, 30_000);

  it("follows a rollback the writer restored, and a standby restarting on the old branch takes the writer's", async () => {
    const a = await instance();
    await a.ledger.register(propertyInput('a1'));
    const keep = await a.ledger.backupToDatabase({ name: 'before a2' });
    await a.ledger.register(propertyInput('a2'));
    const b = await instance();
    const c = await instance();
    await waitFor('the standbys to follow', () => b.ledger.head.index === 2 && c.ledger.head.index === 2);
    await c.ledger.close();
    open.splice(open.indexOf(c.ledger), 1);

    // The writer rolls back to the backup before a2, and saves on a new branch.
    await a.ledger.restoreFromDatabase({ backupId: keep.id });
    await a.ledger.register(propertyInput('a3'));
    await waitFor('the running standby to take the new branch', () => b.ledger.head.hash === a.ledger.head.hash, 5000);
    expect(b.ledger.properties().map((p) => p.id)).toEqual(['a1', 'a3']);
    expect(b.log()).toContain('does not extend the local chain');

    // The stopped standby restarts on its old branch (a2): it writes nothing, and takes the writer's chain.
    const c2 = await instance(t.db.url, {}, c.dataDir);
    expect(c2.ledger.status().writer.role).toBe('standby');
    expect(c2.ledger.head.hash).toBe(a.ledger.head.hash);
    expect(c2.log()).toContain('already in the database as a branch');
    expect((await t.db.sql("SELECT 1 FROM blockchain_backups WHERE name LIKE 'Fork:%'")).length).toBe(0);
  }, 30_000);

  it('follows a rollback to an earlier point at once, and taking over does not undo it', async () => {
    const a = await instance();
    await a.ledger.register(propertyInput('a1'));
    const keep = await a.ledger.backupToDatabase({ name: 'before a2' });
    await a.ledger.register(propertyInput('a2'));
    const b = await instance();
    await waitFor('the standby to follow', () => b.ledger.head.index === 2);
    // The writer rolls back to block 1 and stops without saving again: the standby must not keep serving a2.
    await a.ledger.restoreFromDatabase({ backupId: keep.id });
    await waitFor('the standby to follow the rollback', () => b.ledger.head.index === 1, 5000);
    await a.ledger.close();
    open.splice(open.indexOf(a.ledger), 1);
    await waitFor('the standby to take over', () => b.ledger.status().writer.role === 'writer', 5000);
    expect(b.ledger.properties().map((p) => p.id)).toEqual(['a1']);
    const newest = (await b.ledger.listBackups({ limit: 1 }))[0]!;
    expect(newest.height).toBe(1);
    expect((await b.ledger.register(propertyInput('b1'))).block.index).toBe(2);
  }, 30_000);

  it('acknowledges a save whose commit reply was lost once the database confirms it holds it, and never saves it twice', async () => {
    const a = await instance();
    await a.ledger.register(propertyInput('a1'));
    // The statement commits, then the reply is lost (as when the connection drops just after COMMIT).
    const original = PostgresTier.prototype.append;
    let lose = 1;
    const spy = vi.spyOn(PostgresTier.prototype, 'append').mockImplementation(async function (
      this: PostgresTier,
      ...args
    ) {
      const result = await original.apply(this, args);
      if (lose-- > 0)
        throw new UnavailableError('PostgreSQL at test is unreachable: Connection terminated unexpectedly');
      return result;
    });
    try {
      const saved = await a.ledger.register(propertyInput('a2'));
      expect(saved.block.index).toBe(2);
    } finally {
      spy.mockRestore();
    }
    expect(a.lines.join('\n')).toContain('reply to block 2 was lost, but it holds the block');
    await a.ledger.register(propertyInput('a3'));
    const ids = await t.db.sql<{ n: string }>('SELECT count(*) AS n FROM ledger_blocks');
    expect(ids[0]!.n).toBe('4');
    expect(a.ledger.properties().map((p) => p.id)).toEqual(['a1', 'a2', 'a3']);
    expect((await a.ledger.verify()).ok).toBe(true);
  }, 30_000);
});
