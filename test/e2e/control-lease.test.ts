/**
 * The command line with the writer lease on (LEDGER_LEASE=on, one PostgreSQL database, two `pawledger serve`): beside
 * the standby, a change goes through it and is refused naming the instance that writes, exit 1, as a command run
 * with no server at all is; beside the writer, it is made.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey } from '../../src/crypto/key.js';
import type { LedgerStatus } from '../../src/service/ledger.js';
import { createTempDatabase, tempDir, waitFor, type TempDatabase } from '../support/pg.js';
import { runCliAsync, startServe, type ServeProcess } from '../support/serve-process.js';

const TOKEN = 'control-lease-token-0123456789';

describe('the command line beside a standby', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let db: TempDatabase;
  let env: Record<string, string>;
  let writer: ServeProcess;
  let standby: ServeProcess;
  const status = async (s: ServeProcess) =>
    (await (await fetch(`${s.url}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as LedgerStatus;
  const cli = (dir: string, args: string[]) => runCliAsync(root, { ...env, LEDGER_DATA_DIR: join(root, dir) }, args);
  const add = (id: string) => ['property', 'add', '--id', id, '--name', 'n', '--address', 'a', '--owner', 'o'];

  beforeAll(async () => {
    ({ dir: root, cleanup } = await tempDir('control-lease'));
    db = await createTempDatabase();
    env = {
      LEDGER_ENCRYPTION_KEY: generateKey(),
      DATABASE_URL: db.url,
      LEDGER_LEASE: 'on',
      LEDGER_FOLLOW_MS: '200',
      LEDGER_LEASE_TTL_MS: '3000',
      PG_TIMEOUT_MS: '3000',
      ADMIN_TOKEN: TOKEN,
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'warn',
    };
    writer = await startServe(root, { ...env, LOG_LEVEL: 'info', LEDGER_DATA_DIR: join(root, 'writer') });
    standby = await startServe(root, { ...env, LOG_LEVEL: 'info', LEDGER_DATA_DIR: join(root, 'standby') });
    expect((await status(standby)).writer.role).toBe('standby');
  }, 90_000);
  afterAll(async () => {
    for (const s of [standby, writer]) if (s) await s.stop('SIGKILL');
    await db?.drop();
    await cleanup();
  });

  it('refuses a change through the standby naming the writer, exit 1, as without a server', async () => {
    const holder = (await status(writer)).writer.instance;
    const before = await status(standby);
    for (const args of [add('s1'), ['backup', '--to', 'db', '--name', 'On the standby']]) {
      const r = await cli('standby', args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toContain(`${holder} holds the writer lease since`);
    }
    expect(standby.lines.join('\n')).toMatch(/Control channel: POST \/properties by \S+ \(pid \d+\) answered 503/);
    // No server on this data folder: the command opens the ledger itself and is refused the same way.
    const alone = await cli('alone', add('s2'));
    expect(alone.code).toBe(1);
    expect(alone.stderr).toContain(`${holder} holds the writer lease since`);
    expect((await status(standby)).height).toBe(before.height);

    // Beside the writer the change is made, and the standby follows it.
    const made = await cli('writer', add('w1'));
    expect(made).toMatchObject({ code: 0, stderr: '' });
    const h = (await status(writer)).height;
    expect(h).toBe(before.height + 1);
    await waitFor('the standby to follow', async () => (await status(standby)).height === h, 10_000);
  }, 90_000);
});
