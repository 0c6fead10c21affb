/** The assurance variables: durations in words, 0 for off, and a clear error that never repeats a webhook URL. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';

describe('assurance configuration', () => {
  it('reads durations such as 6h, 30m and 0, with 6 h and 5 min by default', () => {
    expect(loadConfig({}).assurance).toMatchObject({
      drillIntervalMs: 6 * 3_600_000,
      drillFirstMs: 300_000,
      maxLagBlocks: 1000,
      maxLagSeconds: 3600,
      metricsToken: null,
      alertWebhookUrl: null,
    });
    expect(loadConfig({ LEDGER_DRILL_INTERVAL: '30m' }).assurance.drillIntervalMs).toBe(1_800_000);
    expect(loadConfig({ LEDGER_DRILL_INTERVAL: '0' }).assurance.drillIntervalMs).toBe(0);
    expect(loadConfig({ LEDGER_DRILL_FIRST: '200ms' }).assurance.drillFirstMs).toBe(200);
  });

  it('refuses a bad value naming the variable, and a bad webhook URL without repeating it', () => {
    expect(() => loadConfig({ LEDGER_DRILL_INTERVAL: 'often' })).toThrow(
      /LEDGER_DRILL_INTERVAL must be 0 or a duration/,
    );
    expect(() => loadConfig({ LEDGER_DRILL_INTERVAL: '5s' })).toThrow(/LEDGER_DRILL_INTERVAL/);
    expect(() => loadConfig({ LEDGER_MAX_LAG_BLOCKS: '-1' })).toThrow(/LEDGER_MAX_LAG_BLOCKS/);
    let message = '';
    try {
      loadConfig({ LEDGER_ALERT_WEBHOOK_URL: 'ftp://hooks.example/T0/s3cr3t' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/LEDGER_ALERT_WEBHOOK_URL must be an http or https URL/);
    expect(message).not.toContain('s3cr3t');
  });
});
