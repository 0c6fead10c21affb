/**
 * drill: what a restore drill costs, and whether saves and the event loop go on beside it.
 *
 *   node --import tsx bench/drill.ts [--blocks=20000] [--properties=2000] [--no-saves]
 *
 * It creates a database on the PostgreSQL server at BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/
 * postgres), grows a ledger to --blocks blocks through Ledger.register (group-committed), then runs one drill of the
 * database tier while a timer measures the event loop's worst delay and saves keep arriving one after another.
 * It prints the drill's duration, the RSS before and at its peak, the worst event-loop delay and the saves made meanwhile.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.js';
import { Ledger } from '../src/service/ledger.js';
import { createDatabase, DEFAULT_ADMIN_URL, databaseUrl, dropDatabase } from './lib/pg.js';

const arg = (name: string, fallback: number) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const BLOCKS = arg('blocks', 20_000);
const PROPERTIES = arg('properties', 2000);
const SAVES = !process.argv.includes('--no-saves');

const admin = process.env.BENCH_PG_URL ?? DEFAULT_ADMIN_URL;
const name = `pl_bench_drill_${process.pid}`;
const dir = await mkdtemp(join(tmpdir(), 'pl-bench-drill-'));
await createDatabase(admin, name);
try {
  const config = loadConfig({
    DATABASE_URL: databaseUrl(admin, name),
    LEDGER_DATA_DIR: join(dir, 'data'),
    LEDGER_ENCRYPTION_KEY: 'a1'.repeat(32),
    LOG_FORMAT: 'json',
  });
  const ledger = await Ledger.open({ config });
  const t0 = performance.now();
  for (let i = 0; i < BLOCKS; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, BLOCKS - i) }, (_, k) => {
        const n = i + k;
        const id = `p-${n % PROPERTIES}`;
        return n < PROPERTIES
          ? ledger.register({ id, name: `Property ${n}`, address: `${n} Bench Road`, owner: 'o0' })
          : ledger.update(id, { attributes: { n } });
      }),
    );
  }
  console.log(`grew ${BLOCKS} blocks over ${PROPERTIES} properties in ${Math.round(performance.now() - t0)} ms`);

  const mib = (n: number) => `${Math.round(n / 1024 / 1024)} MiB`;
  // The same load (saves one after another, an event-loop probe) without a drill, then beside one.
  const measure = async (during: () => Promise<unknown>) => {
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    let worstDelay = 0;
    let last = performance.now();
    const probe = setInterval(() => {
      const now = performance.now();
      worstDelay = Math.max(worstDelay, now - last - 10);
      last = now;
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    }, 10);
    let saving = true;
    let saves = 0;
    const saver = (async () => {
      while (saving && SAVES) {
        await ledger.update(`p-${saves % PROPERTIES}`, { attributes: { during: saves } });
        saves++;
      }
    })();
    const started = performance.now();
    const result = await during();
    const ms = performance.now() - started;
    saving = false;
    await saver;
    clearInterval(probe);
    return { result, ms, saves, rssBefore, rssPeak, worstDelay };
  };
  const base = await measure(() => new Promise((r) => setTimeout(r, 2000)));
  console.log(
    `without a drill: ${Math.round((base.saves / base.ms) * 1000)} saves/s; worst event-loop delay ${Math.round(base.worstDelay)} ms; RSS peak ${mib(base.rssPeak)}`,
  );
  const run = await measure(() => ledger.drill({ tier: 'db' }));
  const d = (run.result as Awaited<ReturnType<Ledger['drill']>>).drills[0]!;
  console.log(
    `drill ${d.outcome} of ${(d.height ?? 0) + 1} blocks in ${d.durationMs} ms; RSS ${mib(run.rssBefore)} -> peak ${mib(run.rssPeak)}; worst event-loop delay ${Math.round(run.worstDelay)} ms; ${Math.round((run.saves / run.ms) * 1000)} saves/s meanwhile`,
  );
  await ledger.close();
} finally {
  await dropDatabase(admin, name);
  await rm(dir, { recursive: true, force: true });
}
