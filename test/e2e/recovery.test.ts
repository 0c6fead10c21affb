/**
 * Startup recovery with real `pawledger serve` processes (and the CLI), real temp databases, and the Pinata and Render
 * stand-ins: what an operator sees in the log and over HTTP when the disk and the database are gone (migration from
 * an IPFS-only system), when only the embedded IPFS blockstore is left, when the database's backup is tampered with,
 * when every remote tier is down, and on a fresh deployment.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { Ledger } from '../../src/service/ledger.js';
import {
  createTempDatabase,
  pgUrl,
  propertyInput,
  tempDir,
  TEST_KEY,
  waitFor,
  type TempDatabase,
} from '../support/pg.js';
import { runCli, runCliAsync, startServe, type ServeProcess } from '../support/serve-process.js';
import { startPinataStandin, type PinataStandin } from '../support/standins/pinata.js';
import { startRenderStandin } from '../support/standins/render.js';

const TOKEN = 'recovery-admin-token-0123456789';
const JWT = `eyJhbGciOiJIUzI1NiJ9.${randomBytes(18).toString('base64url')}.recovery`;

let root: string;
let cleanupRoot: () => Promise<void>;
let n = 0;
// Everything a test starts, stopped after it whatever happened.
const open: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  ({ dir: root, cleanup: cleanupRoot } = await tempDir('recovery'));
});
afterEach(async () => {
  for (const stop of open.splice(0).reverse()) await stop().catch(() => {});
});
afterAll(async () => {
  await cleanupRoot?.();
});

async function database(): Promise<TempDatabase> {
  const db = await createTempDatabase();
  open.push(() => db.drop());
  return db;
}

async function pinataStandin(): Promise<PinataStandin> {
  const p = await startPinataStandin({ jwt: JWT });
  open.push(() => p.close());
  return p;
}

async function serve(cwd: string, env: Record<string, string>): Promise<ServeProcess> {
  const s = await startServe(cwd, env);
  open.push(() => (s.child.exitCode === null ? s.stop() : Promise.resolve()));
  return s;
}

function pinataEnv(p: PinataStandin): Record<string, string> {
  return { PINATA_JWT: JWT, PINATA_API_URL: p.url, PINATA_GATEWAY_URL: p.gatewayUrl };
}

function baseEnv(dataDir: string): Record<string, string> {
  return {
    LEDGER_ENCRYPTION_KEY: TEST_KEY,
    ADMIN_TOKEN: TOKEN,
    LEDGER_DATA_DIR: dataDir,
    LEDGER_RETRY_MS: '200',
    PG_TIMEOUT_MS: '2000',
    IPFS_DEBOUNCE_MS: '50',
    LOG_FORMAT: 'json',
  };
}

interface Status {
  height: number;
  headHash: string;
  totalProperties: number;
  tiers: { name: string; state: string; height: number; detail?: string; newestBackup?: string }[];
}

async function status(s: ServeProcess): Promise<Status> {
  // With the token: tier details (the newest CID) are the operator's, not public.
  return (await (await fetch(`${s.url}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as Status;
}

const tierOf = (st: Status, name: string) => st.tiers.find((t) => t.name === name);

async function properties(s: ServeProcess): Promise<{ id: string; name: string; owner: string }[]> {
  const body = (await (await fetch(`${s.url}/properties`)).json()) as {
    properties: { id: string; name: string; owner: string }[];
  };
  return body.properties;
}

async function register(s: ServeProcess, input: object): Promise<void> {
  const res = await fetch(`${s.url}/properties`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(input),
  });
  expect(res.status).toBe(201);
}

/** seed makes a ledger with `count` properties in-process (faster than a server), level on every configured tier. */
async function seed(
  env: Record<string, string>,
  count: number,
): Promise<{ height: number; headHash: string; ids: string[] }> {
  const ledger = await Ledger.open({ config: loadConfig(env) });
  try {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      ids.push(`seed-${i}`);
      await ledger.register(propertyInput(`seed-${i}`, i));
    }
    await waitFor(
      'every tier to be level',
      () =>
        ledger
          .status()
          .tiers.filter((t) => t.state !== 'off')
          .every((t) => t.state === 'ok' && t.height === ledger.head.index),
      20_000,
    );
    return { height: ledger.head.index, headHash: ledger.head.hash, ids };
  } finally {
    await ledger.close();
  }
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function caseDir(): Promise<string> {
  const dir = join(root, `case-${n++}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

const logOf = (s: ServeProcess) => s.lines.join('\n');

describe('startup recovery, end to end', () => {
  it("comes back from IPFS alone (found via Render's LEDGER_LATEST_CID) after losing the disk and the database, then backs up to the new database", async () => {
    const cwd = await caseDir();
    const dataDir = join(cwd, 'blocks');
    const pinata = await pinataStandin();
    const render = await startRenderStandin({
      apiKey: 'rnd_test_key_0123456789',
      serviceId: 'srv-recovery',
      vars: { OTHER: 'kept' },
    });
    open.push(() => render.close());
    const renderEnv = {
      RENDER_API_KEY: 'rnd_test_key_0123456789',
      RENDER_SERVICE_ID: 'srv-recovery',
      RENDER_API_URL: render.url,
    };
    const oldDb = await database();

    const first = await serve(cwd, {
      ...baseEnv(dataDir),
      ...pinataEnv(pinata),
      ...renderEnv,
      DATABASE_URL: oldDb.url,
    });
    const names = ['Casa Azul', 'Villa Verde', 'Chalet Rouge'];
    for (const [i, name] of names.entries())
      await register(first, { id: `p${i}`, name, address: `${i} Main St`, owner: 'ann' });
    let st = await status(first);
    await waitFor(
      'IPFS to be level',
      async () => {
        st = await status(first);
        return tierOf(st, 'ipfs')?.state === 'ok' && tierOf(st, 'ipfs')?.height === st.height;
      },
      20_000,
    );
    const cid = tierOf(st, 'ipfs')!.newestBackup!;
    // Render writes are paced (about one per 2 s): the newest CID lands there shortly.
    await waitFor('Render to hold the newest CID', () => render.vars.get('LEDGER_LATEST_CID') === cid, 20_000);
    expect(await first.stop()).toBe(0);

    // A new deploy: the disk is gone and the service now points at a new, empty database.
    await rm(dataDir, { recursive: true, force: true });
    await oldDb.drop();
    const newDb = await database();
    const second = await serve(cwd, {
      ...baseEnv(dataDir),
      ...pinataEnv(pinata),
      ...renderEnv,
      DATABASE_URL: newDb.url,
    });
    const log = logOf(second);
    expect(log).not.toContain('created a new genesis block');
    expect(log).toMatch(/Ledger restored from IPFS in \d+ ms: 4 blocks, 3 properties/);
    // The disk's pointer file and the database are gone: only Render's LEDGER_LATEST_CID could name this manifest.
    expect(log).toContain(`holds backup ${cid} (${st.height + 1} blocks)`);
    expect((await properties(second)).map((p) => p.name).sort()).toEqual([...names].sort());
    const after = await status(second);
    expect(after).toMatchObject({ height: st.height, headHash: st.headHash, totalProperties: 3 });
    expect(tierOf(after, 'db')).toMatchObject({ state: 'ok', height: st.height });
    const rows = await newDb.sql<{ height: string; head_hash: string }>(
      'SELECT height, head_hash FROM blockchain_backups ORDER BY id DESC LIMIT 1',
    );
    expect(rows[0]).toMatchObject({ height: String(st.height), head_hash: st.headHash });
    // Render still names the restored ledger's newest manifest (a new ledger's genesis would have replaced it).
    expect(render.vars.get('LEDGER_LATEST_CID')).toBe(cid);
    expect(render.vars.get('OTHER')).toBe('kept');
    expect(render.requests.replaceAll).toBe(0);
  }, 90_000);

  it('embedded IPFS without a database: property add x2, backup --to ipfs prints a CID, restore --cid into an empty data folder gives the same head', async () => {
    const cwd = await caseDir();
    const env = {
      LEDGER_ENCRYPTION_KEY: TEST_KEY,
      LEDGER_DB: 'off',
      IPFS_PROVIDER: 'embedded',
      IPFS_EMBEDDED_DIR: join(cwd, 'ipfs'),
      LEDGER_DATA_DIR: join(cwd, 'blocks'),
      LOG_FORMAT: 'json',
    };
    for (const [id, name] of [
      ['p1', 'Casa Azul'],
      ['p2', 'Villa Verde'],
    ]) {
      const add = runCli(cwd, env, [
        'property',
        'add',
        '--id',
        id!,
        '--name',
        name!,
        '--address',
        '1 Main St',
        '--owner',
        'ann',
        '--attr',
        'beds=3',
      ]);
      expect(add.code, add.stderr).toBe(0);
    }
    const backup = runCli(cwd, env, ['backup', '--to', 'ipfs', '--json']);
    expect(backup.code, backup.stderr).toBe(0);
    const cid = (JSON.parse(backup.stdout) as { id: string }).id;
    expect(cid).toMatch(/^baf[a-z2-7]{20,}$/);
    const before = runCli(cwd, env, ['status', '--json']);
    expect(before.code, before.stderr).toBe(0);
    const head = JSON.parse(before.stdout) as Status;
    expect(head).toMatchObject({ height: 2, totalProperties: 2 });

    await rm(join(cwd, 'blocks'), { recursive: true, force: true });
    const restore = runCli(cwd, env, ['restore', '--cid', cid]);
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.stdout).toContain(`restored backup ${cid}`);
    const after = runCli(cwd, env, ['status', '--json']);
    expect(after.code, after.stderr).toBe(0);
    expect(JSON.parse(after.stdout)).toMatchObject({
      height: head.height,
      headHash: head.headHash,
      totalProperties: 2,
    });
    const list = runCli(cwd, env, ['property', 'list']);
    expect(list.stdout).toContain('Casa Azul');
    expect(list.stdout).toContain('Villa Verde');
  }, 90_000);

  it('skips a tampered database backup on an empty disk, says why, and restores from IPFS', async () => {
    const cwd = await caseDir();
    const dataDir = join(cwd, 'blocks');
    const pinata = await pinataStandin();
    const db = await database();
    const env = { ...baseEnv(dataDir), ...pinataEnv(pinata), DATABASE_URL: db.url };
    const seeded = await seed(env, 3);

    // Someone with database access but not the key changes one byte of block 2.
    const changed = await db.sql(
      'UPDATE ledger_blocks SET sealed = set_byte(sealed, length(sealed) / 2, get_byte(sealed, length(sealed) / 2) # 255) WHERE height = 2 RETURNING height',
    );
    expect(changed).toHaveLength(1);
    await rm(dataDir, { recursive: true, force: true });

    const s = await serve(cwd, env);
    const log = logOf(s);
    // The database is the first choice; its newest backup fails (block 2 does not authenticate) and the log says so.
    expect(log).toMatch(/Priority 1: postgresql:\/\/[^"]* holds backup \d+ \(4 blocks\)/);
    expect(log).toMatch(/postgresql:\/\/[^"]* backup \d+ failed, not used: block 2 [^"]*failed authentication/);
    expect(log).toMatch(/Ledger restored from IPFS in \d+ ms: 4 blocks, 3 properties/);
    expect((await properties(s)).map((p) => p.id).sort()).toEqual(seeded.ids);
    expect(await status(s)).toMatchObject({ height: seeded.height, headHash: seeded.headHash });
    // The altered block is rewritten from the verified chain: the database's backups verify again.
    expect(log).toMatch(/Database: rewrote 1 altered block/);
    const verify = await runCliAsync(cwd, { ...env, LOG_LEVEL: 'silent' }, ['verify', '--from', 'db']);
    expect(verify.stdout).toMatch(/^ok: backup \d+: 4 blocks verify/);
  }, 60_000);

  it('starts from the local store when the database and IPFS are both down, and logs that both were skipped', async () => {
    const cwd = await caseDir();
    const dataDir = join(cwd, 'blocks');
    const pinata = await pinataStandin();
    const db = await database();
    const seeded = await seed({ ...baseEnv(dataDir), ...pinataEnv(pinata), DATABASE_URL: db.url }, 2);
    await pinata.close();

    const s = await serve(cwd, {
      ...baseEnv(dataDir),
      ...pinataEnv(pinata),
      DATABASE_URL: pgUrl('pawledger', await closedPort()),
    });
    const log = logOf(s);
    expect(log).toMatch(/Priority 1: postgresql:\/\/[^"]* skipped: [^"]*unreachable/);
    expect(log).toMatch(/Priority 2: IPFS via pinata[^"]* skipped: /);
    expect(log).toMatch(/Ledger restored from local store in \d+ ms: 3 blocks, 2 properties/);
    expect((await properties(s)).map((p) => p.id).sort()).toEqual(seeded.ids);
    const st = await status(s);
    expect(st).toMatchObject({ height: seeded.height, headHash: seeded.headHash });
    expect(tierOf(st, 'db')?.state).not.toBe('ok');
    expect(tierOf(st, 'ipfs')?.state).toBe('lagging');
  }, 60_000);

  it('starts a fresh deployment (empty disk, database, IPFS and Render) with a genesis block, logged as such', async () => {
    const cwd = await caseDir();
    const pinata = await pinataStandin();
    const render = await startRenderStandin({ apiKey: 'rnd_test_key_fresh_0123', serviceId: 'srv-fresh' });
    open.push(() => render.close());
    const db = await database();
    const s = await serve(cwd, {
      ...baseEnv(join(cwd, 'blocks')),
      ...pinataEnv(pinata),
      DATABASE_URL: db.url,
      RENDER_API_KEY: 'rnd_test_key_fresh_0123',
      RENDER_SERVICE_ID: 'srv-fresh',
      RENDER_API_URL: render.url,
    });
    const log = logOf(s);
    expect(log).toContain('No backup found anywhere: created a new genesis block (fresh deployment)');
    expect(log).not.toMatch(/Ledger restored from/);
    const st = await status(s);
    expect(st).toMatchObject({ height: 0, totalProperties: 0 });
    expect(await properties(s)).toEqual([]);
    // The new ledger is backed up at once: the database and IPFS hold its genesis block.
    await waitFor(
      'IPFS to hold the genesis block',
      async () => tierOf(await status(s), 'ipfs')?.state === 'ok',
      20_000,
    );
    expect(tierOf(await status(s), 'db')).toMatchObject({ state: 'ok', height: 0 });
  }, 60_000);
});
