/**
 * A fork between sources, end to end: a copy of the local store saved on while the database was away, and the
 * database moved on from another instance. At startup the fork is logged loudly, the database's chain wins by
 * priority, and the local branch is kept in the database as a backup of its own: nothing is deleted.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateKey } from '../../src/crypto/key.js';
import { createTempDatabase, type TempDatabase } from '../support/pg.js';
import { runCliAsync, startServe, type ServeProcess } from '../support/serve-process.js';

const TOKEN = 'fork-test-token-0123456789';
let cwd: string;
let db: TempDatabase;
const key = generateKey();
beforeAll(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'pl-fork-'));
  db = await createTempDatabase();
});
afterAll(async () => {
  await db?.drop();
  await rm(cwd, { recursive: true, force: true });
});

const env = (dataDir: string, url = db.url) => ({
  LEDGER_ENCRYPTION_KEY: key,
  ADMIN_TOKEN: TOKEN,
  DATABASE_URL: url,
  LEDGER_DATA_DIR: join(cwd, dataDir),
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
async function ids(s: ServeProcess): Promise<string[]> {
  return ((await (await fetch(`${s.url}/properties`)).json()) as { properties: { id: string }[] }).properties
    .map((p) => p.id)
    .sort();
}

it('logs a fork, takes the database chain by priority, and keeps the local branch in the database', async () => {
  const a1 = await startServe(cwd, env('a'));
  await register(a1, 'common');
  await a1.stop();
  await cp(join(cwd, 'a'), join(cwd, 'b'), { recursive: true });

  // Instance b saves while its database is unreachable: the save stands locally only.
  const b1 = await startServe(cwd, env('b', 'postgresql://postgres@127.0.0.1:1/none'));
  await register(b1, 'only-on-b');
  await b1.stop();
  // Instance a moves the database on.
  const a2 = await startServe(cwd, env('a'));
  await register(a2, 'only-on-a');
  await a2.stop();

  const b2 = await startServe(cwd, env('b'));
  const log = b2.lines.join('\n');
  expect(log).toMatch(/FORK: /);
  expect(log).toMatch(/Ledger restored from database/);
  expect(await ids(b2)).toEqual(['common', 'only-on-a']);
  // The fork's description is for the operator (the token); the public status only says that there was one.
  const status = (await (
    await fetch(`${b2.url}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })
  ).json()) as { fork: string | null };
  const pub = (await (await fetch(`${b2.url}/status`)).json()) as { fork: string | null };
  expect(pub.fork).toMatch(/diverging chains/);
  expect(status.fork).toMatch(/diverging chains .*local branch is kept/);
  await b2.stop();

  // The local branch is a backup of its own in the database, and it restores (dry run) and verifies.
  const list = await runCliAsync(cwd, { ...env('b'), LOG_LEVEL: 'silent' }, ['backups', 'list', '--json']);
  const fork = (JSON.parse(list.stdout) as { id: string; name: string; height: number }[]).find((r) =>
    r.name.startsWith('Fork: local branch'),
  );
  expect(fork, list.stdout).toBeDefined();
  const verify = await runCliAsync(cwd, { ...env('b'), LOG_LEVEL: 'silent' }, [
    'verify',
    '--from',
    'db',
    '--id',
    fork!.id,
  ]);
  expect(verify.stdout).toMatch(new RegExp(`^ok: backup ${fork!.id}: 3 blocks verify`));
  const doctor = await runCliAsync(cwd, { ...env('b'), LOG_LEVEL: 'silent' }, ['doctor', '--json']);
  const forks = (
    JSON.parse(doctor.stdout) as { checks: { name: string; status: string; detail: string }[] }
  ).checks.find((c) => c.name === 'forks');
  expect(forks).toMatchObject({ status: 'warn', detail: expect.stringContaining(`backup ${fork!.id}`) });
  // Every record carries the chain root, the branch's own included (its root is that of its own chain).
  const rows = await db.sql<{ name: string; chain_root: string | null }>(
    'SELECT name, chain_root FROM blockchain_backups ORDER BY id',
  );
  for (const r of rows) expect(r).toEqual({ name: r.name, chain_root: expect.stringMatching(/^[0-9a-f]{64}$/) });
}, 120_000);
