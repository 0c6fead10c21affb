/**
 * A restore source that hangs is cut off after LEDGER_SOURCE_TIMEOUT_MS and the next source serves, at startup.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { Ledger } from '../../src/service/ledger.js';
import { captureLogger, propertyInput, tempDir, TEST_KEY } from '../support/pg.js';
import { startPinataStandin, type PinataStandin } from '../support/standins/pinata.js';

let pinata: PinataStandin;
let root: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  pinata = await startPinataStandin({ jwt: 'timeout-jwt' });
  ({ dir: root, cleanup } = await tempDir('source-timeout'));
});
afterAll(async () => {
  await pinata?.close();
  await cleanup?.();
});

it('cuts off an IPFS gateway that hangs at startup and restores from the local store in time', async () => {
  const dataDir = join(root, 'blocks');
  const env = {
    LEDGER_DATA_DIR: dataDir,
    LEDGER_ENCRYPTION_KEY: TEST_KEY,
    LEDGER_DB: 'off',
    IPFS_PROVIDER: 'pinata',
    PINATA_JWT: 'timeout-jwt',
    PINATA_API_URL: pinata.url,
    PINATA_GATEWAY_URL: pinata.gatewayUrl,
    IPFS_DEBOUNCE_MS: '10',
    LEDGER_SOURCE_TIMEOUT_MS: '800',
  };
  const first = await Ledger.open({ config: loadConfig(env) });
  for (let i = 0; i < 3; i++) await first.register(propertyInput(`t${i}`));
  await first.backupToIpfs();
  const head = first.head.hash;
  await first.close();
  // The IPFS pointer file sits in the data folder: keep it, so startup asks the (now hanging) gateway for the manifest.
  pinata.gateway.mode = 'slow';
  pinata.gateway.slowMs = 60_000;
  const { logger, lines } = captureLogger();
  const started = Date.now();
  const second = await Ledger.open({ config: loadConfig(env), logger });
  const took = Date.now() - started;
  try {
    expect(second.head.hash).toBe(head);
    expect(lines.join('\n')).toMatch(/did not answer within 800 ms/);
    expect(lines.join('\n')).toMatch(/Ledger restored from local store/);
    expect(took).toBeLessThan(10_000);
  } finally {
    pinata.gateway.mode = 'ok';
    await second.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}, 30_000);
