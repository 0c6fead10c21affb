/**
 * Rotating the encryption key, through the real command line: a server writes a ledger under an old key to the
 * database, a backup folder and an embedded IPFS blockstore (with packs and checkpoints); then it runs with a new key
 * and the old one in LEDGER_PREVIOUS_KEYS, re-seals everything in the background while clients keep saving, is killed
 * with SIGKILL in the middle, comes back, finishes, and says the old key can go. With the old key dropped, an empty
 * machine comes back from each tier alone (database only, IPFS only, the folder only, the local store only) with the
 * new key alone and the whole chain; with the old key alone, nothing opens, and it says which key it needs.
 */
import { cp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateKey, parseKey } from '../../src/crypto/key.js';
import { createTempDatabase, tempDir, waitFor, type TempDatabase } from '../support/pg.js';
import { runCli, runCliAsync, startServe, type ServeProcess } from '../support/serve-process.js';

const TOKEN = 'key-rotation-admin-token-0123456789';
const OLD = generateKey();
const NEW = generateKey();
const OLD_ID = parseKey(OLD).id;
const NEW_ID = parseKey(NEW).id;

let root: string;
let cleanupRoot: () => Promise<void>;
let db: TempDatabase;
const running: ServeProcess[] = [];

beforeAll(async () => {
  ({ dir: root, cleanup: cleanupRoot } = await tempDir('key-rotation'));
  db = await createTempDatabase();
  await mkdir(join(root, 'backup-dir'), { mode: 0o700 });
  await mkdir(join(root, 'writer'));
});
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop('SIGKILL').catch(() => {});
});
afterAll(async () => {
  await db?.drop();
  await cleanupRoot?.();
});

interface Keys {
  activeKeyId: string;
  state: string;
  tiers: { tier: string; keys: Record<string, number>; remaining: number; resealed: number; error?: string }[];
  droppable: string[];
}
interface Status {
  height: number;
  headHash: string;
  totalProperties: number;
  tiers: { name: string; state: string; height: number }[];
  keys: Keys;
}

type Tiers = { db?: boolean; dir?: boolean; ipfs?: boolean };
const ALL: Tiers = { db: true, dir: true, ipfs: true };

function env(cwd: string, keys: { key: string; previous?: string }, tiers: Tiers): Record<string, string> {
  return {
    LEDGER_ENCRYPTION_KEY: keys.key,
    ...(keys.previous ? { LEDGER_PREVIOUS_KEYS: keys.previous } : {}),
    ADMIN_TOKEN: TOKEN,
    LEDGER_DATA_DIR: join(cwd, 'blocks'),
    LEDGER_PACK_BYTES: '2048',
    LEDGER_PACK_KEEP_LOOSE: '6',
    LEDGER_CHECKPOINT_BLOCKS: '25',
    // One object per step: the rotation takes long enough to be killed in the middle of it.
    LEDGER_ROTATE_BATCH: '1',
    IPFS_DEBOUNCE_MS: '0',
    LEDGER_RETRY_MS: '200',
    LEDGER_DRILL_INTERVAL: '0',
    LOG_LEVEL: 'info',
    ...(tiers.db ? { DATABASE_URL: db.url } : { LEDGER_DB: 'off' }),
    ...(tiers.dir ? { LEDGER_BACKUP_DIR: join(root, 'backup-dir') } : {}),
    ...(tiers.ipfs ? { IPFS_PROVIDER: 'embedded', IPFS_EMBEDDED_DIR: join(root, 'ipfs') } : {}),
  };
}

async function call<T>(s: ServeProcess, method: string, path: string, body?: unknown) {
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

async function serve(cwd: string, e: Record<string, string>): Promise<ServeProcess> {
  const s = await startServe(cwd, e, 120_000);
  running.push(s);
  return s;
}

async function stop(s: ServeProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  await s.stop(signal);
  running.splice(running.indexOf(s), 1);
}

/** owners is what every property's owner should be; saved counts the saves acknowledged. */
const owners = new Map<string, string>();
let saved = 0;

async function save(s: ServeProcess, i: number): Promise<void> {
  const id = `cat-${i % 40}`;
  const known = owners.get(id);
  const r = known
    ? await call(s, 'POST', `/properties/${id}/transfer`, { from: known, to: `owner-${i}` })
    : await call(s, 'POST', '/properties', { id, name: `Cattery ${i}`, address: `${i} Purr Lane`, owner: 'ann' });
  expect(r.code, JSON.stringify(r.body)).toBeLessThan(300);
  owners.set(id, known ? `owner-${i}` : 'ann');
  saved++;
}

async function level(s: ServeProcess): Promise<Status> {
  await waitFor(
    'every tier to hold the head',
    async () => {
      const st = await status(s);
      return st.tiers.filter((t) => t.state !== 'off').every((t) => t.state === 'ok' && t.height === st.height);
    },
    60_000,
  );
  return status(s);
}

describe('rotating the key while saves go on, killed in the middle', () => {
  let head: Status;
  const cwd = () => join(root, 'writer');

  it('writes a ledger under the old key: packs, checkpoints, backups in every tier', async () => {
    const s = await serve(cwd(), env(cwd(), { key: OLD }, ALL));
    for (let i = 0; i < 120; i++) await save(s, i);
    const st = await level(s);
    expect(st.keys.activeKeyId).toBe(OLD_ID);
    await new Promise((r) => setTimeout(r, 1000));
    await stop(s);
  }, 180_000);

  it('re-seals in the background beside saves, survives a SIGKILL, resumes and finishes', async () => {
    const keys = { key: NEW, previous: OLD };
    let s = await serve(cwd(), env(cwd(), keys, ALL));
    // Saves go on all the while; the kill comes once the rotation has rewritten some objects and not all.
    let i = 1000;
    let killedAt: Keys | null = null;
    for (;;) {
      await save(s, i++);
      const st = await status(s);
      const done = st.keys.tiers.reduce((n, t) => n + t.resealed, 0);
      if (done >= 20) {
        killedAt = st.keys;
        break;
      }
      if (i > 1400) throw new Error(`the rotation did not move: ${JSON.stringify(st.keys)}`);
    }
    expect(killedAt.state).toBe('running');
    expect(killedAt.tiers.some((t) => t.remaining > 0)).toBe(true);
    await stop(s, 'SIGKILL');

    // Back with the same keys: it goes on where the objects stand, saves go on, and it ends with nothing old left.
    s = await serve(cwd(), env(cwd(), keys, ALL));
    for (let n = 0; n < 30; n++) await save(s, i++);
    await waitFor('the rotation to finish', async () => (await status(s)).keys.state === 'done', 120_000).catch(
      async (err) => {
        throw new Error(`${(err as Error).message}: ${JSON.stringify((await status(s)).keys)}`);
      },
    );
    head = await level(s);
    expect(head.height).toBe(saved);
    expect(head.keys.tiers.map((t) => t.tier).sort()).toEqual(['db', 'dir', 'ipfs', 'local']);
    for (const t of head.keys.tiers) {
      expect(t.error, t.tier).toBeUndefined();
      expect(Object.keys(t.keys), t.tier).toEqual([NEW_ID]);
      expect(t.keys[NEW_ID], t.tier).toBeGreaterThan(0);
    }
    expect(head.keys.droppable).toEqual([OLD_ID]);
    expect(s.lines.join('\n')).toMatch(/Key rotation done: \d+ objects re-sealed/);
    const verify = await call<{ ok: boolean; totalBlocks: number }>(s, 'GET', '/chain/verify');
    expect(verify.body).toMatchObject({ ok: true, totalBlocks: saved + 1 });
    // Beside the running server, `pawledger rotate-key` goes through its control channel and finds nothing to do.
    const beside = await runCliAsync(cwd(), env(cwd(), keys, ALL), ['rotate-key', '--json']);
    expect(beside.code, beside.stderr).toBe(0);
    expect((JSON.parse(beside.stdout) as Keys).state).toBe('done');
    expect(s.lines.join('\n')).toMatch(/rotate-key[^\n]*\(pid \d+\)|\(pid \d+\)[^\n]*rotate-key/);
    await new Promise((r) => setTimeout(r, 1000));
    await stop(s);

    // The doctor, with both keys, says the old one can go; `pawledger rotate-key` has nothing left to do.
    const doctor = runCli(cwd(), env(cwd(), keys, ALL), ['doctor', '--json']);
    const { checks } = JSON.parse(doctor.stdout) as { checks: { name: string; status: string; fix?: string }[] };
    expect(checks.find((c) => c.name === `previous key ${OLD_ID}`)).toMatchObject({
      fix: `Drop key ${OLD_ID} from LEDGER_PREVIOUS_KEYS`,
    });
    for (const name of ['local', 'db', 'dir', 'ipfs'])
      expect(checks.find((c) => c.name === `${name} keys`)?.status, name).toBe('ok');
    const again = runCli(cwd(), env(cwd(), keys, ALL), ['rotate-key', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect((JSON.parse(again.stdout) as Keys).state).toBe('done');
  }, 300_000);

  const alone: [string, Tiers][] = [
    ['db', { db: true }],
    ['ipfs', { ipfs: true }],
    ['dir', { dir: true }],
    ['local', {}],
  ];
  for (const [name, tiers] of alone) {
    it(`comes back from the ${name} tier alone with the new key only, and opens nothing with the old key only`, async () => {
      expect(head, 'the rotation case ran').toBeDefined();
      // The local store alone: a copy of the writer's data folder; every other tier: an empty one.
      const machine = async (label: string) => {
        const here = join(root, `${label}-${name}`);
        await mkdir(here);
        if (name === 'local') await cp(join(cwd(), 'blocks'), join(here, 'blocks'), { recursive: true });
        return here;
      };
      const withOld = await machine('old-key');
      const refused = await startServe(withOld, env(withOld, { key: OLD }, tiers), 60_000).then(
        async (s) => {
          running.push(s);
          return `it started: ${JSON.stringify(await status(s))}`;
        },
        (err: Error) => err.message,
      );
      expect(refused).toMatch(/serve exited with [1-9]/);
      expect(refused).toContain(NEW_ID);

      const here = await machine('new-key');
      const s = await serve(here, env(here, { key: NEW }, tiers));
      const st = await status(s);
      expect(st.height).toBe(head.height);
      expect(st.headHash).toBe(head.headHash);
      for (const [id, owner] of owners) {
        const r = await call<{ property: { owner: string } }>(s, 'GET', `/properties/${id}`);
        expect(r.body.property.owner, id).toBe(owner);
      }
      const verify = await call<{ ok: boolean; totalBlocks: number }>(s, 'GET', '/chain/verify');
      expect(verify.body).toMatchObject({ ok: true, totalBlocks: head.height + 1 });
      await stop(s);
    }, 120_000);
  }
});
