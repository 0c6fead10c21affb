/**
 * Property-based fuzzing of every route the router has (collectRoutes, never a hand-written list) with hostile
 * requests (support/http-fuzz.ts), with and without the admin token, against a real Ledger: no response is ever a
 * 5xx or carries a stack trace, and the chain (and the newest database backup) still verifies at the end. Run once with a local-only ledger
 * (LEDGER_DB=off) and once with the database tier on a real PostgreSQL, so that driver errors surface. The seed is
 * fixed and the runs few enough for CI; `npm run fuzz:http` (bench/fuzz-http.ts) sends tens of thousands.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../src/config.js';
import { buildServer } from '../src/server/app.js';
import { Ledger } from '../src/service/ledger.js';
import { describeRequest, fuzzRequest } from './support/http-fuzz.js';
import { collectRoutes } from './support/http-raw.js';
import { createTempDatabase, ledgerConfig, type TempDatabase } from './support/pg.js';

const TOKEN = 'fuzz-test-token-0123456789abcdef';
const SEED = 1212;
// A stack line in a body, raw or JSON-escaped ("at" and a position on one line: prose that wraps before "at most"
// in the OpenAPI YAML is not one), or any source position.
const STACK = /(\\n|\n)\s+at [^\n]*:\d+:\d+|\.(ts|js|mjs|cjs):\d+:\d+/;

let dir: string;
let db: TempDatabase;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pl-fuzz-'));
  db = await createTempDatabase();
});

afterAll(async () => {
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

/** fuzz sends `runsPerRoute` hostile requests at each route the router has, and returns how many got each status. */
async function fuzz(config: Config, runsPerRoute: number): Promise<Record<number, number>> {
  const ledger = await Ledger.open({ config });
  const app = buildServer(ledger, { adminToken: TOKEN, rateLimit: 0 });
  const routes = collectRoutes(app);
  const statuses: Record<number, number> = {};
  try {
    await ledger.register({ id: 'house-1', name: 'Old Mill', address: '1 River Lane', owner: 'alice' });
    if (config.database.kind !== 'off') await ledger.backupToDatabase({ name: 'seed backup', adminId: 1 });
    await app.ready();
    expect(routes.length).toBeGreaterThanOrEqual(14);
    for (const [i, route] of routes.entries()) {
      await fc.assert(
        fc.asyncProperty(
          fuzzRequest(route, { token: TOKEN, knownIds: ['house-1', 'house-2', 'nope'] }),
          async (req) => {
            const res = await app.inject({
              method: req.method as 'GET',
              url: req.url,
              headers: req.headers,
              ...(req.payload === undefined ? {} : { payload: req.payload }),
            });
            statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
            const what = `${describeRequest(req)} -> ${res.statusCode} ${res.body.slice(0, 300)}`;
            expect(res.statusCode, what).toBeLessThan(500);
            expect(res.body, what).not.toMatch(STACK);
            if (res.statusCode >= 400 && req.method !== 'HEAD')
              expect(res.json().error.code, what).toEqual(expect.any(String));
          },
        ),
        { seed: SEED + i, numRuns: runsPerRoute, endOnFailure: true },
      );
    }
    expect(await ledger.verify()).toEqual({ ok: true, totalBlocks: ledger.head.index + 1, headHash: ledger.head.hash });
    // Nothing a request put in a backup record (a name, an admin id) may stop it from matching its seal.
    if (config.database.kind !== 'off') expect(await ledger.verifyBackup()).toMatchObject({ ok: true });
    return statuses;
  } finally {
    await app.close();
    await ledger.close();
  }
}

describe('fuzzing every route', () => {
  it('a local-only ledger never answers 5xx and still verifies', async () => {
    const statuses = await fuzz({ ...loadConfig({ LEDGER_DB: 'off' }), dataDir: join(dir, 'local') }, 60);
    // The fuzz reaches handlers, not only the guards in front of them.
    expect(Object.keys(statuses).map(Number)).toEqual(expect.arrayContaining([200, 201, 400, 401, 404]));
  });

  it('a ledger replicating to PostgreSQL never answers 5xx (no driver error leaks) and still verifies', async () => {
    const statuses = await fuzz(ledgerConfig(join(dir, 'pg'), db.url), 100);
    expect(Object.keys(statuses).map(Number)).toEqual(expect.arrayContaining([200, 201, 400, 401, 404]));
  });
});
