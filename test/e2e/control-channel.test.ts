/**
 * The command line beside a running `pawledger serve` (issue #20): commands that change the ledger go through the
 * server's control channel and print what they print with the server stopped, with the same exit codes; the
 * server's /status shows each change at once. A stopped server is reported within a bounded time and keeps its LOCK.
 */
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateKey } from '../../src/crypto/key.js';
import type { LedgerStatus } from '../../src/service/ledger.js';
import { comparable } from '../support/control.js';
import { createTempDatabase, tempDir, type TempDatabase } from '../support/pg.js';
import { runCliAsync, startServe, type ServeProcess } from '../support/serve-process.js';

const TOKEN = 'control-channel-token-0123456789';
const key = generateKey();
let root: string;
let cleanup: () => Promise<void>;
const databases: TempDatabase[] = [];
const servers: ServeProcess[] = [];

beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('control'));
});
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.child.kill('SIGCONT');
    await s.stop('SIGKILL');
  }
  for (const db of databases.splice(0)) await db.drop();
});
afterAll(async () => {
  await cleanup();
});

/** World is one ledger: a data folder and a database, and the environment the CLI and serve share. */
interface World {
  dataDir: string;
  db: TempDatabase;
  env: Record<string, string>;
}

async function world(name: string, extra: Record<string, string> = {}): Promise<World> {
  const db = await createTempDatabase();
  databases.push(db);
  const dataDir = join(root, name);
  const env = {
    LEDGER_ENCRYPTION_KEY: key,
    DATABASE_URL: db.url,
    LEDGER_DATA_DIR: dataDir,
    ADMIN_TOKEN: TOKEN,
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'warn',
    PG_TIMEOUT_MS: '3000',
    ...extra,
  };
  return { dataDir, db, env };
}

async function serve(w: World): Promise<ServeProcess> {
  const s = await startServe(root, { ...w.env, LOG_LEVEL: 'info' });
  servers.push(s);
  return s;
}

async function status(s: ServeProcess): Promise<LedgerStatus> {
  return (await (await fetch(`${s.url}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as never;
}

const cli = (w: World, args: string[], extra: Record<string, string> = {}) =>
  runCliAsync(root, { ...w.env, ...extra }, args);

describe('the command line beside a running server', () => {
  it('gives the same output and exit code through the server as with the server stopped, and /status shows each change at once', async () => {
    const offline = await world('offline');
    const online = await world('online');
    const server = await serve(online);
    const names = (w: World) => ({ [w.dataDir]: '<data>', [w.db.name]: '<db>' });

    // Each step runs on both ledgers: on `offline` the command opens the ledger itself (no server), on `online` it
    // goes through the server. `height` is the server's height after the step, checked on /status right away.
    const backupIds = new Map<World, string>();
    const steps: { args: (w: World) => string[]; code: number; height?: number }[] = [
      {
        args: () => [
          'property',
          'add',
          '--id',
          'p1',
          '--name',
          'Casa Azul',
          '--address',
          '1 Main St',
          '--owner',
          'ann',
        ],
        code: 0,
        height: 1,
      },
      {
        args: () => ['property', 'add', '--id', 'p2', '--name', 'Villa', '--address', '2 Main St', '--owner', 'cy'],
        code: 0,
        height: 2,
      },
      // A rule broken: refused the same way, nothing saved.
      {
        args: () => ['property', 'add', '--id', 'p1', '--name', 'x', '--address', 'y', '--owner', 'z'],
        code: 1,
        height: 2,
      },
      // A bad input: a usage error either way.
      { args: () => ['property', 'update', 'p2'], code: 2, height: 2 },
      { args: () => ['backup', '--to', 'db', '--name', 'Before the audit', '--admin', '7'], code: 0, height: 2 },
      { args: () => ['property', 'update', 'p1', '--attr', 'beds=4'], code: 0, height: 3 },
      { args: () => ['property', 'transfer', 'p1', '--from', 'ann', '--to', 'bob', '--json'], code: 0, height: 4 },
      { args: () => ['backups', 'prune', '--keep-last', '2', '--tier', 'db', '--dry-run'], code: 0, height: 4 },
      { args: (w) => ['restore', '--from', 'db', '--id', backupIds.get(w)!], code: 0, height: 2 },
      { args: () => ['restore', '--from', 'db', '--id', '999999'], code: 1, height: 2 },
      { args: (w) => ['backups', 'protect', backupIds.get(w)!, '--tier', 'db'], code: 0 },
      { args: () => ['backups', 'prune', '--keep-last', '1', '--tier', 'db'], code: 0, height: 2 },
      { args: () => ['backups', 'list', '--tier', 'db'], code: 0 },
      // import names a file on this machine: the server reads it, as this user.
      { args: (w) => ['export', '--out', `${w.dataDir}-x.enc`], code: 0 },
      {
        args: () => ['property', 'add', '--id', 'p3', '--name', 'n', '--address', 'a', '--owner', 'o'],
        code: 0,
        height: 3,
      },
      { args: (w) => ['import', `${w.dataDir}-x.enc`], code: 1, height: 3 },
      { args: (w) => ['import', `${w.dataDir}-x.enc`, '--force'], code: 0, height: 2 },
    ];
    for (const step of steps) {
      const [off, on] = [await cli(offline, step.args(offline)), await cli(online, step.args(online))];
      const what = `pawledger ${step.args(online).join(' ')}`;
      expect({ what, code: on.code }).toEqual({ what, code: step.code });
      expect({ what, code: off.code }).toEqual({ what, code: step.code });
      // JSON is compared as values: the order of an object's keys depends on whether it was replayed or built here.
      const [a, b] = [comparable(on.stdout, names(online)), comparable(off.stdout, names(offline))];
      if (step.args(online).includes('--json')) expect(JSON.parse(a), what).toEqual(JSON.parse(b));
      else expect(a, what).toBe(b);
      expect(comparable(on.stderr, names(online)), what).toBe(comparable(off.stderr, names(offline)));
      if (step.args(online)[0] === 'backup') {
        for (const [w, out] of [
          [offline, off],
          [online, on],
        ] as const)
          backupIds.set(w, /Backup ID:\s+(\d+)/.exec(out.stdout)![1]!);
      }
      if (step.height !== undefined) expect((await status(server)).height, what).toBe(step.height);
    }
    // The change was the server's own: its log names who asked, and the ledger needs no restart to show it.
    expect(server.lines.join('\n')).toMatch(/Control channel: POST \/admin\/restore by \S+ \(pid \d+\) answered 200/);
    const props = (await (await fetch(`${server.url}/properties`)).json()) as { properties: { owner: string }[] };
    expect(props.properties.map((p) => p.owner)).toEqual(['ann', 'cy']);
    expect(await server.stop()).toBe(0);
    await expect(stat(join(online.dataDir, 'control.sock'))).rejects.toMatchObject({ code: 'ENOENT' });
  }, 180_000);

  it('says a stopped server does not answer, within the timeout, and leaves its LOCK and ledger alone', async () => {
    const w = await world('stopped', { LEDGER_CONTROL_TIMEOUT_MS: '1500' });
    const server = await serve(w);
    const pid = server.child.pid!;
    const before = await status(server);

    server.child.kill('SIGSTOP');
    const started = performance.now();
    const r = await cli(w, ['backup', '--to', 'db', '--name', 'While stopped']);
    const took = performance.now() - started;
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`(process ${pid}) did not answer within 1500 ms, so nothing was sent`);
    expect(r.stderr).toContain(`it is stopped`);
    expect(r.stderr).toContain(`kill -CONT ${pid}`);
    expect(r.stderr).toContain('do not remove');
    expect(took).toBeLessThan(10_000);
    // The CLI did not take the ledger: the LOCK still names the stopped server.
    expect((await readFile(join(w.dataDir, 'LOCK'), 'utf8')).trim()).toBe(String(pid));

    server.child.kill('SIGCONT');
    // Nothing was sent: no backup of that name, and the resumed server goes on taking changes through the channel.
    const list = await cli(w, ['backups', 'list', '--tier', 'db']);
    expect(list.stdout).not.toContain('While stopped');
    const add = await cli(w, ['property', 'add', '--id', 'after', '--name', 'n', '--address', 'a', '--owner', 'o']);
    expect(add.code).toBe(0);
    expect((await status(server)).height).toBe(before.height + 1);
  }, 60_000);

  it('ignores the socket a killed server left, and the next server replaces it', async () => {
    // A data folder deep enough that its socket path is past the kernel's 107 bytes.
    const w = await world(join('a'.repeat(60), 'b'.repeat(60), 'killed'), { LEDGER_DB: 'off' });
    delete w.env.DATABASE_URL;
    const sock = join(w.dataDir, 'control.sock');
    expect(Buffer.byteLength(sock)).toBeGreaterThan(107);
    const first = await serve(w);
    expect((await stat(sock)).isSocket()).toBe(true);
    expect((await stat(sock)).mode & 0o777).toBe(0o600);
    expect((await stat(w.dataDir)).mode & 0o777).toBe(0o700);
    expect(
      (await cli(w, ['property', 'add', '--id', 'k1', '--name', 'n', '--address', 'a', '--owner', 'o'])).code,
    ).toBe(0);
    await first.stop('SIGKILL');
    servers.splice(servers.indexOf(first), 1);
    expect((await stat(sock)).isSocket()).toBe(true);

    // No live holder: the command opens the ledger itself, as without any server.
    const alone = await cli(w, ['property', 'add', '--id', 'k2', '--name', 'n', '--address', 'a', '--owner', 'o']);
    expect(alone).toMatchObject({ code: 0, stderr: '' });
    expect(alone.stdout).toMatch(/saved in block: 2/);

    const second = await serve(w);
    expect(second.lines.join('\n')).toContain('left by a server that did not stop cleanly');
    const through = await cli(w, ['property', 'transfer', 'k1', '--from', 'o', '--to', 'q']);
    expect(through.code).toBe(0);
    expect((await status(second)).height).toBe(3);
    expect(await second.stop()).toBe(0);
    await expect(stat(sock)).rejects.toMatchObject({ code: 'ENOENT' });
    await rm(w.dataDir, { recursive: true, force: true });
  }, 60_000);
});
