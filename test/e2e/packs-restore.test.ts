/**
 * Every deploy is a restore, and it comes back from packs and a checkpoint. Through the real command line: a server
 * with small packs and frequent checkpoints saves a ledger to a database, a backup folder and an embedded IPFS
 * blockstore; then, for each tier alone, an empty data folder and `serve` again: the ledger comes back whole from
 * that tier's packs and checkpoint, serves at once, and its background full replay ends `verified`. A checkpoint
 * whose state was wrong (sealed with the key, as a bug would make it) is caught by that replay: the ledger is
 * degraded, writes are refused with 503, and `pawledger degraded clear` lets them through again.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { sealCheckpoint } from '../../src/crypto/checkpoints.js';
import { parseKey } from '../../src/crypto/key.js';
import { Sealer } from '../../src/crypto/seal.js';
import { latestBackup, verifyBackup } from '../../src/engine/restore.js';
import { WorldState, type StateEntry } from '../../src/ledger/state.js';
import { silentLogger } from '../../src/log.js';
import { openTiers } from '../../src/tiers/registry.js';
import { createTempDatabase, tempDir, TEST_KEY, waitFor, type TempDatabase } from '../support/pg.js';
import { runCli, startServe, type ServeProcess } from '../support/serve-process.js';

const TOKEN = 'packs-restore-admin-token-0123456789';
const SAVES = 150;

let root: string;
let cleanupRoot: () => Promise<void>;
let db: TempDatabase;
const running: ServeProcess[] = [];

beforeAll(async () => {
  ({ dir: root, cleanup: cleanupRoot } = await tempDir('packs-restore'));
  db = await createTempDatabase();
  await mkdir(join(root, 'backup-dir'), { mode: 0o700 });
});
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop('SIGKILL').catch(() => {});
});
afterAll(async () => {
  await db?.drop();
  await cleanupRoot?.();
});

interface Status {
  height: number;
  headHash: string;
  totalProperties: number;
  verification: { state: string; checkpoint?: number } | string;
  degraded: unknown;
  tiers: { name: string; state: string; height: number }[];
}

const state = (s: Status) => (typeof s.verification === 'string' ? s.verification : s.verification.state);

function baseEnv(cwd: string, tiers: { db?: boolean; dir?: boolean; ipfs?: boolean }): Record<string, string> {
  return {
    LEDGER_ENCRYPTION_KEY: TEST_KEY,
    ADMIN_TOKEN: TOKEN,
    LEDGER_DATA_DIR: join(cwd, 'blocks'),
    LEDGER_PACK_BYTES: '2048',
    LEDGER_PACK_KEEP_LOOSE: '6',
    LEDGER_CHECKPOINT_BLOCKS: '25',
    IPFS_DEBOUNCE_MS: '0',
    LEDGER_RETRY_MS: '200',
    LOG_LEVEL: 'info',
    ...(tiers.db ? { DATABASE_URL: db.url } : { LEDGER_DB: 'off' }),
    ...(tiers.dir ? { LEDGER_BACKUP_DIR: join(root, 'backup-dir') } : {}),
    ...(tiers.ipfs ? { IPFS_PROVIDER: 'embedded', IPFS_EMBEDDED_DIR: join(root, 'ipfs') } : {}),
  };
}

async function call<T>(
  s: ServeProcess,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ code: number; body: T }> {
  const res = await fetch(`${s.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { code: res.status, body: (await res.json()) as T };
}

const status = async (s: ServeProcess) => (await call<Status>(s, 'GET', '/status')).body;

async function serve(cwd: string, env: Record<string, string>): Promise<ServeProcess> {
  const s = await startServe(cwd, env, 120_000);
  running.push(s);
  return s;
}

async function stop(s: ServeProcess): Promise<void> {
  await s.stop('SIGTERM');
  running.splice(running.indexOf(s), 1);
}

/** owners is what every property's owner should be after the saves below. */
const owners = new Map<string, string>();

describe('coming back from packs and checkpoints, tier by tier', () => {
  let head: Status;

  it('a server compacts, checkpoints and carries both to every tier', async () => {
    const cwd = join(root, 'writer');
    await mkdir(cwd);
    const s = await serve(cwd, baseEnv(cwd, { db: true, dir: true, ipfs: true }));
    for (let i = 0; i < SAVES; i++) {
      const id = `dog-${i % 60}`;
      if (i < 60) {
        const r = await call(s, 'POST', '/properties', {
          id,
          name: `Kennel ${i}`,
          address: `${i} Bark Street`,
          owner: 'ann',
        });
        expect(r.code).toBe(201);
        owners.set(id, 'ann');
      } else {
        const to = `owner-${i}`;
        const r = await call(s, 'POST', `/properties/${id}/transfer`, { from: owners.get(id), to });
        expect(r.code, JSON.stringify(r.body)).toBe(200);
        owners.set(id, to);
      }
    }
    head = await status(s);
    expect(head.height).toBe(SAVES);
    await waitFor(
      'every tier to hold the head, its packs and checkpoint',
      async () =>
        (await status(s)).tiers.filter((t) => t.state !== 'off').every((t) => t.state === 'ok' && t.height === SAVES),
      60_000,
    ).catch(async (err) => {
      throw new Error(`${(err as Error).message}: ${JSON.stringify((await status(s)).tiers)}`);
    });
    const log = s.lines.join('\n');
    expect(log).toMatch(/Compacted \d+ settled blocks into \d+ pack/);
    expect(log).toMatch(/Checkpoint of the world state at block \d+ kept/);
    // The database holds packs and a checkpoint (the object-store tiers are read back below, each alone).
    const rows = async (table: string) =>
      Number((await db.sql<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))[0]!.n);
    await waitFor(
      'the database to hold packs and a checkpoint',
      async () => (await rows('ledger_packs')) > 0 && (await rows('ledger_checkpoints')) > 0,
      30_000,
    );
    // A catch-up after the last compaction or checkpoint may still run: give it a moment before stopping.
    await new Promise((r) => setTimeout(r, 1500));
    await stop(s);
  }, 180_000);

  for (const tier of ['db', 'dir', 'ipfs'] as const) {
    it(`an empty machine with only the ${tier} tier comes back whole, serves at once, and verifies in full behind`, async () => {
      expect(head, 'the writer case ran').toBeDefined();
      const cwd = join(root, `from-${tier}`);
      await mkdir(cwd);
      const s = await serve(cwd, baseEnv(cwd, { [tier]: true }));
      const first = await status(s);
      expect(first.height).toBe(head.height);
      expect(first.headHash).toBe(head.headHash);
      expect(first.totalProperties).toBe(60);
      for (const [id, owner] of owners) {
        const r = await call<{ property: { owner: string } }>(s, 'GET', `/properties/${id}`);
        expect(r.body.property.owner, id).toBe(owner);
      }
      // It started from a checkpoint (not block 0) and the full replay behind it agrees.
      expect(['replaying', 'verified']).toContain(state(first));
      await waitFor('the full replay', async () => state(await status(s)) === 'verified', 60_000);
      const verify = await call<{ ok: boolean; totalBlocks: number }>(s, 'GET', '/chain/verify');
      expect(verify.body).toMatchObject({ ok: true, totalBlocks: SAVES + 1 });
      await stop(s);
    }, 120_000);
  }
});

describe('a checkpoint with a wrong state', () => {
  it('is caught by the full replay: degraded, writes refused, until an operator clears it', async () => {
    // A checkpoint of the head whose state has one owner changed, sealed with the key: what a bug would leave.
    const config = loadConfig({
      DATABASE_URL: db.url,
      LEDGER_ENCRYPTION_KEY: TEST_KEY,
      LEDGER_DATA_DIR: join(root, 'x'),
    });
    const sealer = new Sealer(parseKey(TEST_KEY));
    const opened = openTiers(config, { sealer, log: silentLogger(), only: 'db' });
    const { tier } = opened.entries[0]!;
    await tier.init();
    const record = (await latestBackup(tier, null))!;
    const chain = await verifyBackup(tier, record, sealer);
    const snap = chain.state.snapshot();
    const entries: StateEntry[] = [];
    for (const e of snap.entries()) {
      entries.push(e.id === 'dog-1' ? { ...e, json: e.json.replace(/"owner":"[^"]*"/, '"owner":"mallory"') } : e);
    }
    snap.release();
    const forged = WorldState.restore(record.height, entries);
    expect(forged.get('dog-1')!.property.owner).toBe('mallory');
    await tier.putCheckpoint!(record.ledgerId, sealCheckpoint(sealer, record.ledgerId, record.headHash, forged));
    await opened.close();

    const cwd = join(root, 'degraded');
    await mkdir(cwd);
    const env = baseEnv(cwd, { db: true });
    const s = await serve(cwd, env);
    await waitFor('the full replay to disagree', async () => state(await status(s)) === 'degraded', 60_000);
    const st = await status(s);
    expect(JSON.stringify(st.degraded)).toMatch(/digest|state/i);
    const refused = await call<{ code?: string; error?: string }>(s, 'POST', '/properties', {
      id: 'cat-1',
      name: 'Cattery',
      address: '2 Purr Lane',
      owner: 'ann',
    });
    expect(refused.code).toBe(503);
    expect(JSON.stringify(refused.body)).toMatch(/DEGRADED|degraded/);

    const cleared = runCli(cwd, env, ['degraded', 'clear']);
    expect(cleared.code, cleared.stderr).toBe(0);
    expect(cleared.stdout).toMatch(/cleared/);
    const accepted = await call(s, 'POST', '/properties', {
      id: 'cat-1',
      name: 'Cattery',
      address: '2 Purr Lane',
      owner: 'ann',
    });
    expect(accepted.code).toBe(201);
    await stop(s);
    // The data folder holds the chain; nothing was lost on the way.
    expect((await readdir(join(cwd, 'blocks'))).length).toBeGreaterThan(0);
    await rm(join(cwd, 'blocks'), { recursive: true, force: true });
  }, 120_000);
});
