import { describe, expect, it } from 'vitest';
import { renderStatusPage, type StatusView } from '../../src/server/status-html.js';

const status: StatusView['status'] = {
  ledgerId: 'l1',
  height: 7,
  headHash: 'ab'.repeat(32),
  totalBlocks: 8,
  totalProperties: 3,
  keyId: 'k1',
  tiers: [
    { name: 'db', state: 'lagging', height: 4 },
    { name: 'ipfs', state: 'off', height: 0 },
  ],
  fork: null,
  writer: { mode: 'lock', role: 'writer' },
  verification: 'full',
  degraded: false,
};
const view = (s: Partial<StatusView['status']>, backups: StatusView['backups'] = null): string =>
  renderStatusPage({ status: { ...status, ...s }, backups, refreshSeconds: 10, now: new Date(0) });

describe('renderStatusPage', () => {
  it('says how far each tier is behind the head, and nothing for a tier that is off', () => {
    const html = view({});
    expect(html).toContain('<td>db</td><td class="state-lagging">lagging</td><td>4</td><td>3 blocks</td>');
    expect(html).toContain('<td>ipfs</td><td class="state-off">off</td><td></td><td></td>');
  });

  it('escapes every value it shows', () => {
    const html = view({}, [
      {
        tier: 'db',
        rows: [{ id: '1', name: '<script>x</script>"', kind: 'manual', createdAt: new Date(0), height: 1 }],
      },
    ]);
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;x&lt;/script&gt;&quot;');
  });

  it('renders drills only when the status has them', () => {
    expect(view({})).not.toContain('id="drills"');
    const html = view({ drills: [{ tier: 'db', verdict: 'ok', at: '2026-01-01T00:00:00Z' }] });
    expect(html).toContain('<section id="drills">');
    expect(html).toContain('<td>db</td><td>ok</td><td>2026-01-01T00:00:00Z</td>');
  });

  it('warns when the ledger is degraded or a fork was resolved', () => {
    const html = view({ degraded: true, fork: 'the sources diverged' });
    expect(html.match(/role="alert"/g)).toHaveLength(2);
    expect(html).toContain('DEGRADED (writes refused)');
  });
});
