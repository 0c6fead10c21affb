import { describe, expect, it } from 'vitest';
import type { AssuranceStatus } from '../../src/service/assurance.js';
import { renderProofCheckPage, renderStatusPage, type StatusView } from '../../src/server/status-html.js';

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

  const assurance: AssuranceStatus = {
    maxLagBlocks: 100,
    maxLagSeconds: 600,
    drillIntervalMs: 6 * 3_600_000,
    tiers: [
      {
        tier: 'db',
        lagBlocks: 3,
        lagSeconds: 12,
        stale: false,
        lastBackupAt: '2026-01-01T00:00:05.000Z',
        failingSince: null,
        lastDrill: {
          ledgerId: 'l1',
          tier: 'db',
          backupId: 'db-backup-id-42',
          height: 4,
          durationMs: 1234,
          outcome: 'ok',
          reason: null,
          startedAt: '2026-01-01T00:00:10.000Z',
        },
      },
      {
        tier: 'dir',
        lagBlocks: 7,
        lagSeconds: 900,
        stale: true,
        lastBackupAt: null,
        failingSince: '2026-01-01T00:01:00.000Z',
        lastDrill: {
          ledgerId: 'l1',
          tier: 'dir',
          backupId: null,
          height: null,
          durationMs: 50,
          outcome: 'failed',
          reason: 'the tier offered no backup',
          startedAt: '2026-01-01T00:02:00.000Z',
        },
      },
      {
        tier: 's3',
        lagBlocks: 0,
        lagSeconds: 0,
        stale: false,
        lastBackupAt: null,
        failingSince: null,
        lastDrill: null,
      },
    ],
  };

  it("shows each tier's newest drill and its freshness from the full status", () => {
    const html = view({ assurance }, []);
    expect(html).toContain('<table id="drills">');
    expect(html).toContain(
      '<tr><td>db</td><td>2026-01-01 00:00:10</td><td class="drill-ok">ok</td><td>4</td><td>1.2 s</td><td></td></tr>',
    );
    expect(html).toContain(
      '<tr><td>dir</td><td>2026-01-01 00:02:00</td><td class="drill-failed">failed</td><td></td><td>0.1 s</td><td>the tier offered no backup</td></tr>',
    );
    expect(html).toContain('<tr><td>s3</td><td colspan="5" class="note">none yet</td></tr>');
    expect(html).toContain(
      '<tr><td>db</td><td>3 blocks</td><td>12 s</td><td>fresh</td><td>2026-01-01 00:00:05</td><td></td></tr>',
    );
    expect(html).toContain(
      '<tr><td>dir</td><td>7 blocks</td><td>900 s</td><td class="stale">STALE</td><td></td><td>2026-01-01 00:01:00</td></tr>',
    );
    expect(html).toContain('Stale past 100 blocks or 600 s behind; scheduled drills every 6 h.');
  });

  it('shows no drill, freshness or backup without the token, only that the token shows them', () => {
    // The route gives the page the public status (no assurance) and no backups without the token.
    const html = view({}, null);
    expect(html).toContain('<section id="assurance">');
    expect(html).toMatch(/freshness and restore drills are shown with the admin token/);
    expect(html).not.toContain('id="drills"');
    expect(html).not.toContain('id="freshness"');
    for (const leak of ['db-backup-id-42', 'the tier offered no backup', '2026-01-01'])
      expect(html).not.toContain(leak);
  });

  it('links the proof checker, and runs nothing itself', () => {
    const html = view({ assurance }, []);
    expect(html).toContain('<a href="/proof-check" id="proof-check-link">/proof-check</a>');
    expect(html).not.toMatch(/<script/i);
  });

  it('renders the proof checker without refresh, with its module from the server and the public root', () => {
    const html = renderProofCheckPage({ ledgerId: 'l1', height: 7, root: 'cd'.repeat(32) });
    expect(html).not.toContain('http-equiv="refresh"');
    expect(html.match(/<script[^>]*>/g)).toEqual(['<script type="module" src="/proof-check.js">']);
    expect(html).toContain(`<code id="current-root">${'cd'.repeat(32)}</code>`);
    expect(html).toContain('<fieldset id="proof-fields" disabled>');
    expect(html).toMatch(/<noscript>.*pawledger proof verify FILE/s);
    expect(renderProofCheckPage({ ledgerId: 'l1', height: 7, root: null })).not.toContain('current-root');
  });

  it('warns when the ledger is degraded or a fork was resolved', () => {
    const html = view({ degraded: true, fork: 'the sources diverged' });
    expect(html.match(/role="alert"/g)).toHaveLength(2);
    expect(html).toContain('DEGRADED (writes refused)');
  });
});
