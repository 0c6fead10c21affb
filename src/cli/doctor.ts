import type { Command } from 'commander';
import { runDoctor } from '../doctor/checks.js';
import type { CliContext } from './context.js';
import { printJson } from './output.js';

/** registerDoctorCommand adds `pawledger doctor`: exit 1 when any check fails. */
export function registerDoctorCommand(program: Command, ctx: () => CliContext, setExit: (code: number) => void): void {
  program
    .command('doctor')
    .description('check the key, database, IPFS, Render and local store, each with ok / warn / fail and a fix')
    .option('--write', 'also pin and unpin a tiny file on IPFS, proving the key may pin')
    .option('--json', 'print JSON')
    .action(async (o: { write?: boolean; json?: boolean }) => {
      const c = ctx();
      const checks = await runDoctor(c.config, c.log, { write: o.write ?? false });
      if (o.json) printJson({ ok: !checks.some((x) => x.status === 'fail'), checks });
      else {
        for (const x of checks) {
          process.stdout.write(`${x.status.toUpperCase().padEnd(4)}  ${x.name}: ${x.detail}\n`);
          if (x.fix && x.status !== 'ok') process.stdout.write(`      fix: ${x.fix}\n`);
        }
      }
      if (checks.some((x) => x.status === 'fail')) setExit(1);
    });
}
