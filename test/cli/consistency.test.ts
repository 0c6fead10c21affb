import { spawnSync } from 'node:child_process';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { commandPath, EXAMPLES } from '../../src/cli/examples.js';
import { buildProgram, EXIT } from '../../src/cli/main.js';
import { BIN } from '../support/serve-process.js';

// Commands whose output is not data: serve logs, and runs until stopped.
const NO_DATA = new Set(['serve']);

function leaves(command: Command): Command[] {
  return command.commands.length ? command.commands.flatMap(leaves) : [command];
}

function helpOf(command: Command): string {
  let out = '';
  command.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  command.outputHelp();
  return out;
}

// The command an example runs, found by its words, and the options it gives.
function resolve(program: Command, example: string): { command: Command; flags: string[] } {
  const words = example.split(/\s+/);
  const start = words.indexOf('pawledger');
  let command = program;
  for (const word of words.slice(start + 1)) {
    const sub = command.commands.find((c) => c.name() === word);
    if (!sub) break;
    command = sub;
  }
  return { command, flags: words.filter((w) => w.startsWith('--')) };
}

describe('the command line is consistent', () => {
  const program = buildProgram();
  const commands = leaves(program);

  it('has the commands this test reads', () => {
    expect(commands.length).toBeGreaterThanOrEqual(18);
  });

  it('every command that prints data takes --json', () => {
    for (const c of commands.filter((c) => !NO_DATA.has(commandPath(c))))
      expect(
        c.options.map((o) => o.long),
        commandPath(c),
      ).toContain('--json');
  });

  it("every command's --help has examples, each naming a command and options that exist", () => {
    for (const c of commands) {
      const path = commandPath(c);
      expect(EXAMPLES[path], `${path} has no examples`).toBeDefined();
      expect(helpOf(c)).toContain(`Examples:\n  $ ${EXAMPLES[path]![0]}`);
      for (const example of EXAMPLES[path]!) {
        const { command, flags } = resolve(program, example);
        expect(commandPath(command), example).toBe(path);
        for (const flag of flags)
          expect(
            command.options.map((o) => o.long),
            `${example}: ${flag}`,
          ).toContain(flag);
      }
    }
  });

  it('exits as the main --help documents: 0 done, 2 usage error', () => {
    const run = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
    const help = run(['--help']);
    expect(help.status).toBe(EXIT.ok);
    expect(help.stdout).toContain('Exit codes:\n  0  done');
    expect(help.stdout).toContain('  2  usage error');
    expect(run(['no-such-command']).status).toBe(EXIT.usage);
    expect(run(['verify', '--no-such-option']).status).toBe(EXIT.usage);
    expect(run(['keygen', '--json']).status).toBe(EXIT.ok);
    expect(JSON.parse(run(['keygen', '--json']).stdout).key).toMatch(/^[A-Za-z0-9+/=]{40,}$/);
  });
});
