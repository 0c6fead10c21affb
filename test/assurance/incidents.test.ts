/** incidentsOf: which states of a ledger are incidents an operator is alerted to. */
import { describe, expect, it } from 'vitest';
import { incidentsOf } from '../../src/service/alerts.js';
import type { TierAssurance } from '../../src/service/assurance.js';
import type { LedgerStatus } from '../../src/service/ledger.js';

const NOW = Date.parse('2026-12-01T12:00:00Z');

function status(tiers: Partial<TierAssurance>[], extra: Partial<LedgerStatus> = {}): LedgerStatus {
  return {
    ledgerId: 'l',
    height: 10,
    fork: null,
    degraded: null,
    assurance: {
      tiers: tiers.map((t) => ({
        tier: 'db',
        lagBlocks: 0,
        lagSeconds: 0,
        stale: false,
        lastBackupAt: null,
        failingSince: null,
        lastDrill: null,
        ...t,
      })),
      maxLagBlocks: 1000,
      maxLagSeconds: 3600,
      drillIntervalMs: 0,
    },
    ...extra,
  } as LedgerStatus;
}

describe('incidentsOf', () => {
  it('is empty for healthy tiers', () => {
    expect(incidentsOf(status([{ tier: 'db' }, { tier: 'ipfs' }]), 600_000, NOW)).toEqual([]);
  });

  it('names a tier failing past the threshold, not before', () => {
    const since = (ms: number) => new Date(NOW - ms).toISOString();
    expect(incidentsOf(status([{ tier: 'ipfs', failingSince: since(599_000) }]), 600_000, NOW)).toEqual([]);
    expect(incidentsOf(status([{ tier: 'ipfs', failingSince: since(601_000) }]), 600_000, NOW)).toMatchObject([
      { key: 'tier_failing:ipfs', kind: 'tier_failing', tier: 'ipfs' },
    ]);
  });

  it('names a fork, a degraded ledger, a stale tier and a failed drill, each once', () => {
    const found = incidentsOf(
      status(
        [
          {
            tier: 'db',
            stale: true,
            lastDrill: {
              ledgerId: 'l',
              tier: 'db',
              backupId: '7',
              height: 9,
              durationMs: 5,
              outcome: 'failed',
              reason: 'block 3 does not decrypt',
              startedAt: new Date(NOW).toISOString(),
            },
          },
        ],
        { fork: 'local and db diverged at block 4', degraded: { reason: 'replay failed', since: '' } },
      ),
      600_000,
      NOW,
    );
    expect(found.map((i) => i.key)).toEqual(['drill_failed:db', 'tier_stale:db', 'fork', 'degraded']);
    expect(found[0]!.summary).toContain('block 3 does not decrypt');
  });
});
