/**
 * Any tier a save waits for, not only the database: a backup folder on a stuck mount (an NFS server gone: every file
 * call blocks, forever, which is what Node sees) must not stall saves. The folder tier is real (PackTier over DirStore
 * in a temp folder); only its store's calls are gated, to block while "stuck" and go through once released, as a
 * mount that comes back does. The replicator is the product's, driven as the Ledger drives it.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Replicator } from '../../src/engine/replicator.js';
import { silentLogger } from '../../src/log.js';
import { Mutex } from '../../src/util/mutex.js';
import { testSealer } from '../support/chain.js';
import { gatedFolderTier, growingSource } from '../support/stuck-folder.js';

describe('a sync tier on a stuck mount', () => {
  const sealer = testSealer();
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'pl-stuck-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('stalls one save for the deadline at most, then none; and it is caught up soon after the mount is back', async () => {
    const dir = join(root, 'folder');
    await mkdir(dir);
    const { tier, gate: g } = gatedFolderTier(dir, sealer);
    // The ledger's working copy, grown as saves are made.
    const source = growingSource(sealer);
    const serial = new Mutex();
    const r = new Replicator({ name: 'dir', tier, role: 'sync', describe: 'backup folder' }, source, {
      log: silentLogger(),
      serial,
      retryMs: 50,
      debounceMs: 0,
      deadlineMs: 300,
      callMs: 2000,
    });
    expect(await serial.run(() => r.catchUp())).toBe(true);

    // A save, as the Ledger makes one: in the serial section, the local chain first, then the tier.
    const save = async () => {
      const t = performance.now();
      await serial.run(async () => {
        const parent = source.chain().stored.at(-1)!.hash;
        source.grow();
        await r.afterSave(parent, [source.chain().stored.at(-1)!], await source.autoRecord());
      });
      return performance.now() - t;
    };
    expect(await save()).toBeLessThan(300);
    expect(r.level).toBe(true);

    g.stick();
    const first = await save();
    expect(first, 'the save that found the mount stuck waits the deadline, no more').toBeGreaterThanOrEqual(280);
    expect(first).toBeLessThan(1000);
    expect(r.state).toBe('lagging');
    const later: number[] = [];
    for (let i = 0; i < 20; i++) {
      later.push(await save());
      await new Promise((res) => setTimeout(res, 25));
    }
    expect(Math.max(...later), 'a save after the mount was found stuck waited on it').toBeLessThan(100);
    expect(r.level).toBe(false);

    g.unstick();
    const t = performance.now();
    while (!r.level && performance.now() - t < 5000) await new Promise((res) => setTimeout(res, 20));
    expect(r.level, 'caught up after the mount came back').toBe(true);
    expect(r.height).toBe(source.headHeight);
    // What the folder holds is the whole chain, verified from its newest backup.
    const newest = (await tier.listBackups(source.ledgerId, { limit: 1 }))[0]!;
    expect(newest.height).toBe(source.headHeight);
    await r.stop(0);
  }, 20_000);
});
