import type { Command } from 'commander';
import type { RotationReport } from '../engine/rotation.js';
import type { CliContext } from './context.js';
import { printJson } from './output.js';
import { withProgressBars } from './progress.js';
import { changeLedger } from './through-server.js';

// A place's objects by key id, e.g. "1200 under 1a2b3c4d (active), 30 under 5e6f7a8b".
function keysText(keys: Record<string, number>, active: string): string {
  const parts = Object.entries(keys).map(([id, n]) => `${n} under ${id}${id === active ? ' (active)' : ''}`);
  return parts.join(', ') || 'no objects';
}

/** describeKeys is the keyring's part of `pawledger status`: each place's objects by key id, and keys that can go. */
export function describeKeys(report: RotationReport): [string, string][] {
  const keys = (k: Record<string, number>) => keysText(k, report.activeKeyId);
  return [
    ...report.tiers.map((t): [string, string] => [
      `keys ${t.tier}`,
      t.error ? `not counted: ${t.error}` : keys(t.keys),
    ]),
    ...report.droppable.map((id): [string, string] => [
      `key ${id}`,
      'no object needs it any more: drop it from LEDGER_PREVIOUS_KEYS',
    ]),
  ];
}

/** describeRotation is the report as lines for a person: each place's objects by key id, and what is left to do. */
export function describeRotation(report: RotationReport): string[] {
  const lines = report.tiers.map((t) => {
    const done = t.resealed ? `; ${t.resealed} re-sealed now` : '';
    return `${t.tier}: ${keysText(t.keys, report.activeKeyId)}${done}${t.error ? `; ${t.error}` : ''}`;
  });
  if (report.state === 'done' || (report.previousKeyIds.length > 0 && report.droppable.length > 0)) {
    for (const id of report.droppable)
      lines.push(`key ${id}: no object needs it any more; drop it from LEDGER_PREVIOUS_KEYS`);
  }
  if (report.state === 'incomplete')
    lines.push(
      'not done: objects are still under a previous key; run `pawledger rotate-key` again once every tier answers',
    );
  return lines;
}

/**
 * registerRotateKeyCommand adds `pawledger rotate-key [--json]`: re-seal every object still under a key of
 * LEDGER_PREVIOUS_KEYS with LEDGER_ENCRYPTION_KEY, in the local store and every tier, in the foreground with progress;
 * exit 1 unless nothing is left under an old key. Beside a running serve it goes through the server's control channel
 * (POST /admin/rotate-key), joining the rotation the server runs in the background.
 */
export function registerRotateKeyCommand(
  program: Command,
  ctx: () => CliContext,
  setExit: (code: number) => void,
): void {
  program
    .command('rotate-key')
    .description(
      're-seal every object still under a key of LEDGER_PREVIOUS_KEYS with LEDGER_ENCRYPTION_KEY, in every tier (resumable; exit 1 unless done)',
    )
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const c = ctx();
      const report = await withProgressBars(o, () =>
        changeLedger<RotationReport>(c, { method: 'POST', url: '/admin/rotate-key', body: {} }, (l) => l.rotateKey()),
      );
      if (o.json) printJson(report);
      else process.stdout.write(`${describeRotation(report).join('\n')}\n`);
      if (report.state !== 'done') setExit(1);
    });
}
