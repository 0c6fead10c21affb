/**
 * The dir tier, end to end with real processes: LEDGER_BACKUP_DIR alone (no database, no IPFS) keeps every save in
 * a folder on another disk; a wiped data folder comes back from it; list, restore and prune name it like any tier.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, TEST_KEY, waitFor } from '../support/pg.js';
import { runCli, startServe } from '../support/serve-process.js';

const TOKEN = 'dir-tier-admin-token-0123456789';
let root: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('dir-tier'));
});
afterAll(async () => {
  await cleanup();
});

describe('a backup folder as the only other tier', () => {
  it('keeps every save, brings a wiped data folder back, and lists, restores and prunes by its name', async () => {
    const backups = join(root, 'other-disk');
    await mkdir(backups);
    const env = {
      LEDGER_ENCRYPTION_KEY: TEST_KEY,
      ADMIN_TOKEN: TOKEN,
      LEDGER_DATA_DIR: join(root, 'data'),
      LEDGER_DB: 'off',
      LEDGER_BACKUP_DIR: backups,
      IPFS_DEBOUNCE_MS: '0',
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
    };
    const s = await startServe(root, env);
    const post = (id: string) =>
      fetch(`${s.url}/properties`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ id, name: `House ${id}`, address: `${id} Folder Lane`, owner: 'ann' }),
      });
    for (const id of ['a', 'b', 'c']) expect((await post(id)).status).toBe(201);
    const status = async () =>
      (await (await fetch(`${s.url}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
        height: number;
        headHash: string;
        tiers: { name: string; state: string; height: number }[];
      };
    await waitFor('the folder at the head', async () => {
      const st = await status();
      return st.tiers.find((t) => t.name === 'dir')?.height === st.height;
    });
    const before = await status();
    expect(await s.stop()).toBe(0);
    // Only sealed packs and manifests are on the other disk.
    expect(await readdir(backups)).toContain('ledgers');

    await rm(join(root, 'data'), { recursive: true, force: true });
    const again = await startServe(root, env);
    try {
      const st = (await (
        await fetch(`${again.url}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })
      ).json()) as typeof before;
      expect(st).toMatchObject({ height: before.height, headHash: before.headHash });
      expect(again.lines.join('\n')).toMatch(/Ledger restored from backup folder/);
    } finally {
      expect(await again.stop()).toBe(0);
    }

    const cli = (args: string[]) => runCli(root, { ...env, LOG_LEVEL: 'warn' }, args);
    const list = cli(['backups', 'list', '--tier', 'dir', '--json']);
    expect(list.code, list.stderr).toBe(0);
    const records = JSON.parse(list.stdout) as { id: string; height: number }[];
    expect(records[0]!.height).toBe(before.height);
    // The oldest backup the folder holds (an upload may have carried several saves): a rollback to it.
    const oldest = records.at(-1)!;
    expect(oldest.height).toBeLessThan(before.height);
    const restored = cli(['restore', '--from', 'dir', '--id', oldest.id, '--json']);
    expect(restored.code, restored.stderr).toBe(0);
    expect(JSON.parse(restored.stdout)).toMatchObject({
      height: oldest.height,
      rollback: true,
      tiers: [{ tier: 'dir', recorded: true }],
    });
    const pruned = cli(['backups', 'prune', '--tier', 'dir', '--keep-last', '1', '--json']);
    expect(pruned.code, pruned.stderr).toBe(0);
    const report = JSON.parse(pruned.stdout) as {
      tiers: { tier: string; keep: { height: number }[]; removed: number; collected: { blocks: number } }[];
    };
    expect(report.tiers[0]).toMatchObject({ tier: 'dir', keep: [{ height: oldest.height }], removed: records.length });
    expect(report.tiers[0]!.collected.blocks).toBeGreaterThan(0);
    const verify = cli(['verify', '--from', 'dir']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(new RegExp(`^ok: backup .*: ${oldest.height + 1} blocks verify`));
  }, 90_000);
});
