import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { SqlClient } from '../../src/db/client.js';
import { openPglite } from '../../src/db/pglite.js';
import { PostgresTier } from '../../src/tiers/postgres.js';
import { describeTier } from '../conformance/tier-suite.js';

// PGlite takes seconds to create a database: one per file, shared by the cases (each works on its own ledger).
let dir: string;
let shared: SqlClient;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pl-tier-pglite-'));
  shared = await openPglite(dir);
}, 60_000);
afterAll(async () => {
  await shared?.close();
  await rm(dir, { recursive: true, force: true });
});

const make = () =>
  new PostgresTier({ label: 'PGlite (test)', connect: async () => ({ ...shared, close: async () => {} }) });
describeTier('PGlite', { branches: true, create: async () => make(), reopen: async () => make() });
