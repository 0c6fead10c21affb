/**
 * Key rotation as a library user sees it (Ledger.rotateKey, keyCounts, status().keys, the metrics): a ledger written
 * under an old key, with packs, checkpoints and backups in the local store, a real PostgreSQL database and a backup
 * folder, is re-sealed under the new key while saves go on; afterwards each place holds objects under the new key only,
 * the old key is reported droppable, and a ledger with the new key alone comes back from each place. A tier that does
 * not answer is skipped and reported, and done once it answers. An export made under the old key imports while the old
 * key is in the keyring, and says which key it needs when it is not.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config.js';
import { generateKey, parseKey } from '../../src/crypto/key.js';
import { Ledger } from '../../src/service/ledger.js';
import { metricsOf } from '../../src/service/metrics.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { createTempDatabase, pgUrl, propertyInput, tempDir, waitFor, type TempDatabase } from '../support/pg.js';

const OLD = generateKey();
const NEW = generateKey();
const OLD_ID = parseKey(OLD).id;
const NEW_ID = parseKey(NEW).id;

let root: string;
let cleanup: () => Promise<void>;
let db: TempDatabase;
let proxy: TcpProxy;

beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('ledger-rotation'));
  db = await createTempDatabase();
  proxy = await startTcpProxy(5432);
  await mkdir(join(root, 'backup-dir'), { mode: 0o700 });
});
afterAll(async () => {
  await proxy?.close();
  await db?.drop();
  await cleanup?.();
});

function config(dataDir: string, keys: { key: string; previous?: string }, extra: NodeJS.ProcessEnv = {}): Config {
  return loadConfig({
    LEDGER_DATA_DIR: dataDir,
    LEDGER_ENCRYPTION_KEY: keys.key,
    ...(keys.previous ? { LEDGER_PREVIOUS_KEYS: keys.previous } : {}),
    DATABASE_URL: pgUrl(db.name, proxy.port),
    LEDGER_BACKUP_DIR: join(root, 'backup-dir'),
    PG_TIMEOUT_MS: '1500',
    LEDGER_RETRY_MS: '100',
    LEDGER_PACK_BYTES: '2048',
    LEDGER_PACK_KEEP_LOOSE: '4',
    LEDGER_CHECKPOINT_BLOCKS: '20',
    LEDGER_ROTATE_BATCH: '7',
    ...extra,
  });
}

const writer = () => join(root, 'writer');
const LOCAL_ONLY: NodeJS.ProcessEnv = { LEDGER_DB: 'off', DATABASE_URL: '', LEDGER_BACKUP_DIR: '' };

describe('Ledger.rotateKey', () => {
  let head = -1;
  let properties = -1;

  it('re-seals every place beside saves, and says the old key can go', async () => {
    const before = await Ledger.open({ config: config(writer(), { key: OLD }) });
    try {
      for (let i = 0; i < 60; i++) await before.register(propertyInput(`r-${i}`, i));
      await before.maintain();
      await before.exportTo(join(root, 'old.export'));
      const counted = await before.keyCounts();
      expect(counted.tiers.map((t) => t.tier)).toEqual(['local', 'db', 'dir']);
      for (const t of counted.tiers) expect(Object.keys(t.keys), t.tier).toEqual([OLD_ID]);
    } finally {
      await before.close();
    }

    const ledger = await Ledger.open({ config: config(writer(), { key: NEW, previous: OLD }) });
    try {
      const start = await ledger.keyCounts();
      expect(start.droppable).toEqual([]);
      expect(start.tiers.every((t) => (t.keys[OLD_ID] ?? 0) > 0)).toBe(true);
      // Saves back to back for as long as the rotation runs: it still ends, done (a catch-up that never ends, or a
      // sync tier caught mid-save, must not keep it from finishing), and every save lands, under the new key.
      const steps: number[] = [];
      let rotating = true;
      const saver = (async () => {
        let n = 0;
        while (rotating) await ledger.register(propertyInput(`during-${n}`, n++));
        return n;
      })();
      const report = await ledger
        .rotateKey({ onProgress: (r) => steps.push(r.tiers.reduce((n, t) => n + t.resealed, 0)) })
        .finally(() => {
          rotating = false;
        });
      expect(await saver).toBeGreaterThan(0);
      expect(report.state, JSON.stringify(report.tiers)).toBe('done');
      expect(steps.length).toBeGreaterThan(3);
      for (const t of report.tiers) {
        expect(t.error, t.tier).toBeUndefined();
        expect(Object.keys(t.keys), t.tier).toEqual([NEW_ID]);
        expect(t.remaining, t.tier).toBe(0);
      }
      expect(report.droppable).toEqual([OLD_ID]);
      expect(ledger.status().keys.state).toBe('done');
      const metrics = await metricsOf(ledger).metrics();
      expect(metrics).toMatch(new RegExp(`pawledger_sealed_objects\\{tier="db",key_id="${NEW_ID}"\\} [1-9]`));
      expect(metrics).not.toContain(`key_id="${OLD_ID}"`);
      expect(metrics).toMatch(/pawledger_key_rotation_remaining_objects\{tier="local"\} 0/);
      expect((await ledger.verify()).ok).toBe(true);
      head = ledger.head.index;
      properties = ledger.status().totalProperties;
      // Each tier alone is tried below: let the background ones take the last saves first.
      await waitFor(
        'every tier level with the head',
        async () => ledger.status().tiers.every((t) => t.state === 'off' || t.height === head),
        30_000,
      );
    } finally {
      await ledger.close();
    }
  }, 120_000);

  for (const only of ['local', 'db', 'dir'] as const) {
    it(`a ledger with the new key alone comes back whole from ${only} alone`, async () => {
      expect(head).toBeGreaterThan(0);
      // The writer's own folder for the local store alone, an empty one for a tier alone; the other tiers off.
      const dir = only === 'local' ? writer() : join(root, `fresh-${only}`);
      const extra: NodeJS.ProcessEnv = {};
      if (only !== 'db') Object.assign(extra, { LEDGER_DB: 'off', DATABASE_URL: '' });
      if (only !== 'dir') extra.LEDGER_BACKUP_DIR = '';
      const ledger = await Ledger.open({ config: config(dir, { key: NEW }, extra) });
      try {
        expect(ledger.head.index).toBe(head);
        expect((await ledger.verify()).ok).toBe(true);
        expect(ledger.status().totalProperties).toBe(properties);
      } finally {
        await ledger.close();
      }
    }, 60_000);
  }

  it('skips a tier that does not answer, reports it, and finishes it once it answers', async () => {
    const third = generateKey();
    const ledger = await Ledger.open({ config: config(writer(), { key: third, previous: NEW }) });
    try {
      await proxy.cut();
      await ledger.register(propertyInput('while-down', 1));
      const partial = await ledger.rotateKey();
      expect(partial.state).toBe('incomplete');
      expect(partial.tiers.find((t) => t.tier === 'db')?.error).toBeDefined();
      expect(partial.tiers.find((t) => t.tier === 'local')?.remaining).toBe(0);
      expect(partial.droppable).toEqual([]);
      await proxy.restore();
      await ledger.register(propertyInput('after-down', 2));
      const deadline = Date.now() + 20_000;
      let report = await ledger.rotateKey();
      while (report.state !== 'done' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 300));
        report = await ledger.rotateKey();
      }
      expect(report.state, JSON.stringify(report)).toBe('done');
      expect(report.droppable).toEqual([parseKey(NEW).id]);
    } finally {
      await proxy.restore();
      await ledger.close();
    }
  }, 60_000);

  it('imports an export made under the old key while that key is in the keyring, and names it when not', async () => {
    const ok = await Ledger.open({
      config: config(join(root, 'import-ok'), { key: NEW, previous: OLD }, LOCAL_ONLY),
    });
    try {
      expect((await ok.importFrom(join(root, 'old.export'), { force: true })).totalBlocks).toBe(61);
    } finally {
      await ok.close();
    }
    const without = await Ledger.open({
      config: config(join(root, 'import-no'), { key: NEW }, LOCAL_ONLY),
    });
    try {
      await expect(without.importFrom(join(root, 'old.export'), { force: true })).rejects.toThrow(OLD_ID);
    } finally {
      await without.close();
    }
  }, 60_000);
});
