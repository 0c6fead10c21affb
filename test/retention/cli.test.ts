/**
 * The built `pawledger` command's retention commands against the real server: `backup --protect`, `backups prune`
 * with a dry run and for real (JSON and the table), `backups protect ID --off`, and usage errors naming the flag.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PruneReport } from '../../src/engine/prune.js';
import { cliSandbox, type CliSandbox } from '../support/cli.js';
import { createTempDatabase, tempDir, type TempDatabase } from '../support/pg.js';

let db: TempDatabase;
let cli: CliSandbox;
let cleanup: () => Promise<void>;
let env: Record<string, string>;

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = await tempDir('retention-cli'));
  db = await createTempDatabase();
  cli = cliSandbox(dir);
  env = { LEDGER_DB: '', DATABASE_URL: db.url };
});
afterAll(async () => {
  await db?.drop();
  await cleanup?.();
});

describe('pawledger backups prune and protect', () => {
  it('prunes with a dry run first, keeps a protected backup, and refuses a bad flag with exit 2', async () => {
    const run = (args: string[]) => cli.run('data', args, env);
    // Usage errors stop before anything is opened: they run beside the first save.
    const [bad, none, first] = await Promise.all([
      cli.start('data', ['backups', 'prune', '--older-than', '6m'], env),
      cli.start('data', ['backups', 'prune', '--tier', 'db'], env),
      cli.start('data', ['property', 'add', '--id', 'p1', '--name', 'p1', '--address', 'x', '--owner', 'ann'], env),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--older-than must be a positive number followed by h, d or w');
    expect(none.stderr).toContain('a retention policy needs at least one of keep-last');
    expect(first.code).toBe(0);
    expect(run(['property', 'add', '--id', 'p2', '--name', 'p2', '--address', 'x', '--owner', 'ann']).code).toBe(0);
    const made = run(['backup', '--to', 'db', '--name', 'Keep me', '--protect', '--json']);
    expect(made.code).toBe(0);
    const kept = JSON.parse(made.stdout) as { id: string };
    expect(run(['property', 'add', '--id', 'p4', '--name', 'p4', '--address', 'x', '--owner', 'ann']).code).toBe(0);

    const dry = run(['backups', 'prune', '--keep-last', '1', '--tier', 'db', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^db: would remove \d+ of \d+ backups by keep-last=1; newest that verifies: \d+$/m);
    expect(dry.stdout).toMatch(new RegExp(`^keep\\s+${kept.id}\\s+Keep me .* protected$`, 'm'));

    const report = JSON.parse(run(['backups', 'prune', '--keep-last', '1', '--json']).stdout) as PruneReport;
    expect(report.tiers.map((t) => t.tier)).toEqual(['db']);
    const list = () => JSON.parse(run(['backups', 'list', '--json']).stdout) as { id: string; protected: boolean }[];
    expect(list().map((b) => b.id)).toEqual([report.tiers[0]!.newestValid, kept.id]);
    expect(list()[1]!.protected).toBe(true);

    const off = run(['backups', 'protect', kept.id, '--off']);
    expect(off.stdout).toBe(`backup ${kept.id} on the db tier is no longer protected\n`);
    expect(run(['backups', 'prune', '--keep-last', '1']).code).toBe(0);
    expect(list().map((b) => b.id)).toEqual([report.tiers[0]!.newestValid]);
    const unknown = run(['backups', 'protect', '987654321']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('there is no database backup with id "987654321"');
  }, 120_000);
});
