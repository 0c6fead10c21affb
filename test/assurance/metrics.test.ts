/**
 * GET /metrics: Prometheus text that promtool accepts, with the numbers an operator watches, behind METRICS_TOKEN or
 * the admin token; and the README's example alert rules, which promtool must accept too.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, type TestContext } from 'vitest';
import { buildServer } from '../../src/server/app.js';
import { Ledger } from '../../src/service/ledger.js';
import { databasePerTest, ledgerConfig, propertyInput, tempDir } from '../support/pg.js';

const PROMTOOL = process.env.PROMTOOL_PATH ?? '/usr/bin/promtool';
const ADMIN = 'metrics-admin-token-0123456789';
const SCRAPER = 'metrics-scraper-token-0123456789';
const tdb = databasePerTest('metrics');

function promtool(args: string[], input?: string): { code: number | null; out: string } {
  const r = spawnSync(PROMTOOL, args, { input, encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/**
 * needPromtool goes on only where promtool is: an independent judge from Debian's prometheus package (.ci/run installs
 * it). Without it there is nothing to judge with, so the test skips, saying why; but in CI (CI set) it fails, so a
 * pipeline that lost promtool cannot go green without these checks.
 */
function needPromtool(ctx: TestContext, what: string): void {
  if (existsSync(PROMTOOL)) return;
  const why = `${what} needs ${PROMTOOL} (Debian's prometheus package: apt-get install prometheus), which is absent`;
  if (process.env.CI) throw new Error(`${why}; CI is set, so this fails rather than skips`);
  console.warn(`skipping ${what}: ${why}`);
  ctx.skip(why);
}

/** sample reads one sample's value from the exposition text, or null when absent. */
function sample(text: string, series: string): number | null {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : null;
}

describe('GET /metrics', () => {
  it('answers only the metrics or admin token, with the save, tier, drill and startup numbers, and passes promtool', async (ctx) => {
    const ledger = await Ledger.open({ config: ledgerConfig(tdb.dataDir(), tdb.db.url) });
    const app = buildServer(ledger, { adminToken: ADMIN, metricsToken: SCRAPER });
    try {
      for (let i = 0; i < 3; i++) await ledger.register(propertyInput(`m-${i}`, i));
      await ledger.register(propertyInput('m-0', 0)).catch(() => {});
      await ledger.drill({ tier: 'db' });

      const get = (token?: string) =>
        app.inject({ url: '/metrics', headers: token ? { authorization: `Bearer ${token}` } : {} });
      expect((await get()).statusCode).toBe(401);
      expect((await get('wrong-token')).statusCode).toBe(401);
      expect((await get(ADMIN)).statusCode).toBe(200);
      const res = await get(SCRAPER);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      // The scraper's token opens nothing else.
      expect(
        (await app.inject({ url: '/admin/backups', headers: { authorization: `Bearer ${SCRAPER}` } })).statusCode,
      ).toBe(401);

      const text = res.body;
      expect(sample(text, 'pawledger_saves_total{outcome="ok"}')).toBe(3);
      expect(sample(text, 'pawledger_saves_total{outcome="rejected"}')).toBe(1);
      expect(sample(text, 'pawledger_save_duration_seconds_count')).toBe(4);
      expect(sample(text, 'pawledger_chain_height')).toBe(3);
      expect(sample(text, 'pawledger_tier_lag_blocks{tier="db"}')).toBe(0);
      expect(sample(text, 'pawledger_tier_stale{tier="db"}')).toBe(0);
      expect(sample(text, 'pawledger_tier_sent_bytes_total{tier="db"}')).toBeGreaterThan(0);
      expect(sample(text, 'pawledger_tier_errors_total{tier="db"}')).toBe(0);
      expect(sample(text, 'pawledger_drill_last_success{tier="db"}')).toBe(1);
      expect(sample(text, 'pawledger_drills_total{tier="db",outcome="ok"}')).toBe(1);
      expect(sample(text, 'pawledger_drill_last_timestamp_seconds{tier="db"}')).toBeGreaterThan(Date.now() / 1000 - 60);
      expect(sample(text, 'pawledger_startup_restore_source{source="genesis"}')).toBe(1);
      expect(sample(text, 'pawledger_writer_role{role="writer"}')).toBe(1);
      expect(sample(text, 'pawledger_degraded')).toBe(0);
      expect(sample(text, 'process_cpu_seconds_total')).not.toBeNull();
      expect(text).not.toContain(tdb.db.name);

      needPromtool(ctx, 'promtool check metrics');
      const checked = promtool(['check', 'metrics'], text);
      expect(checked.out).toBe('');
      expect(checked.code).toBe(0);
    } finally {
      await app.close();
      await ledger.close();
    }
  });
});

describe("the README's example alert rules", () => {
  it('pass promtool check rules', async (ctx) => {
    needPromtool(ctx, 'promtool check rules');
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const monitoring = readme.slice(readme.indexOf('## Monitoring'));
    const rules = /```yaml\n([\s\S]*?)```/.exec(monitoring)?.[1];
    expect(rules).toContain('pawledger_drill_last_success');
    const { dir, cleanup } = await tempDir('rules');
    try {
      const file = join(dir, 'rules.yml');
      await writeFile(file, rules!);
      const checked = promtool(['check', 'rules', file]);
      expect(checked.out).toMatch(/SUCCESS: \d+ rules found/);
      expect(checked.code).toBe(0);
    } finally {
      await cleanup();
    }
  });
});
