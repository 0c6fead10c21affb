/**
 * fuzz-http: a long fuzzing run of the HTTP API, the same hostile requests as test/server-fuzz.test.ts
 * (test/support/http-fuzz.ts) but tens of thousands of them, spread over every route the router has.
 *
 *   node --import tsx bench/fuzz-http.ts -- --requests 20000 [--seed 12] [--db off|postgres|both]
 *
 * Each run opens a real Ledger in a temporary folder (LEDGER_DB=off, and/or the database tier on a fresh database on
 * the PostgreSQL server at BENCH_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres, dropped at the end),
 * sends the requests through fastify's inject, and prints a table of response statuses per route and overall. Any
 * 5xx is listed with the request that caused it, and the run exits 1; so does a chain, or a newest database backup,
 * that no longer verifies.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { loadConfig, type Config } from '../src/config.js';
import { buildServer } from '../src/server/app.js';
import { Ledger } from '../src/service/ledger.js';
import { anyRouteRequest, describeRequest } from '../test/support/http-fuzz.js';
import { collectRoutes } from '../test/support/http-raw.js';
import { createDatabase, DEFAULT_ADMIN_URL, databaseUrl, dropDatabase } from './lib/pg.js';
import { table } from './lib/stats.js';

const TOKEN = 'fuzz-bench-token-0123456789abcdef';
const BATCH = 500;

interface Options {
  requests: number;
  seed: number;
  db: 'off' | 'postgres' | 'both';
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { requests: 20_000, seed: 12, db: 'both' };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split('=', 2);
    const next = () => inline ?? argv[++i] ?? '';
    if (flag === '--requests') opts.requests = Number(next());
    else if (flag === '--seed') opts.seed = Number(next());
    else if (flag === '--db') opts.db = next() as Options['db'];
    else if (flag !== '--')
      throw new Error(`unknown argument ${argv[i]}; use --requests N, --seed N, --db off|postgres|both`);
  }
  if (!(Number.isSafeInteger(opts.requests) && opts.requests > 0))
    throw new Error('--requests must be a positive integer');
  if (!['off', 'postgres', 'both'].includes(opts.db)) throw new Error('--db must be off, postgres or both');
  return opts;
}

interface RunResult {
  label: string;
  byRoute: Map<string, Map<number, number>>;
  failures: string[];
  verified: boolean;
  seconds: number;
}

async function run(label: string, config: Config, opts: Options): Promise<RunResult> {
  const ledger = await Ledger.open({ config });
  const app = buildServer(ledger, { adminToken: TOKEN, rateLimit: 0 });
  const routes = collectRoutes(app);
  // The route the router matched for the last response (requests are sent one at a time), for the table's rows.
  let matched: string | undefined;
  app.addHook('onResponse', async (request) => {
    matched = request.is404 ? undefined : request.routeOptions.url;
  });
  const byRoute = new Map<string, Map<number, number>>();
  const failures: string[] = [];
  const started = performance.now();
  try {
    await ledger.register({ id: 'house-1', name: 'Old Mill', address: '1 River Lane', owner: 'alice' });
    if (config.database.kind !== 'off') await ledger.backupToDatabase({ name: 'seed backup', adminId: 1 });
    await app.ready();
    const arbitrary = anyRouteRequest(routes, { token: TOKEN, knownIds: ['house-1', 'house-2', 'nope'] });
    // Generated a batch at a time: some bodies are 70 KB, and 20,000 of them at once would be a lot of memory.
    for (let sent = 0, batch = 0; sent < opts.requests; batch++) {
      const n = Math.min(BATCH, opts.requests - sent);
      for (const req of fc.sample(arbitrary, { numRuns: n, seed: opts.seed * 100_003 + batch })) {
        matched = undefined;
        const res = await app.inject({
          method: req.method as 'GET',
          url: req.url,
          headers: req.headers,
          ...(req.payload === undefined ? {} : { payload: req.payload }),
        });
        const route = matched ? `${req.method} ${matched}` : '(no route, or refused before routing)';
        const counts = byRoute.get(route) ?? new Map<number, number>();
        counts.set(res.statusCode, (counts.get(res.statusCode) ?? 0) + 1);
        byRoute.set(route, counts);
        if (res.statusCode >= 500 && failures.length < 20)
          failures.push(`${describeRequest(req)} -> ${res.statusCode} ${res.body.slice(0, 200)}`);
      }
      sent += n;
    }
    // The chain, and the newest database backup (whose record holds what requests named it), must still verify.
    const report = await ledger.verify();
    const backup = config.database.kind === 'off' ? { ok: true } : await ledger.verifyBackup();
    return {
      label,
      byRoute,
      failures,
      verified: report.ok && backup.ok,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await app.close();
    await ledger.close();
  }
}

function histogram(result: RunResult): string {
  const statuses = [...new Set([...result.byRoute.values()].flatMap((m) => [...m.keys()]))].sort((a, b) => a - b);
  const total = new Map<number, number>();
  const rows = [...result.byRoute.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([route, counts]) => {
      for (const [s, n] of counts) total.set(s, (total.get(s) ?? 0) + n);
      return [
        route,
        ...statuses.map((s) => String(counts.get(s) ?? '')),
        String([...counts.values()].reduce((a, b) => a + b, 0)),
      ];
    });
  const sum = [...total.values()].reduce((a, b) => a + b, 0);
  rows.push(['**all**', ...statuses.map((s) => `**${total.get(s) ?? 0}**`), `**${sum}**`]);
  return table(['route', ...statuses.map(String), 'requests'], rows, ['l', ...statuses.map(() => 'r' as const), 'r']);
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const dir = await mkdtemp(join(tmpdir(), 'pl-fuzz-http-'));
  const serverUrl = process.env.BENCH_PG_URL ?? DEFAULT_ADMIN_URL;
  const dbName = `pl_fuzz_${process.pid}`;
  const results: RunResult[] = [];
  try {
    if (opts.db !== 'postgres') {
      results.push(
        await run(
          'local only (LEDGER_DB=off)',
          { ...loadConfig({ LEDGER_DB: 'off', LEDGER_ENCRYPTION_KEY: 'a1'.repeat(32) }), dataDir: join(dir, 'local') },
          opts,
        ),
      );
    }
    if (opts.db !== 'off') {
      await createDatabase(serverUrl, dbName);
      const config = loadConfig({
        DATABASE_URL: databaseUrl(serverUrl, dbName),
        LEDGER_ENCRYPTION_KEY: 'a1'.repeat(32),
        LEDGER_DATA_DIR: join(dir, 'pg'),
        PG_TIMEOUT_MS: '5000',
      });
      results.push(await run('database tier on PostgreSQL', config, opts));
    }
  } finally {
    if (opts.db !== 'off') await dropDatabase(serverUrl, dbName).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
  let failed = false;
  for (const r of results) {
    process.stdout.write(
      `\n## ${r.label}: ${opts.requests} requests, seed ${opts.seed}, ${r.seconds.toFixed(1)} s\n\n${histogram(r)}\n\n`,
    );
    process.stdout.write(`chain (and newest database backup) verify afterwards: ${r.verified ? 'yes' : 'NO'}\n`);
    if (r.failures.length > 0) process.stdout.write(`5xx responses:\n${r.failures.map((f) => `- ${f}`).join('\n')}\n`);
    failed ||= !r.verified || r.failures.length > 0;
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
