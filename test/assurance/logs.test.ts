/**
 * Logs that scale: under a busy ledger the per-save lines are logged in full at info only for the first few of each
 * window, the rest at debug and summarized at info; health checks and metrics scrapes are logged at debug.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { buildServer } from '../../src/server/app.js';
import { Ledger } from '../../src/service/ledger.js';
import { captureLogger, databasePerTest, ledgerConfig, propertyInput, waitFor } from '../support/pg.js';

const tdb = databasePerTest('logs');
const INFO = 30;
const DEBUG = 20;

const parsed = (lines: string[]) => lines.map((l) => JSON.parse(l) as { level: number; msg: string; url?: string });

describe('per-save log lines under load', () => {
  it('keeps the first LOG_SAVE_LINES of a window at info, sends the rest to debug and summarizes them at info', async () => {
    const { logger, lines } = captureLogger();
    const ledger = await Ledger.open({
      config: ledgerConfig(tdb.dataDir(), tdb.db.url, { LOG_SAVE_LINES: '3', LOG_SUMMARY_INTERVAL: '4s' }),
      logger,
    });
    try {
      const from = lines.length;
      for (let i = 0; i < 20; i++) await ledger.register(propertyInput(`l-${i}`, i));
      const saved = () => parsed(lines.slice(from)).filter((l) => l.msg.startsWith('Ledger saved to local store'));
      expect(saved().filter((l) => l.level === INFO)).toHaveLength(3);
      expect(saved().filter((l) => l.level === DEBUG)).toHaveLength(17);
      await waitFor('the summary', () => saved().some((l) => l.msg.includes('more flushes')), 10_000);
      const summary = saved().find((l) => l.msg.includes('more flushes'))!;
      expect(summary.level).toBe(INFO);
      expect(summary.msg).toMatch(
        /^Ledger saved to local store: 17 more flushes in the last 4 s \(17 blocks, \d+ bytes, blocks 4\.\.20\)/,
      );
      const backedUp = parsed(lines.slice(from)).filter(
        (l) => l.level === INFO && l.msg.startsWith('Ledger backed up to database'),
      );
      expect(backedUp.length).toBeLessThanOrEqual(4);
    } finally {
      await ledger.close();
    }
  });
});

describe('health checks and scrapes', () => {
  it('are logged at debug, other requests at info', async () => {
    const ledger = await Ledger.open({ config: ledgerConfig(tdb.dataDir(), tdb.db.url) });
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) });
    const app = buildServer(ledger, { adminToken: 'logs-admin-token-0123456789', logger });
    try {
      for (let i = 0; i < 5; i++) expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
      await app.inject({ url: '/metrics', headers: { authorization: 'Bearer logs-admin-token-0123456789' } });
      await app.inject({ url: '/status' });
      const requests = parsed(lines).map(
        (l) => l as { level: number; msg: string; req?: { url: string }; url?: string },
      );
      const about = (path: string) => requests.filter((l) => (l.req?.url ?? l.url) === path);
      expect(about('/healthz')).toHaveLength(5);
      expect(about('/healthz').every((l) => l.level === DEBUG)).toBe(true);
      expect(about('/metrics').every((l) => l.level === DEBUG)).toBe(true);
      expect(about('/status').some((l) => l.level === INFO)).toBe(true);
    } finally {
      await app.close();
      await ledger.close();
    }
  });
});
