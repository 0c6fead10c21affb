/**
 * serve on a fresh disk restores from a tier, and says how far the restore is as it goes: the log lines an operator
 * watching a deploy on Render sees. LEDGER_PROGRESS_LOG_MS is shortened so that a small chain is long enough.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { Ledger } from '../../src/service/ledger.js';
import { cliSandbox, type CliSandbox } from '../support/cli.js';
import { spawnServe } from '../support/serve-spawn.js';

const BLOCKS = 2000;
let tmp: string;
let cli: CliSandbox;
let backups: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'pawledger-serve-progress-'));
  cli = cliSandbox(tmp);
  backups = join(tmp, 'backups');
  await mkdir(backups);
  // A chain of BLOCKS blocks on an old disk, backed up to the folder by the command; the new disk starts empty.
  const ledger = await Ledger.open({
    config: { ...loadConfig({ LEDGER_DB: 'off', LEDGER_ENCRYPTION_KEY: cli.key }), dataDir: join(tmp, 'old-disk') },
  });
  for (let i = 1; i < BLOCKS; i += 500) {
    const ids = Array.from({ length: Math.min(500, BLOCKS - i) }, (_, k) => `p${i + k}`);
    await Promise.all(ids.map((id) => ledger.register({ id, name: id, address: `${id} Road`, owner: 'ann' })));
  }
  await ledger.close();
  const r = cli.run('old-disk', ['backup', '--to', 'dir', '--json'], { LEDGER_BACKUP_DIR: backups });
  expect(r.code, r.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('serve', () => {
  it('logs the progress of its startup restore, then how long it took', async () => {
    const serve = spawnServe(tmp, {
      ...cli.env,
      LOG_LEVEL: 'info',
      LEDGER_DATA_DIR: join(tmp, 'new-disk'),
      LEDGER_BACKUP_DIR: backups,
      LEDGER_PROGRESS_LOG_MS: '1',
    });
    try {
      await serve.listening;
      const messages = serve.lines.flatMap((l) => {
        try {
          return [JSON.parse(l) as { msg: string; task?: string; done?: number; total?: number }];
        } catch {
          return [];
        }
      });
      const progress = messages.filter((m) => m.task?.startsWith('restore dir backup'));
      expect(progress.length, serve.lines.join('\n')).toBeGreaterThan(0);
      expect(progress.at(-1)!.msg).toMatch(new RegExp(`^restore dir backup \\S+: ${BLOCKS} of ${BLOCKS} blocks in `));
      for (const m of progress.slice(0, -1))
        expect(m.msg).toMatch(new RegExp(`: \\d+ of ${BLOCKS} blocks \\(\\d+ blocks/s, \\S+ left\\)$`));
    } finally {
      await serve.kill('SIGTERM');
    }
  }, 120_000);
});
