/**
 * Regression tests for the bugs the crash campaign (campaign.test.ts, `npm run crash-campaign`) found, each a
 * deterministic reproducer that failed before its fix. Each scenario runs in beforeAll, where any failure fails the
 * file; each `it` holds the expectation the bug broke. The bugs, as they were:
 *
 *   1. STALE IPFS HISTORY: an IPFS upload that completes while the database is unreachable is remembered in the
 *      pointer files but not in ipfs_backups, and nothing writes it there later. The IPFS tier's listBackups believed
 *      the database's history first, so `verify --from ipfs`, `backups list --tier ipfs` and the startup restore all see
 *      an older manifest than /status (and the pointer files) do. On a wiped disk that lost acknowledged saves.
 *      Fixed: PackTier heals a list that lacks the newest manifest (walking `previous` back to what it lists).
 *   2. IPFS NEVER RETRIED: after an upload fails, IpfsQueue.#drain calls notify(delay) while its own drain is still
 *      the running one (#running is set), so notify only sets #again and no timer is started; nothing looks at #again
 *      afterwards, and IPFS stayed lagging until the next save called notify(). Fixed by the one Replicator, whose
 *      retry timer does not depend on who is running.
 *   3. TERMINATED BACKEND CRASHES SERVE: SqlClient.transaction() (src/db/postgres.ts) attaches its 'error' listener
 *      only after `await pool.connect()`. pg-pool removes its idle listener when it hands the client out, so a FATAL
 *      that arrives in the same read as a new connection's first ReadyForQuery (pg_terminate_backend landing just
 *      after authentication, a server shutting down) is emitted on a client with no 'error' listener: the process
 *      died of an unhandled 'error' event. Fixed: every pooled client gets an 'error' listener when it connects.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, tempDir } from '../support/durability.js';
import { createTempDatabase, pgUrl, TEST_KEY, waitFor } from '../support/pg.js';
import { runCliAsync, startServe, type ServeProcess } from '../support/serve-process.js';
import { startPinataStandin } from '../support/standins/pinata.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

let root: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('campaign-bugs'));
});
afterAll(async () => {
  await cleanup?.();
});

describe('bugs the crash campaign found stay fixed', () => {
  const TOKEN = 'campaign-repro-admin-token-0123456789';
  const save = async (s: ServeProcess, id: string) => {
    const res = await fetch(`${s.url}/properties`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id, name: `Property ${id}`, address: '1 Repro Road', owner: 'ann' }),
    });
    expect(res.status).toBe(201);
  };
  type Status = { height: number; headHash: string; tiers: { name: string; state: string; height: number }[] };
  const status = async (s: ServeProcess) => (await (await fetch(`${s.url}/status`)).json()) as Status;
  const ipfsLevel = async (s: ServeProcess) => {
    const st = await status(s);
    const t = st.tiers.find((x) => x.name === 'ipfs');
    return t?.state === 'ok' && t.height === st.height;
  };

  describe('regression 1: stale IPFS history in the database', () => {
    let head: Status;
    let verifyAfterRestart: { code: number | null; stdout: string; stderr: string };
    let wiped: { head: Status; status: Status; properties: unknown[] };
    const cleanups: (() => Promise<unknown>)[] = [];
    afterAll(async () => {
      for (const c of cleanups.reverse()) await c().catch(() => {});
    });

    // Three saves with everything up, then five more (each answered 201) with the database cut while IPFS (embedded)
    // backs them all up, then a SIGKILL while the database is still cut; the link is restored afterwards.
    async function cutWhileIpfsUploads(name: string) {
      const cwd = join(root, name);
      await mkdir(cwd, { recursive: true });
      const db = await createTempDatabase();
      cleanups.push(() => db.drop());
      const proxy = await startTcpProxy(5432);
      cleanups.push(() => proxy.close());
      const env = {
        LEDGER_ENCRYPTION_KEY: TEST_KEY,
        ADMIN_TOKEN: TOKEN,
        LEDGER_DATA_DIR: join(cwd, 'blocks'),
        IPFS_PROVIDER: 'embedded',
        IPFS_EMBEDDED_DIR: join(cwd, 'ipfs'),
        LEDGER_RETRY_MS: '100',
        PG_TIMEOUT_MS: '1000',
        IPFS_DEBOUNCE_MS: '20',
        DATABASE_URL: pgUrl(db.name, proxy.port),
      };
      const s = await startServe(cwd, env);
      cleanups.push(() => s.stop('SIGKILL'));
      for (let i = 0; i < 3; i++) await save(s, `p${i}`);
      await waitFor('IPFS to be level', () => ipfsLevel(s), 10_000);
      await proxy.cut('refuse');
      for (let i = 3; i < 8; i++) await save(s, `p${i}`);
      await waitFor('IPFS to back up the saves made while the database is cut', () => ipfsLevel(s), 10_000);
      const st = await status(s);
      expect(st.height).toBe(8);
      expect(st.tiers.find((t) => t.name === 'db')).toMatchObject({ state: 'lagging', height: 3 });
      // The embedded blockstore's own pointer file names the newest manifest, block 8.
      const pointer = JSON.parse(await readFile(join(cwd, 'ipfs', 'ipfs-latest.json'), 'utf8')) as Record<
        string,
        { height: number }
      >;
      expect(Object.values(pointer).map((p) => p.height)).toEqual([8]);
      await s.stop('SIGKILL');
      await proxy.restore();
      return { cwd, env, db, head: st };
    }

    beforeAll(async () => {
      // On the same disk: the restart levels every tier by /status; then the CLI verifies IPFS's newest backup.
      const a = await cutWhileIpfsUploads('stale-history-same-disk');
      head = a.head;
      const s = await startServe(a.cwd, a.env);
      cleanups.push(() => s.stop('SIGKILL'));
      await waitFor(
        'every tier level after the restart',
        async () => {
          const st = await status(s);
          return (
            st.height === head.height &&
            st.tiers.filter((t) => t.state !== 'off').every((t) => t.state === 'ok' && t.height === st.height)
          );
        },
        10_000,
      );
      expect(await s.stop()).toBe(0);
      verifyAfterRestart = await runCliAsync(a.cwd, { ...a.env, DATABASE_URL: a.db.url, LOG_LEVEL: 'warn' }, [
        'verify',
        '--from',
        'ipfs',
        '--json',
      ]);
      expect(verifyAfterRestart.code, verifyAfterRestart.stderr).toBe(0);

      // A deploy wipes the disk: the database holds blocks 0-3 (the instance died before catching it up), IPFS holds
      // all eight saves and the embedded blockstore's pointer file names them.
      const b = await cutWhileIpfsUploads('stale-history-wiped-disk');
      await rm(join(b.cwd, 'blocks'), { recursive: true, force: true });
      const w = await startServe(b.cwd, b.env);
      cleanups.push(() => w.stop('SIGKILL'));
      wiped = {
        head: b.head,
        status: await status(w),
        properties: ((await (await fetch(`${w.url}/properties`)).json()) as { properties: unknown[] }).properties,
      };
      await w.stop();
    }, 45_000);

    it('verify --from ipfs verifies the newest manifest, the head /status reports', () => {
      // Before the fix: {"ok":true,"totalBlocks":4,...}: the manifest of block 3, uploaded before the cut.
      expect(JSON.parse(verifyAfterRestart.stdout)).toMatchObject({
        ok: true,
        totalBlocks: head.height + 1,
        headHash: head.headHash,
      });
    });

    it('a restart on a wiped disk restores the eight acknowledged saves IPFS holds', () => {
      // Before the fix: "Ledger restored from database ...: 4 blocks, 3 properties"; IPFS is offered as its stale manifest.
      expect(wiped.properties).toHaveLength(8);
      expect(wiped.status).toMatchObject({ height: wiped.head.height, headHash: wiped.head.headHash });
    });
  });

  describe('regression 2: a failed IPFS upload is retried without another save', () => {
    let after: Status;
    let requests: { before: number; after: number };
    beforeAll(async () => {
      const cwd = join(root, 'ipfs-retry');
      await mkdir(cwd, { recursive: true });
      const jwt = 'eyJhbGciOiJIUzI1NiJ9.campaign-repro.jwt';
      const db = await createTempDatabase();
      const pinata = await startPinataStandin({ jwt });
      try {
        const s = await startServe(cwd, {
          LEDGER_ENCRYPTION_KEY: TEST_KEY,
          ADMIN_TOKEN: TOKEN,
          LEDGER_DATA_DIR: join(cwd, 'blocks'),
          DATABASE_URL: db.url,
          PINATA_JWT: jwt,
          PINATA_API_URL: pinata.url,
          PINATA_GATEWAY_URL: pinata.gatewayUrl,
          LEDGER_RETRY_MS: '100',
          IPFS_DEBOUNCE_MS: '20',
        });
        try {
          await waitFor('IPFS to hold the genesis block', () => ipfsLevel(s), 10_000);
          // Five failures: every attempt of one upload (the provider tries 5 times); the sixth request would succeed.
          pinata.failNext(500, 5);
          const before = pinata.requests.total;
          await save(s, 'p1');
          await waitFor(
            'the upload to fail',
            async () => pinata.requests.total >= before + 5 && !(await ipfsLevel(s)),
            10_000,
          );
          // LEDGER_RETRY_MS=100: a retry is due within about 150 ms; give it two seconds.
          await new Promise((r) => setTimeout(r, 2000));
          after = await status(s);
          requests = { before, after: pinata.requests.total };
        } finally {
          await s.stop();
        }
      } finally {
        await pinata.close();
        await db.drop();
      }
    }, 30_000);

    it('IPFS reaches the head again, by a retry', () => {
      // Before the fix: ipfs lagging at block 0, and exactly the 5 failed requests reached Pinata: nothing was retried.
      expect(requests.after - requests.before).toBeGreaterThan(5);
      expect(after.tiers.find((t) => t.name === 'ipfs')).toMatchObject({ state: 'ok', height: after.height });
    });
  });

  describe("regression 3: a backend terminated just after it connected must not crash a transaction's process", () => {
    const run = (how: 'query' | 'transaction') =>
      spawnSync(process.execPath, ['--import', 'tsx', 'test/support/pg-fatal-after-connect.ts', how], {
        cwd: REPO,
        encoding: 'utf8',
        timeout: 20_000,
      });
    let tx: ReturnType<typeof run>;
    beforeAll(() => {
      // The same FATAL through query() is a rejected query: the proxy does what it says, and that is the right outcome.
      const q = run('query');
      expect(q.status, q.stderr).toBe(0);
      expect(q.stdout).toMatch(/^rejected: .*terminating connection due to administrator command/);
      tx = run('transaction');
    }, 30_000);

    it('transaction() rejects, as query() does, instead of crashing the process', () => {
      // Before the fix: exit code 1, "Unhandled 'error' event ... terminating connection due to administrator command".
      expect(tx.status, tx.stderr).toBe(0);
      expect(tx.stdout).toMatch(/^rejected: /);
    });
  });
});
