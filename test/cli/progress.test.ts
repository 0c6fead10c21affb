import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { Ledger } from '../../src/service/ledger.js';
import { cliSandbox, type CliSandbox } from '../support/cli.js';

// Progress bars on a terminal, through a real pseudo-terminal: `script` runs the built command with its stdout and
// stderr on a pty, as an operator's shell would.
const BIN = new URL('../../bin/pawledger.js', import.meta.url).pathname;
const BLOCKS = 3000;

let tmp: string;
let cli: CliSandbox;

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** onTerminal runs pawledger on a pseudo-terminal and returns what the terminal showed, and the exit code. */
function onTerminal(dataDir: string, args: string[]): { code: number | null; screen: string } {
  const command = [process.execPath, BIN, ...args].map(quote).join(' ');
  const r = spawnSync('script', ['-qfec', command, '/dev/null'], {
    cwd: tmp,
    env: { PATH: process.env.PATH ?? '', TERM: 'xterm', ...cli.env, LEDGER_DATA_DIR: join(tmp, dataDir) },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, screen: r.stdout };
}

// A finished bar: the task, N/N blocks, a speed and the time left.
const bar = (task: string, n: number) =>
  new RegExp(`${task}[^\\n]*\\[[^\\]]+\\] 100% ${n}/${n}, \\d+ blocks/s, 0s left`);
const ANY_BAR = /blocks\/s|\x1b\[\?25l/;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'pawledger-progress-'));
  cli = cliSandbox(tmp);
  const config = {
    ...loadConfig({ LEDGER_DB: 'off', LEDGER_ENCRYPTION_KEY: cli.key }),
    dataDir: join(tmp, 'data'),
  };
  const ledger = await Ledger.open({ config });
  for (let i = 1; i < BLOCKS; i += 500) {
    const ids = Array.from({ length: Math.min(500, BLOCKS - i) }, (_, k) => `p${i + k}`);
    await Promise.all(ids.map((id) => ledger.register({ id, name: id, address: `${id} Road`, owner: 'ann' })));
  }
  await ledger.close();
}, 120_000);

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

// Each test runs the CLI a few times on 3000 blocks (10-15 s alone): a loaded 2-core machine needs more than 30 s.
describe('progress bars', { timeout: 120_000 }, () => {
  it('verify shows a bar with blocks per second and time left on a terminal', () => {
    const { code, screen } = onTerminal('data', ['verify']);
    expect(code, screen).toBe(0);
    expect(screen).toMatch(bar('verify the local sto', BLOCKS));
    expect(screen).toContain(`ok: ${BLOCKS} blocks verify`);
  });

  it('adds nothing on a pipe, nor with --json on a terminal', () => {
    const piped = cli.run('data', ['verify']);
    expect(piped.code).toBe(0);
    expect(piped.stdout).toBe(
      `ok: ${BLOCKS} blocks verify, head ${cli.json<{ headHash: string }>('data', ['verify']).headHash}\n`,
    );
    expect(piped.stderr).not.toMatch(ANY_BAR);
    const json = onTerminal('data', ['verify', '--json']);
    expect(json.code).toBe(0);
    expect(json.screen).not.toMatch(ANY_BAR);
    expect(JSON.parse(json.screen)).toMatchObject({ ok: true, totalBlocks: BLOCKS });
  });

  it('export and import show their bars, and their results as JSON on request', () => {
    const exported = onTerminal('data', ['export', '--out', join(tmp, 'chain.sealed')]);
    expect(exported.code, exported.screen).toBe(0);
    expect(exported.screen).toMatch(bar('export to /tmp/', BLOCKS));
    const imported = onTerminal('copy', ['import', join(tmp, 'chain.sealed')]);
    expect(imported.code, imported.screen).toBe(0);
    expect(imported.screen).toMatch(bar('import', BLOCKS));
    expect(imported.screen).toContain(`imported ${BLOCKS} blocks`);
    const again = cli.json<{ totalBlocks: number }>('copy', ['export', '--out', join(tmp, 'again.sealed')]);
    expect(again.totalBlocks).toBe(BLOCKS);
  });

  it('restore and prune show the bars of the chains they verify', () => {
    const withDir = { LEDGER_BACKUP_DIR: join(tmp, 'backups') };
    spawnSync('mkdir', ['-p', withDir.LEDGER_BACKUP_DIR]);
    const backedUp = cli.run('data', ['backup', '--to', 'dir', '--json'], withDir);
    expect(backedUp.code, backedUp.stderr).toBe(0);
    const env = (extra: Record<string, string>) => Object.assign(cli.env, extra);
    env(withDir);
    try {
      const restored = onTerminal('restored', ['restore', '--from', 'dir']);
      expect(restored.code, restored.screen).toBe(0);
      expect(restored.screen).toMatch(bar('restore dir backup ', BLOCKS));
      const pruned = onTerminal('data', ['backups', 'prune', '--keep-last', '1', '--tier', 'dir']);
      expect(pruned.code, pruned.screen).toBe(0);
      expect(pruned.screen).toMatch(bar('verify dir backup', BLOCKS));
    } finally {
      delete (cli.env as Record<string, string>).LEDGER_BACKUP_DIR;
    }
  });

  it('drill shows the bar of the backup it restores and replays, and nothing on a pipe or with --json', () => {
    const withDir = { LEDGER_BACKUP_DIR: join(tmp, 'drilled') };
    spawnSync('mkdir', ['-p', withDir.LEDGER_BACKUP_DIR]);
    const backedUp = cli.run('data', ['backup', '--to', 'dir', '--json'], withDir);
    expect(backedUp.code, backedUp.stderr).toBe(0);
    Object.assign(cli.env, withDir);
    try {
      const drilled = onTerminal('data', ['drill', '--tier', 'dir']);
      expect(drilled.code, drilled.screen).toBe(0);
      expect(drilled.screen).toMatch(bar('drill dir backup ', BLOCKS));
      expect(drilled.screen).toMatch(/ok: dir: backup \S+ \(block 2999\) restored and replayed in full/);
      const piped = cli.run('data', ['drill', '--tier', 'dir']);
      expect(piped.code, piped.stderr).toBe(0);
      expect(piped.stdout).toMatch(/^ok: dir: backup \S+ \(block 2999\) restored and replayed in full in \d+ ms\n$/);
      expect(piped.stderr).not.toMatch(ANY_BAR);
      const json = onTerminal('data', ['drill', '--tier', 'dir', '--json']);
      expect(json.code, json.screen).toBe(0);
      expect(json.screen).not.toMatch(ANY_BAR);
      expect(JSON.parse(json.screen)).toMatchObject({
        ok: true,
        drills: [{ tier: 'dir', outcome: 'ok', height: BLOCKS - 1 }],
      });
    } finally {
      delete (cli.env as Record<string, string>).LEDGER_BACKUP_DIR;
    }
  });
});
