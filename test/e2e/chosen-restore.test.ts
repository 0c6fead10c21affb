/**
 * A chosen restore sticks. Through the real command line, with a real database and the embedded IPFS blockstore:
 * two backups, a restore of the older one (`restore --cid`, `restore --from db --id`, `restore --from ipfs --id`),
 * then `pawledger serve`: it must come back at the older head, not at the newer blocks the other tier still holds,
 * and the restore's report must give the height it started from. A restore is recorded in every tier, so the next
 * save goes on from it and every tier follows.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTempDatabase, tempDir, TEST_KEY, waitFor, type TempDatabase } from '../support/pg.js';
import { runCli, startServe, type ServeProcess } from '../support/serve-process.js';

const TOKEN = 'chosen-restore-admin-token-0123456789';

let root: string;
let cleanupRoot: () => Promise<void>;
let n = 0;
const open: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  ({ dir: root, cleanup: cleanupRoot } = await tempDir('chosen-restore'));
});
afterEach(async () => {
  for (const stop of open.splice(0).reverse()) await stop().catch(() => {});
});
afterAll(async () => {
  await cleanupRoot?.();
});

interface Status {
  height: number;
  headHash: string;
  totalProperties: number;
  tiers: { name: string; state: string; height: number; newestBackup?: string }[];
}

interface Plan {
  backupId: string;
  height: number;
  currentHeight: number;
  rollback: boolean;
  tiers: { tier: string; recorded: boolean }[];
}

/** setup makes a working folder with a database and an embedded IPFS blockstore, and the environment to use them. */
async function setup(withDb: boolean): Promise<{ cwd: string; env: Record<string, string>; db: TempDatabase | null }> {
  const cwd = join(root, `case-${n++}`);
  await mkdir(cwd);
  const db = withDb ? await createTempDatabase() : null;
  if (db) open.push(() => db.drop());
  const env: Record<string, string> = {
    LEDGER_ENCRYPTION_KEY: TEST_KEY,
    ADMIN_TOKEN: TOKEN,
    LEDGER_DATA_DIR: join(cwd, 'blocks'),
    IPFS_PROVIDER: 'embedded',
    IPFS_EMBEDDED_DIR: join(cwd, 'ipfs'),
    IPFS_DEBOUNCE_MS: '0',
    LEDGER_RETRY_MS: '200',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'warn',
    ...(db ? { DATABASE_URL: db.url } : { LEDGER_DB: 'off' }),
  };
  return { cwd, env, db };
}

function cli<T>(cwd: string, env: Record<string, string>, args: string[]): T {
  const r = runCli(cwd, env, [...args, '--json']);
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as T;
}

function add(cwd: string, env: Record<string, string>, id: string): void {
  const r = runCli(cwd, env, [
    'property',
    'add',
    '--id',
    id,
    '--name',
    `House ${id}`,
    '--address',
    `${id} Rollback Row`,
    '--owner',
    'ann',
  ]);
  expect(r.code, r.stderr).toBe(0);
}

async function serve(cwd: string, env: Record<string, string>): Promise<ServeProcess> {
  const s = await startServe(cwd, { ...env, LOG_LEVEL: 'info' });
  open.push(() => (s.child.exitCode === null ? s.stop() : Promise.resolve()));
  return s;
}

async function status(s: ServeProcess): Promise<Status> {
  return (await (await fetch(`${s.url}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as Status;
}

describe('a chosen restore of an older backup survives the next start', () => {
  for (const withDb of [false, true]) {
    it(`restore --cid of the older of two IPFS backups, then serve: the older head (${withDb ? 'with' : 'without'} a database)`, async () => {
      const { cwd, env } = await setup(withDb);
      add(cwd, env, 'a');
      const older = cli<{ id: string; height: number; headHash: string }>(cwd, env, [
        'backup',
        '--to',
        'ipfs',
        '--name',
        'older',
      ]);
      add(cwd, env, 'b');
      add(cwd, env, 'c');
      const newer = cli<{ id: string; height: number }>(cwd, env, ['backup', '--to', 'ipfs', '--name', 'newer']);
      expect(newer.height).toBe(older.height + 2);

      const plan = cli<Plan>(cwd, env, ['restore', '--cid', older.id]);
      expect(plan).toMatchObject({
        backupId: older.id,
        height: older.height,
        currentHeight: newer.height,
        rollback: true,
      });
      expect(plan.tiers.every((t) => t.recorded)).toBe(true);

      const s = await serve(cwd, env);
      const st = await status(s);
      expect(st).toMatchObject({ height: older.height, headHash: older.headHash, totalProperties: 1 });
      // A save goes on from the restored head, and every tier follows it there.
      const res = await fetch(`${s.url}/properties`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'd', name: 'House d', address: 'd Rollback Row', owner: 'bob' }),
      });
      expect(res.status).toBe(201);
      await waitFor('every tier at the new head', async () =>
        (await status(s)).tiers
          .filter((t) => t.state !== 'off')
          .every((t) => t.height === older.height + 1 && t.state === 'ok'),
      );
      expect(await s.stop()).toBe(0);

      // Once more from an empty disk: the tiers alone bring back the restored branch, not the abandoned blocks.
      await rm(join(cwd, 'blocks'), { recursive: true, force: true });
      const again = await serve(cwd, env);
      expect(await status(again)).toMatchObject({ height: older.height + 1, totalProperties: 2 });
      expect(await (await fetch(`${again.url}/properties/b`)).status).toBe(404);
    }, 90_000);
  }

  it('restore --from db --id of an older database backup, then serve: the older head, IPFS moved back too', async () => {
    const { cwd, env } = await setup(true);
    add(cwd, env, 'a');
    const older = cli<{ id: string; height: number; headHash: string }>(cwd, env, [
      'backup',
      '--to',
      'db',
      '--name',
      'older',
    ]);
    add(cwd, env, 'b');
    add(cwd, env, 'c');
    // IPFS holds the newest blocks: without the restore's record in every tier, it would win at the next start.
    const ipfsNewer = cli<{ height: number }>(cwd, env, ['backup', '--to', 'ipfs', '--name', 'newer']);
    expect(ipfsNewer.height).toBe(older.height + 2);

    const dry = cli<Plan>(cwd, env, ['restore', '--from', 'db', '--id', older.id, '--dry-run']);
    expect(dry).toMatchObject({
      backupId: older.id,
      height: older.height,
      currentHeight: older.height + 2,
      rollback: true,
      dryRun: true,
    });
    const plan = cli<Plan>(cwd, env, ['restore', '--from', 'db', '--id', older.id]);
    expect(plan).toMatchObject({
      backupId: older.id,
      height: older.height,
      currentHeight: older.height + 2,
      rollback: true,
    });
    expect(plan.tiers.map((t) => [t.tier, t.recorded])).toEqual([
      ['db', true],
      ['ipfs', true],
    ]);

    const s = await serve(cwd, env);
    expect(await status(s)).toMatchObject({ height: older.height, headHash: older.headHash, totalProperties: 1 });
    expect(await s.stop()).toBe(0);
    // From IPFS alone (disk and database gone): the restored head too.
    await rm(join(cwd, 'blocks'), { recursive: true, force: true });
    const ipfsOnly = await serve(cwd, { ...env, DATABASE_URL: '', LEDGER_DB: 'off' });
    expect(await status(ipfsOnly)).toMatchObject({ height: older.height, headHash: older.headHash });
  }, 90_000);

  it('a tier down during the restore is stale afterwards: its newer chain does not come back at the next start', async () => {
    const { cwd, env } = await setup(true);
    add(cwd, env, 'a');
    const older = cli<{ id: string; height: number; headHash: string }>(cwd, env, [
      'backup',
      '--to',
      'db',
      '--name',
      'older',
    ]);
    add(cwd, env, 'b');
    cli(cwd, env, ['backup', '--to', 'ipfs', '--name', 'newer']);
    // IPFS cannot be reached during the restore (a Kubo node that is down): the restore says so and exits 1.
    const down = { ...env, IPFS_PROVIDER: 'kubo', IPFS_API_URL: 'http://127.0.0.1:1/api/v0' };
    const r = runCli(cwd, down, ['restore', '--from', 'db', '--id', older.id]);
    expect(r.stdout).toMatch(/recorded in every tier: db recorded, ipfs not yet/);
    expect(r.code).toBe(1);
    // The real IPFS folder still names the newer chain, but its newest backup is older than the restore record.
    const s = await serve(cwd, env);
    expect(await status(s)).toMatchObject({ height: older.height, headHash: older.headHash });
    expect(s.lines.join('\n')).toMatch(/is older than the restore recorded as db backup/);
  }, 90_000);
});
