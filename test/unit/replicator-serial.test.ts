/**
 * A background catch-up of a sync tier ends with a step in the serial section (declaring the tier level where no save
 * can slip between). Whoever holds the section and waits for that catch-up (a save under the writer lease asking for
 * the tier level first, a backup, a restore holding every tier) must not wait for ever: found as a save that hung
 * after a database outage (test/lease/standby.test.ts, one run in four on a loaded machine).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Replicator } from '../../src/engine/replicator.js';
import { silentLogger } from '../../src/log.js';
import { Mutex } from '../../src/util/mutex.js';
import { testSealer } from '../support/chain.js';
import { gatedFolderTier, growingSource } from '../support/stuck-folder.js';

const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms)),
  ]);

describe('a sync tier caught up in the background while the serial section waits for it', () => {
  const sealer = testSealer();
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'pl-serial-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  for (const how of ['catchUp', 'hold'] as const) {
    it(`${how}() in the serial section ends once the background catch-up does, and the tier is level`, async () => {
      const dir = await mkdtemp(join(root, `${how}-`));
      const { tier, gate } = gatedFolderTier(dir, sealer);
      const source = growingSource(sealer, 3);
      const serial = new Mutex();
      const r = new Replicator({ name: 'dir', tier, role: 'sync', describe: 'backup folder' }, source, {
        log: silentLogger(),
        serial,
        retryMs: 50,
        debounceMs: 0,
        deadlineMs: 1000,
        callMs: 5000,
      });
      // A background catch-up starts (a retry after a failure) and is held up inside the tier.
      gate.stick();
      r.notify(0);
      await new Promise((res) => setTimeout(res, 100));
      // A save (or a backup, a restore) takes the serial section, and waits in it for that catch-up.
      let held = false;
      const inSection = serial.run(async () => {
        const ok = how === 'catchUp' ? await r.catchUp() : await r.hold(async () => (held = true));
        return ok;
      });
      await new Promise((res) => setTimeout(res, 50));
      gate.unstick();
      const ok = await within(inSection, 5000, `${how}() in the serial section`);
      if (how === 'catchUp') expect(ok).toBe(true);
      else expect(held).toBe(true);
      expect(r.level).toBe(true);
      const newest = (await tier.listBackups(source.ledgerId, { limit: 1 }))[0]!;
      expect(newest.height).toBe(source.headHeight);
      // The section is free again: a save after it goes through.
      await within(
        serial.run(async () => {}),
        1000,
        'the serial section after it',
      );
      await r.stop(0);
    }, 15_000);
  }
});
