/**
 * A database that hangs (a network partition, a stuck managed instance: connections accepted or held open and never
 * answered) must not stall saves. With real `pawledger serve` processes against a real PostgreSQL behind a TCP proxy
 * that can hang: during a 20 s hang, no save after the first detection waits longer than 1 s (lease off: they go on
 * locally), the database is caught up within 10 s of the proxy forwarding again, and status shows it lagging then
 * level; with the writer lease on (saves must be in the database), saves answer 503 with Retry-After within the
 * deadline instead of hanging.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTempDatabase, pgUrl, tempDir, TEST_KEY, waitFor, type TempDatabase } from '../support/pg.js';
import { startServe, type ServeProcess } from '../support/serve-process.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const TOKEN = 'db-hang-admin-token-0123456789';
const HANG_MS = 20_000;

let root: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('db-hang'));
});
afterAll(async () => {
  await cleanup();
});

interface Save {
  startedAt: number;
  ms: number;
  status: number;
  retryAfter: string | null;
}

async function save(s: ServeProcess, id: string): Promise<Save> {
  const startedAt = performance.now();
  const res = await fetch(`${s.url}/properties`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ id, name: `House ${id}`, address: `${id} Partition Street`, owner: 'ann' }),
  });
  await res.arrayBuffer();
  return {
    startedAt,
    ms: performance.now() - startedAt,
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
  };
}

async function dbTier(s: ServeProcess): Promise<{ height: number; state: string; head: number }> {
  const st = (await (await fetch(`${s.url}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
    height: number;
    tiers: { name: string; state: string; height: number }[];
  };
  const t = st.tiers.find((x) => x.name === 'db')!;
  return { height: t.height, state: t.state, head: st.height };
}

/** saveFor saves one property after another for `ms`, two clients side by side, and returns every save. */
async function saveFor(s: ServeProcess, prefix: string, ms: number): Promise<Save[]> {
  const out: Save[] = [];
  const end = performance.now() + ms;
  let n = 0;
  await Promise.all(
    [0, 1].map(async (c) => {
      while (performance.now() < end) {
        out.push(await save(s, `${prefix}-${c}-${n++}`));
        await new Promise((r) => setTimeout(r, 50));
      }
    }),
  );
  return out.sort((a, b) => a.startedAt - b.startedAt);
}

describe('a database that hangs', () => {
  let db: TempDatabase;
  let proxy: TcpProxy;
  beforeAll(async () => {
    db = await createTempDatabase();
    proxy = await startTcpProxy(5432);
  });
  afterAll(async () => {
    await proxy?.close();
    await db?.drop();
  });

  it('does not stall saves (lease off), and is caught up within 10 s once it answers again', async () => {
    const env = {
      LEDGER_ENCRYPTION_KEY: TEST_KEY,
      ADMIN_TOKEN: TOKEN,
      LEDGER_DATA_DIR: join(root, 'off'),
      LEDGER_LEASE: 'off',
      DATABASE_URL: pgUrl(db.name, proxy.port),
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
    };
    const s = await startServe(root, env);
    try {
      for (let i = 0; i < 5; i++) expect((await save(s, `before-${i}`)).status).toBe(201);
      expect(await dbTier(s)).toMatchObject({ state: 'ok' });

      proxy.hang();
      const hangAt = performance.now();
      const during = await saveFor(s, 'during', HANG_MS);
      expect(during.every((x) => x.status === 201)).toBe(true);
      // The first saves may wait for the hang to be noticed (the deadline); once one has, none waits long.
      const detected = during.findIndex((x) => x.ms > 900);
      const after = during
        .slice(detected + 1)
        .filter((x) => x.startedAt > during[Math.max(detected, 0)]!.startedAt + during[Math.max(detected, 0)]!.ms);
      const slow = after
        .filter((x) => x.ms > 1000)
        .map((x) => `${Math.round(x.ms)} ms at +${Math.round(x.startedAt - hangAt)} ms`);
      console.info(
        `[hang, lease off] ${during.length} saves in ${HANG_MS / 1000} s; first detection: ${detected < 0 ? 'none slow' : `${Math.round(during[detected]!.ms)} ms`}; slowest after it: ${Math.round(Math.max(0, ...after.map((x) => x.ms)))} ms`,
      );
      expect(slow, 'saves that waited on the hung database after it was noticed').toEqual([]);
      expect((await dbTier(s)).state).toBe('lagging');

      // status shows how far the database is behind, and that lag only shrinks once it answers again.
      const hungTier = await dbTier(s);
      const lags: number[] = [hungTier.head - hungTier.height];
      expect(lags[0], 'the lag status shows while the database hangs').toBeGreaterThan(0);
      await proxy.restore();
      const back = performance.now();
      const ms = await waitFor(
        'the database level with the head',
        async () => {
          const t = await dbTier(s);
          lags.push(t.head - t.height);
          return t.state === 'ok' && t.height === t.head;
        },
        10_000,
      );
      expect(lags.at(-1)).toBe(0);
      for (let i = 1; i < lags.length; i++)
        expect(lags[i], `lag sample ${i} of ${lags.join(', ')}`).toBeLessThanOrEqual(lags[i - 1]!);
      console.info(
        `[hang, lease off] caught up ${Math.round(ms)} ms after the database answered again (${Math.round(performance.now() - back)} ms)`,
      );
    } finally {
      expect(await s.stop()).toBe(0);
    }
  }, 90_000);

  it('makes saves answer 503 with Retry-After within the deadline when the lease is on', async () => {
    const env = {
      LEDGER_ENCRYPTION_KEY: TEST_KEY,
      ADMIN_TOKEN: TOKEN,
      LEDGER_DATA_DIR: join(root, 'on'),
      LEDGER_LEASE: 'on',
      DATABASE_URL: pgUrl(db.name, proxy.port),
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      LEDGER_LEASE_TTL_MS: '3000',
    };
    await proxy.restore();
    const s = await startServe(root, env);
    try {
      await waitFor(
        'this instance to write',
        async () => (await save(s, `lease-${Math.random()}`)).status === 201,
        15_000,
      );
      proxy.hang();
      const during = await saveFor(s, 'lease-during', 8_000);
      // The bounded deadline (LEDGER_TIER_TIMEOUT_MS, 2 s) plus room for a loaded machine: never the 5 s connect
      // timeout or more that a hang used to cost.
      const deadline = 2000 + 1500;
      const over = during.filter((x) => x.ms > deadline).map((x) => `${x.status} in ${Math.round(x.ms)} ms`);
      console.info(
        `[hang, lease on] ${during.length} saves: ${during.filter((x) => x.status === 503).length} answered 503; slowest ${Math.round(Math.max(...during.map((x) => x.ms)))} ms`,
      );
      expect(over, 'saves that waited past the deadline').toEqual([]);
      const refused = during.filter((x) => x.status === 503);
      expect(refused.length).toBeGreaterThan(0);
      expect(refused.every((x) => x.retryAfter !== null)).toBe(true);
      expect(during.every((x) => x.status === 201 || x.status === 503)).toBe(true);
    } finally {
      await proxy.restore();
      expect(await s.stop()).toBe(0);
    }
  }, 90_000);
});
