/**
 * `pawledger rotate-key` from the command line with real work to do: a server saves blocks under key A to the local
 * store, a database tier and a folder tier, and stops; the command, run with key B active and A in
 * LEDGER_PREVIOUS_KEYS, re-seals everything in the foreground and says how many objects it re-sealed in each place.
 * Afterwards key B alone opens every place, and key A alone opens none and names the key it lacks. On a terminal the
 * rotation shows a progress bar per place; on a pipe and with --json it adds nothing. A running server's
 * GET /admin/keys wants the admin token and counts each place's objects by key id.
 */
import { spawnSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateKey, parseKey } from '../../src/crypto/key.js';
import { databasePerTest, waitFor } from '../support/pg.js';
import { BIN, runCli, startServe, type ServeProcess } from '../support/serve-process.js';

const TOKEN = 'rotate-key-cli-admin-token-0123456789';
const A = generateKey();
const B = generateKey();
const A_ID = parseKey(A).id;
const B_ID = parseKey(B).id;
const PLACES = ['db', 'dir', 'local'];
const SAVES = 30;

const t = databasePerTest('rotate-key-cli');
const running: ServeProcess[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop('SIGKILL').catch(() => {});
});

interface TierKeys {
  tier: string;
  keys: Record<string, number>;
  remaining: number;
  resealed: number;
  error?: string;
}
interface Keys {
  activeKeyId: string;
  state: string;
  tiers: TierKeys[];
  droppable: string[];
}

/** Machine is one working folder with its data folder and its backup folder (the dir tier). */
interface Machine {
  cwd: string;
  /** env is the environment of a command; serve logs at info, where it says it listens. */
  env(keys: { key: string; previous?: string }, logLevel?: string): Record<string, string>;
}

async function machine(): Promise<Machine> {
  const cwd = t.dataDir();
  await mkdir(join(cwd, 'backups'), { recursive: true, mode: 0o700 });
  const url = t.db.url;
  return {
    cwd,
    env: ({ key, previous }, logLevel = 'warn') => ({
      LEDGER_ENCRYPTION_KEY: key,
      ...(previous ? { LEDGER_PREVIOUS_KEYS: previous } : {}),
      ADMIN_TOKEN: TOKEN,
      LEDGER_DATA_DIR: join(cwd, 'blocks'),
      DATABASE_URL: url,
      LEDGER_BACKUP_DIR: join(cwd, 'backups'),
      LEDGER_RETRY_MS: '200',
      LEDGER_DRILL_INTERVAL: '0',
      LOG_FORMAT: 'json',
      LOG_LEVEL: logLevel,
    }),
  };
}

async function get<T>(s: ServeProcess, path: string, token = TOKEN): Promise<{ code: number; body: T }> {
  const res = await fetch(`${s.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { code: res.status, body: (await res.json()) as T };
}

/** writeUnderA saves SAVES blocks through a server holding key A alone, waits until each tier has them, and stops it. */
async function writeUnderA(m: Machine, whileRunning?: (s: ServeProcess) => Promise<void>): Promise<void> {
  const s = await startServe(m.cwd, m.env({ key: A }, 'info'), 60_000);
  running.push(s);
  for (let i = 0; i < SAVES; i++) {
    const res = await fetch(`${s.url}/properties`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: `cat-${i}`, name: `Cattery ${i}`, address: `${i} Purr Lane`, owner: 'ann' }),
    });
    expect(res.status, await res.text()).toBeLessThan(300);
  }
  type Status = { height: number; tiers: { name: string; state: string; height: number }[] };
  await waitFor(
    'the database and folder tiers to hold the head',
    async () => {
      const st = (await get<Status>(s, '/status')).body;
      return ['db', 'dir'].every((n) => st.tiers.some((x) => x.name === n && x.state === 'ok' && x.height === SAVES));
    },
    60_000,
  );
  await whileRunning?.(s);
  await s.stop('SIGTERM');
  running.splice(running.indexOf(s), 1);
}

const byTier = (tiers: TierKeys[]) => Object.fromEntries(tiers.map((x) => [x.tier, x]));

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** onTerminal runs pawledger on a pseudo-terminal (`script`) and returns what the terminal showed, and the exit code. */
function onTerminal(cwd: string, env: Record<string, string>, args: string[]): { code: number | null; screen: string } {
  const command = [process.execPath, BIN, ...args].map(quote).join(' ');
  const r = spawnSync('script', ['-qfec', command, '/dev/null'], {
    cwd,
    env: { PATH: process.env.PATH ?? '', TERM: 'xterm', ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, screen: r.stdout };
}

const ANY_BAR = /blocks\/s|\x1b\[\?25l/;

describe('pawledger rotate-key with objects under the old key', { timeout: 180_000 }, () => {
  it('re-seals the local store, the database and the folder; key B alone then opens all, key A alone none', async () => {
    const m = await machine();
    await writeUnderA(m);

    const rotated = runCli(m.cwd, m.env({ key: B, previous: A }), ['rotate-key', '--json']);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stderr).not.toMatch(ANY_BAR);
    const report = JSON.parse(rotated.stdout) as Keys;
    expect(report.state).toBe('done');
    expect(report.activeKeyId).toBe(B_ID);
    expect(report.droppable).toEqual([A_ID]);
    const tiers = byTier(report.tiers);
    expect(Object.keys(tiers).sort()).toEqual(PLACES);
    for (const place of PLACES) {
      expect(tiers[place]!.error, place).toBeUndefined();
      expect(tiers[place]!.resealed, place).toBeGreaterThan(0);
      expect(tiers[place]!.remaining, place).toBe(0);
      expect(Object.keys(tiers[place]!.keys), place).toEqual([B_ID]);
      expect(tiers[place]!.keys[B_ID], place).toBeGreaterThanOrEqual(tiers[place]!.resealed);
    }
    // The local store holds the genesis block and every save, each re-sealed.
    expect(tiers.local!.resealed).toBeGreaterThanOrEqual(SAVES + 1);

    // Key B alone: the local store and each tier's backup verify in full; status counts nothing under A.
    const onlyB = m.env({ key: B });
    for (const from of [[], ['--from', 'db'], ['--from', 'dir']]) {
      const v = runCli(m.cwd, onlyB, ['verify', ...from, '--json']);
      expect(v.code, `${from.join(' ')}: ${v.stdout}${v.stderr}`).toBe(0);
      expect(JSON.parse(v.stdout), from.join(' ')).toMatchObject({ ok: true, totalBlocks: SAVES + 1 });
    }
    const st = runCli(m.cwd, onlyB, ['status', '--json']);
    expect(st.code, st.stderr).toBe(0);
    const keys = byTier((JSON.parse(st.stdout) as { keys: Keys }).keys.tiers);
    for (const place of PLACES) expect(Object.keys(keys[place]?.keys ?? {}), place).toEqual([B_ID]);

    // Key A alone: nothing opens, and the error names the key the objects are under.
    const onlyA = m.env({ key: A });
    for (const from of [[], ['--from', 'db'], ['--from', 'dir']]) {
      const v = runCli(m.cwd, onlyA, ['verify', ...from]);
      const said = `${from.join(' ')}: ${v.stdout}${v.stderr}`;
      expect(v.code, said).not.toBe(0);
      expect(v.stdout + v.stderr, said).toContain(B_ID);
      expect(v.stdout, said).not.toMatch(/^ok:/m);
    }
  });

  it('shows a bar per place on a terminal, and its report of what it re-sealed', async () => {
    const m = await machine();
    await writeUnderA(m);
    const { code, screen } = onTerminal(m.cwd, m.env({ key: B, previous: A }), ['rotate-key']);
    expect(code, screen).toBe(0);
    for (const place of PLACES)
      expect(screen, place).toMatch(new RegExp(`re-seal ${place}[^\\n]*\\[[^\\]]+\\] 100% (\\d+)/\\1, \\d+ blocks/s`));
    for (const place of PLACES)
      expect(screen, place).toMatch(
        new RegExp(`^${place}: \\d+ under ${B_ID} \\(active\\); [1-9]\\d* re-sealed now`, 'm'),
      );
    expect(screen).toContain(`key ${A_ID}: no object needs it any more`);
  });

  it('adds nothing on a pipe: the report alone', async () => {
    const m = await machine();
    await writeUnderA(m);
    const piped = runCli(m.cwd, m.env({ key: B, previous: A }), ['rotate-key']);
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stderr).not.toMatch(ANY_BAR);
    expect(piped.stdout).not.toMatch(ANY_BAR);
    const lines = piped.stdout.trimEnd().split('\n');
    expect(
      lines
        .slice(0, 3)
        .map((l) => l.split(':')[0])
        .sort(),
    ).toEqual(PLACES);
    for (const l of lines.slice(0, 3))
      expect(l).toMatch(new RegExp(`: \\d+ under ${B_ID} \\(active\\); [1-9]\\d* re-sealed now$`));
    expect(lines.slice(3)).toEqual([`key ${A_ID}: no object needs it any more; drop it from LEDGER_PREVIOUS_KEYS`]);
  });

  it('GET /admin/keys wants the admin token and counts each place by key id', async () => {
    const m = await machine();
    await writeUnderA(m, async (s) => {
      const refused = await get(s, '/admin/keys', '');
      expect(refused.code).toBe(401);
      expect((await get(s, '/admin/keys', 'not-the-token-0123456789')).code).toBe(401);
      const r = await get<Keys>(s, '/admin/keys');
      expect(r.code).toBe(200);
      expect(r.body.activeKeyId).toBe(A_ID);
      const tiers = byTier(r.body.tiers);
      expect(Object.keys(tiers).sort()).toEqual(PLACES);
      for (const place of PLACES) {
        expect(Object.keys(tiers[place]!.keys), place).toEqual([A_ID]);
        expect(tiers[place]!.keys[A_ID], place).toBeGreaterThan(0);
        expect(tiers[place]!.remaining, place).toBe(0);
      }
      expect(tiers.local!.keys[A_ID]).toBeGreaterThanOrEqual(SAVES + 1);
    });
    // After a rotation, a server with key B and A still listed counts everything under B and says A can go.
    expect(runCli(m.cwd, m.env({ key: B, previous: A }), ['rotate-key']).code).toBe(0);
    const s = await startServe(m.cwd, m.env({ key: B, previous: A }, 'info'), 60_000);
    running.push(s);
    const r = await get<Keys>(s, '/admin/keys');
    expect(r.code).toBe(200);
    const tiers = byTier(r.body.tiers);
    for (const place of PLACES) expect(Object.keys(tiers[place]!.keys), place).toEqual([B_ID]);
    expect(r.body.droppable).toEqual([A_ID]);
  });
});
