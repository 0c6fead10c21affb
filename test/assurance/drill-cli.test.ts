/**
 * `pawledger drill` and POST /admin/drill: one service call behind both. Without a server the command opens the
 * ledger itself; beside a running serve it goes through the control channel. serve drills by itself on schedule.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { Ledger, type LedgerStatus } from '../../src/service/ledger.js';
import { createTempDatabase, TEST_KEY, tempDir, waitFor, type TempDatabase } from '../support/pg.js';
import { runCliAsync, startServe, type ServeProcess } from '../support/serve-process.js';

const TOKEN = 'drill-admin-token-0123456789';
let root = '';
let cleanup: () => Promise<void> = async () => {};
let db: TempDatabase | null = null;
let server: ServeProcess | null = null;

beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('drill-cli'));
});
let closeHook: () => Promise<unknown> = async () => {};
afterEach(async () => {
  await closeHook();
  await server?.stop('SIGKILL');
  server = null;
  await db?.drop();
  db = null;
});
afterAll(async () => cleanup());

// About fifteen CLI runs and a serve, one after another, each a Node start and a database connection: 20-30 s alone,
// over two minutes on a loaded 2-core machine.
describe('pawledger drill', { timeout: 300_000 }, () => {
  it('passes without a server, then through a running serve fails on a tampered block with exit 1; serve drills on schedule', async () => {
    db = await createTempDatabase();
    const env = {
      LEDGER_ENCRYPTION_KEY: TEST_KEY,
      DATABASE_URL: db.url,
      LEDGER_DATA_DIR: `${root}/data`,
      ADMIN_TOKEN: TOKEN,
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'warn',
      PG_TIMEOUT_MS: '3000',
    };
    const cli = (args: string[]) => runCliAsync(root, env, args);
    // Three saves, made in this process: what the drill reads is the same, and three CLI runs fewer.
    const seeded = await Ledger.open({ config: loadConfig(env) });
    for (const id of ['a', 'b', 'c']) await seeded.register({ id, name: 'N', address: 'A', owner: 'o' });
    await seeded.close();

    expect((await cli(['doctor'])).stdout).toMatch(/WARN\s+db drills: never drilled/);
    const offline = await cli(['drill', '--json']);
    expect(offline.code).toBe(0);
    expect(JSON.parse(offline.stdout)).toMatchObject({ ok: true, drills: [{ tier: 'db', outcome: 'ok', height: 3 }] });
    expect((await cli(['drill', '--tier', 'nope'])).code).toBe(2);

    // A webhook receiver for serve's alerts.
    const alerts: { status: string; kind: string; text: string }[] = [];
    const hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        alerts.push(JSON.parse(body) as never);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    closeHook = () => new Promise((r) => hook.close(r));
    const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;

    server = await startServe(
      root,
      {
        ...env,
        LOG_LEVEL: 'info',
        LEDGER_DRILL_FIRST: '200ms',
        LEDGER_ALERT_WEBHOOK_URL: hookUrl,
        LEDGER_ALERT_CHECK_INTERVAL: '200ms',
      },
      120_000,
    );
    const status = async () =>
      (await (
        await fetch(`${server!.url}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })
      ).json()) as LedgerStatus;
    // The scheduled drill runs soon after start, says so in the log, and shows in status.
    await waitFor('the scheduled drill', () => server!.lines.some((l) => l.includes('Restore drill of')), 60_000);
    expect((await status()).assurance.tiers.find((x) => x.tier === 'db')!.lastDrill).toMatchObject({ outcome: 'ok' });

    // The HTTP route: admin only, closed schema.
    const post = (body: unknown, auth = true) =>
      fetch(`${server!.url}/admin/drill`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${TOKEN}` } : {}) },
        body: JSON.stringify(body),
      });
    expect((await post({}, false)).status).toBe(401);
    expect((await post({ tier: 'nope' })).status).toBe(400);
    expect((await post({ tier: 'db', extra: 1 })).status).toBe(400);
    const ok = await post({ tier: 'db' });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ ok: true });

    await db.sql('UPDATE ledger_blocks SET sealed = set_byte(sealed, 7, get_byte(sealed, 7) # 1) WHERE height = 2');
    const online = await cli(['drill', '--tier', 'db']);
    expect(online.code).toBe(1);
    expect(online.stdout).toMatch(/^FAILED: db: backup \S+ \(block 3\): .*\bblock 2\b/);
    expect((await status()).assurance.tiers.find((x) => x.tier === 'db')!.lastDrill).toMatchObject({
      outcome: 'failed',
    });

    // status and doctor beside the server read the same verdict from the database.
    const json = JSON.parse((await cli(['status', '--json'])).stdout) as LedgerStatus;
    expect(json.assurance.tiers).toMatchObject([
      { tier: 'db', lagBlocks: 0, stale: false, lastDrill: { outcome: 'failed' } },
    ]);
    expect((await cli(['status'])).stdout).toMatch(
      /assurance db: +0 blocks and 0 s behind; DRILL FAILED .*\bblock 2\b/,
    );
    const doctor = await cli(['doctor']);
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toMatch(/FAIL\s+db drills: the newest restore drill .* failed: .*\bblock 2\b/);

    // serve announced the incident once, and announces its end once the block is put back and a drill passes.
    await waitFor('the firing alert', () => alerts.length === 1, 60_000);
    expect(alerts[0]).toMatchObject({ status: 'firing', kind: 'drill_failed' });
    await db.sql('UPDATE ledger_blocks SET sealed = set_byte(sealed, 7, get_byte(sealed, 7) # 1) WHERE height = 2');
    expect((await cli(['drill', '--tier', 'db'])).code).toBe(0);
    await waitFor('the resolved alert', () => alerts.length === 2, 60_000);
    expect(alerts[1]).toMatchObject({ status: 'resolved', kind: 'drill_failed' });
    expect(server.lines.join('\n')).not.toContain(hookUrl);
  });
});
