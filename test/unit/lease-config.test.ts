/** LEDGER_LEASE and its timings: on where overlapping deploys happen (Render with a shared database), refused where it cannot work. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

const URL = 'postgresql://postgres@127.0.0.1:5432/x';

describe('LEDGER_LEASE', () => {
  it('defaults to on only on Render with DATABASE_URL (auto)', () => {
    expect(loadConfig({ RENDER: 'true', DATABASE_URL: URL }).lease).toBe(true);
    expect(loadConfig({ DATABASE_URL: URL }).lease).toBe(false);
    expect(loadConfig({ RENDER: 'true' }).lease).toBe(false);
    expect(loadConfig({ RENDER: 'true', DATABASE_URL: URL, LEDGER_LEASE: 'off' }).lease).toBe(false);
    expect(loadConfig({ DATABASE_URL: URL, LEDGER_LEASE: 'on' }).lease).toBe(true);
  });

  it('refuses LEDGER_LEASE=on without DATABASE_URL, and unknown values, naming the variable', () => {
    expect(() => loadConfig({ LEDGER_LEASE: 'on' })).toThrow(ConfigError);
    expect(() => loadConfig({ LEDGER_LEASE: 'on' })).toThrow(/LEDGER_LEASE=on needs DATABASE_URL/);
    expect(() => loadConfig({ DATABASE_URL: URL, LEDGER_LEASE: 'yes' })).toThrow(
      /LEDGER_LEASE must be on, off or auto/,
    );
    expect(() => loadConfig({ LEDGER_LEASE_TTL_MS: '10' })).toThrow(
      /LEDGER_LEASE_TTL_MS must be an integer between 1000/,
    );
  });

  it('reads the lease TTL and the follow interval', () => {
    const c = loadConfig({ DATABASE_URL: URL, LEDGER_LEASE_TTL_MS: '4000', LEDGER_FOLLOW_MS: '250' });
    expect([c.leaseTtlMs, c.followMs]).toEqual([4000, 250]);
    expect([loadConfig({}).leaseTtlMs, loadConfig({}).followMs]).toEqual([15_000, 1000]);
  });
});
