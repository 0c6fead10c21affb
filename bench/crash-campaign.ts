/**
 * The crash campaign (project issue #12, item 9): SIGKILL `pawledger serve` at random moments during saves, restart
 * it on the same data folder, and prove that no acknowledged save is ever lost and that every tier verifies. The
 * work is done by test/support/crash-campaign.ts (test/durability/campaign.test.ts runs a short version in CI).
 *
 *   npm run crash-campaign -- --saves 1000 --mode all [--seed N] [--clients 4] [--tier-checks every-restart|end] [--keep]
 *
 * Needs PostgreSQL on 127.0.0.1:5432 (trust auth; each mode makes and drops its own database) and the built CLI
 * (the npm script builds first). Prints one table row per mode; exits 1 if any save was lost or anything failed.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MODE_TITLES, runCampaign, type CampaignMode, type CampaignResult } from '../test/support/crash-campaign.js';

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    saves: { type: 'string', default: '1000' },
    mode: { type: 'string', default: 'all' },
    seed: { type: 'string' },
    clients: { type: 'string', default: '4' },
    'tier-checks': { type: 'string', default: 'every-restart' },
    keep: { type: 'boolean', default: false },
    root: { type: 'string' },
  },
});

const usage = (msg: string): never => {
  process.stderr.write(`crash-campaign: ${msg}\n`);
  process.exit(2);
};
const saves = Number(values.saves);
if (!Number.isInteger(saves) || saves < 1) usage('--saves must be a positive integer');
const clients = Number(values.clients);
if (!Number.isInteger(clients) || clients < 1 || clients > 64) usage('--clients must be 1..64');
const modeArg = values.mode.toUpperCase();
const modes: CampaignMode[] =
  modeArg === 'ALL'
    ? ['A', 'B', 'C']
    : modeArg
        .split(',')
        .map((m) => (['A', 'B', 'C'].includes(m) ? (m as CampaignMode) : usage(`unknown mode ${m} (A, B, C or all)`)));
const tierChecks = values['tier-checks'] as 'every-restart' | 'end';
if (tierChecks !== 'every-restart' && tierChecks !== 'end') usage('--tier-checks must be every-restart or end');
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isInteger(seed) || seed < 0) usage('--seed must be a non-negative integer');
const root = values.root ?? (await mkdtemp(join(tmpdir(), 'pawledger-crash-campaign-')));

process.stdout.write(
  `crash campaign: seed ${seed}, ${saves} saves per mode, ${clients} clients, modes ${modes.join(', ')}, work in ${root}\n`,
);
const results: CampaignResult[] = [];
for (const [i, mode] of modes.entries()) {
  // Each mode gets its own seed from the run's, so `--mode B --seed S+1` replays mode B of `--mode all --seed S`.
  results.push(
    await runCampaign({
      mode,
      saves,
      seed: seed + i,
      root,
      clients,
      tierChecks,
      keep: values.keep,
      log: (line) => process.stdout.write(`${line}\n`),
    }),
  );
}

const rows = [
  [
    'mode',
    'seed',
    'kills (saves+startup)',
    'starts',
    'acked saves',
    'lost saves',
    'verify failures',
    'server crashes',
    'other problems',
    'cut in flight (found saved)',
    'refused as meant',
    'faults injected',
    'slowest tier catch-up',
    'final height',
    'duration (starting, checks, tiers, saving)',
  ],
  ...results.map((r) => [
    MODE_TITLES[r.mode],
    String(r.seed),
    `${r.kills} (${r.saveKills}+${r.startupKills})`,
    String(r.starts),
    String(r.acked),
    String(r.lost.length),
    String(r.verifyFailures.length),
    String(r.crashes),
    String(r.problems.length - r.crashes),
    `${r.doubtful} (${r.doubtfulSaved})`,
    String(r.refused),
    Object.entries(r.faults)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || '-',
    `${(r.tierLagMs / 1000).toFixed(1)} s`,
    String(r.height),
    `${(r.durationMs / 1000).toFixed(1)} s (${[r.spentMs.starting, r.spentMs.checks, r.spentMs.tiers, r.spentMs.saving].map((ms) => (ms / 1000).toFixed(1)).join(', ')})`,
  ]),
];
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
const line = (r: string[]) => `| ${r.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`;
process.stdout.write(
  `\n${line(rows[0]!)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n${rows.slice(1).map(line).join('\n')}\n`,
);

let failed = false;
for (const r of results) {
  const all = [
    ...r.lost.map((l) => `LOST: ${l}`),
    ...r.verifyFailures.map((v) => `VERIFY: ${v}`),
    ...r.problems.map((p) => `PROBLEM: ${p}`),
  ];
  if (all.length === 0) continue;
  failed = true;
  process.stdout.write(
    `\nmode ${r.mode} (seed ${r.seed}), work folder kept: ${r.workDir}\n${all.map((a) => `  ${a}`).join('\n')}\n`,
  );
}
process.stdout.write(failed ? '\nFAILED\n' : '\nok: no acknowledged save lost, every tier verified\n');
process.exit(failed ? 1 : 0);
