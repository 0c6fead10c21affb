/**
 * Rollbacks and forks with IPFS in play: a restore to an older backup survives a restart (IPFS's newest manifest
 * moves back with it), and without a database a fork at startup never discards the local branch's acknowledged saves.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { Ledger } from '../../src/service/ledger.js';
import {
  captureLogger,
  createTempDatabase,
  propertyInput,
  tempDir,
  TEST_KEY,
  type TempDatabase,
} from '../support/pg.js';
import { startPinataStandin } from '../support/standins/pinata.js';

let root: string;
let cleanup: () => Promise<void>;
let db: TempDatabase;
let n = 0;
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('ipfs-rollback'));
  db = await createTempDatabase();
});
afterAll(async () => {
  await db?.drop();
  await cleanup?.();
});

function env(database: 'off' | 'on'): Record<string, string> {
  const c = n++;
  return {
    LEDGER_DATA_DIR: join(root, `data-${c}`),
    LEDGER_ENCRYPTION_KEY: TEST_KEY,
    IPFS_PROVIDER: 'embedded',
    IPFS_EMBEDDED_DIR: join(root, `ipfs-${c}`),
    IPFS_DEBOUNCE_MS: '5',
    LEDGER_RETRY_MS: '100',
    ...(database === 'on' ? { DATABASE_URL: db.url } : { LEDGER_DB: 'off' }),
  };
}
/** twoIpfsBackups saves a, b, backs up to IPFS, saves c, d, backs up again; it returns the older backup's CID. */
async function twoIpfsBackups(ledger: Ledger): Promise<string> {
  await ledger.register(propertyInput('a'));
  await ledger.register(propertyInput('b'));
  const older = await ledger.backupToIpfs();
  await ledger.register(propertyInput('c'));
  await ledger.register(propertyInput('d'));
  await ledger.backupToIpfs();
  return older;
}

const ids = (l: Ledger) =>
  l
    .properties()
    .map((p) => p.id)
    .sort();

for (const database of ['off', 'on'] as const) {
  it(`keeps a rollback to an older IPFS backup across a restart (database ${database})`, async () => {
    const e = env(database);
    const first = await Ledger.open({ config: loadConfig(e) });
    const older = await twoIpfsBackups(first);
    await first.restoreFromIpfs(older);
    const rolledBack = first.head.hash;
    await first.close();

    const again = await Ledger.open({ config: loadConfig(e) });
    try {
      expect(again.head.hash).toBe(rolledBack);
      expect(ids(again)).toEqual(['a', 'b']);
    } finally {
      await again.close();
    }
  }, 60_000);
}

it('without a database, a fork at startup keeps running on the local branch, whose saves were acknowledged', async () => {
  const pinata = await startPinataStandin({ jwt: 'rollback-jwt' });
  try {
    const dataDir = join(root, `data-${n++}`);
    const e = {
      LEDGER_DATA_DIR: dataDir,
      LEDGER_ENCRYPTION_KEY: TEST_KEY,
      LEDGER_DB: 'off',
      IPFS_PROVIDER: 'pinata',
      PINATA_JWT: 'rollback-jwt',
      PINATA_API_URL: pinata.url,
      PINATA_GATEWAY_URL: pinata.gatewayUrl,
      IPFS_DEBOUNCE_MS: '5',
      LEDGER_RETRY_MS: '100',
    };
    const first = await Ledger.open({ config: loadConfig(e) });
    const older = await twoIpfsBackups(first);
    await first.close();
    // Roll back to the older backup while Pinata's upload API is unreachable (the gateway still serves), then save
    // on the new branch: IPFS keeps naming the old branch's longer head.
    const rolled = await Ledger.open({
      config: loadConfig({ ...e, PINATA_API_URL: 'http://127.0.0.1:1' }),
      restore: { tier: 'ipfs', id: older },
    });
    await rolled.register(propertyInput('e'));
    const acked = rolled.head.hash;
    await rolled.close();

    const { logger, lines } = captureLogger();
    const again = await Ledger.open({ config: loadConfig(e), logger });
    try {
      expect(lines.join('\n')).toMatch(
        /FORK: .*took local's \(no tier keeps branches, and the local chain holds acknowledged saves/,
      );
      expect(again.head.hash).toBe(acked);
      expect(ids(again)).toEqual(['a', 'b', 'e']);
    } finally {
      await again.close();
    }
  } finally {
    await pinata.close();
  }
}, 60_000);
