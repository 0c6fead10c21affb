/**
 * Alerts reach a webhook (a local receiver here) once when an incident starts and once when it clears, never once per
 * save, retried when the receiver fails, and never with the webhook's URL in the log.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertMonitor } from '../../src/service/alerts.js';
import { Ledger } from '../../src/service/ledger.js';
import { captureLogger, databasePerTest, ledgerConfig, propertyInput, waitFor } from '../support/pg.js';

const tdb = databasePerTest('alerts');
const SECRET_PATH = '/services/T000/B000/s3cr3t-webhook-path';

interface Received {
  text: string;
  status: 'firing' | 'resolved';
  kind: string;
  tier: string | null;
  incident: string;
}

/** receiver answers the first `failFirst` POSTs 503, then 200, keeping each JSON body it accepted. */
async function receiver(
  failFirst: number,
): Promise<{ url: string; got: Received[]; attempts: () => number; server: Server }> {
  const got: Received[] = [];
  let attempts = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      attempts++;
      if (attempts <= failFirst || req.url !== SECRET_PATH) {
        res.writeHead(503).end();
        return;
      }
      got.push(JSON.parse(body) as Received);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}${SECRET_PATH}`, got, attempts: () => attempts, server };
}

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const flip = (height: number) =>
  tdb.db.sql(`UPDATE ledger_blocks SET sealed = set_byte(sealed, 9, get_byte(sealed, 9) # 1) WHERE height = ${height}`);

describe('alerts to LEDGER_ALERT_WEBHOOK_URL', () => {
  it('one alert when a failed drill starts an incident (retried past a 503), none per save, one when it clears', async () => {
    const hook = await receiver(1);
    closers.push(() => new Promise((r) => hook.server.close(r)));
    const { logger, lines } = captureLogger();
    const ledger = await Ledger.open({ config: ledgerConfig(tdb.dataDir(), tdb.db.url), logger });
    closers.push(() => ledger.close());
    const monitor = new AlertMonitor(ledger, {
      url: hook.url,
      checkMs: 50,
      failingMs: 60_000,
      log: logger,
      webhook: { baseMs: 20 },
    });
    monitor.start();
    closers.push(() => monitor.stop());

    for (let i = 0; i < 3; i++) await ledger.register(propertyInput(`a-${i}`, i));
    expect((await ledger.drill()).ok).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(hook.attempts()).toBe(0);

    await flip(2);
    expect((await ledger.drill()).ok).toBe(false);
    await waitFor('the firing alert', () => hook.got.length === 1);
    expect(hook.got[0]).toMatchObject({
      status: 'firing',
      kind: 'drill_failed',
      tier: 'db',
      incident: 'drill_failed:db',
    });
    expect(hook.got[0]!.text).toMatch(/restore drill of tier db failed: .*\bblock 2\b/);
    expect(hook.attempts()).toBe(2); // the 503, then the delivery

    // Saves and checks go on: the incident is announced once.
    for (let i = 3; i < 8; i++) await ledger.register(propertyInput(`a-${i}`, i));
    await new Promise((r) => setTimeout(r, 300));
    expect(hook.got).toHaveLength(1);

    await flip(2);
    expect((await ledger.drill()).ok).toBe(true);
    await waitFor('the resolved alert', () => hook.got.length === 2);
    expect(hook.got[1]).toMatchObject({ status: 'resolved', kind: 'drill_failed', tier: 'db' });
    expect(hook.got[1]!.text).toMatch(/resolved/);

    expect(lines.some((l) => l.includes('Alert sent (firing)'))).toBe(true);
    expect(lines.join('\n')).not.toContain('s3cr3t');
  });
});
