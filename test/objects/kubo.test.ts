import { afterAll, beforeAll } from 'vitest';
import { KuboStore } from '../../src/objects/kubo.js';
import { objectStoreSuite } from '../conformance/object-store-suite.js';
import { closedPort, flipFirstLeaf, memoryIo } from '../support/object-stores.js';
import { startKuboStandin, type KuboStandin } from '../support/standins/kubo.js';

let kubo: KuboStandin;
beforeAll(async () => {
  kubo = await startKuboStandin();
});
afterAll(() => kubo.close());

objectStoreSuite('kubo (stand-in)', {
  contentAddressed: true,
  list: false,
  create: () => new KuboStore({ apiUrl: kubo.url, timeoutMs: 5_000 }),
  tamper: (id) => flipFirstLeaf(id, ...memoryIo(kubo.blocks)),
  failNext: (count) => kubo.failNext(500, count),
  unreachable: async () => new KuboStore({ apiUrl: `http://127.0.0.1:${await closedPort()}/api/v0`, timeoutMs: 2_000 }),
  // A gateway's path instead of the RPC's: Kubo answers 404 to everything.
  misconfigured: () => new KuboStore({ apiUrl: kubo.url.replace('/api/v0', '/ipfs'), timeoutMs: 5_000 }),
});
