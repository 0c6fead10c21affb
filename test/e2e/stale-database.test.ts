/**
 * The database is stale behind the local store at startup (it was unreachable while the last saves were made), end
 * to end: the local store's newer blocks win (no rollback), and the database is healed before serving.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateKey } from '../../src/crypto/key.js';
import { createTempDatabase, newestBackupRow, type TempDatabase } from '../support/pg.js';
import { startServe, type ServeProcess } from '../support/serve-process.js';

const TOKEN = 'stale-db-token-0123456789';
let cwd: string;
let db: TempDatabase;
const key = generateKey();
beforeAll(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'pl-stale-'));
  db = await createTempDatabase();
});
afterAll(async () => {
  await db?.drop();
  await rm(cwd, { recursive: true, force: true });
});

const env = (url: string) => ({
  LEDGER_ENCRYPTION_KEY: key,
  ADMIN_TOKEN: TOKEN,
  DATABASE_URL: url,
  PG_TIMEOUT_MS: '1000',
  LEDGER_RETRY_MS: '60000',
});
async function register(s: ServeProcess, id: string): Promise<void> {
  const r = await fetch(`${s.url}/properties`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ id, name: id, address: 'x', owner: 'o' }),
  });
  expect(r.status).toBe(201);
}

it('keeps the newer local blocks and heals the stale database before serving', async () => {
  const first = await startServe(cwd, env(db.url));
  await register(first, 'p1');
  await first.stop();
  // The database is unreachable for the next saves: they stand in the local store only.
  const offline = await startServe(cwd, env('postgresql://postgres@127.0.0.1:1/none'));
  await register(offline, 'p2');
  await register(offline, 'p3');
  await offline.stop();
  expect(Number((await newestBackupRow(db))!.height)).toBe(1);

  const back = await startServe(cwd, env(db.url));
  const log = back.lines.join('\n');
  expect(log).toMatch(/Priority 1: [^"]* holds backup \d+ \(2 blocks\)/);
  expect(log).toMatch(/Ledger restored from local store in \d+ ms: 4 blocks, 3 properties/);
  expect(log).toMatch(/caught up: sent 2 missed blocks, now at block 3/);
  const status = (await (await fetch(`${back.url}/status`)).json()) as {
    height: number;
    headHash: string;
    tiers: { name: string; state: string; height: number }[];
  };
  expect(status.height).toBe(3);
  expect(status.tiers.find((t) => t.name === 'db')).toMatchObject({ state: 'ok', height: 3 });
  const newest = (await newestBackupRow(db))!;
  expect(newest).toMatchObject({ head_hash: status.headHash });
  await back.stop();
}, 120_000);
