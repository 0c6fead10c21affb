import { afterAll, beforeAll } from 'vitest';
import { connectPostgres } from '../../src/db/postgres.js';
import { PostgresTier } from '../../src/tiers/postgres.js';
import { describeTier } from '../conformance/tier-suite.js';
import { createTempDatabase, type TempDatabase } from '../support/pg.js';

let db: TempDatabase;
beforeAll(async () => {
  db = await createTempDatabase();
});
afterAll(async () => {
  await db?.drop();
});

const make = () => new PostgresTier({ label: 'test server', connect: async () => connectPostgres(db.url) });
describeTier('PostgreSQL server on 127.0.0.1:5432', {
  branches: true,
  create: async () => make(),
  reopen: async () => make(),
});
