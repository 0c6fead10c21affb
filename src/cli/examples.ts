import type { Command } from 'commander';

/**
 * EXAMPLES are each command's `--help` examples, by the command's path ("backups prune"). A test runs through every
 * command: each has examples here, each example names a command and options that exist, and every command that prints
 * data takes --json.
 */
export const EXAMPLES: Record<string, string[]> = {
  serve: ['PORT=8080 LEDGER_ENCRYPTION_KEY=... ADMIN_TOKEN=... pawledger serve'],
  'degraded clear': ['pawledger degraded clear', 'pawledger degraded clear --json'],
  keygen: ['pawledger keygen', 'pawledger keygen --json'],
  status: ['pawledger status', 'pawledger status --json'],
  verify: ['pawledger verify', 'pawledger verify --from db --id 42', 'pawledger verify --cid bafk... --json'],
  export: [
    'pawledger export --out blocks/blockchain_data.encrypted',
    'pawledger export --out chain.sealed --force --json',
  ],
  import: ['pawledger import chain.sealed', 'pawledger import chain.sealed --force --json'],
  migrate: ['pawledger migrate', 'pawledger migrate --json'],
  backup: [
    'pawledger backup --to db --name "Before the audit" --admin 1',
    'pawledger backup --to ipfs --protect --json',
  ],
  'backups list': ['pawledger backups list', 'pawledger backups list --tier ipfs --limit 10 --json'],
  'backups prune': [
    'pawledger backups prune --keep-last 50 --keep-daily 30 --older-than 90d --dry-run',
    'pawledger backups prune --tier db --keep-weekly 8 --json',
  ],
  'backups protect': ['pawledger backups protect 42 --tier db', 'pawledger backups protect 42 --off --json'],
  restore: [
    'pawledger restore --from db --dry-run',
    'pawledger restore --from db --id 42',
    'pawledger restore --cid bafk...',
  ],
  doctor: ['pawledger doctor', 'pawledger doctor --write --json'],
  'property add': ['pawledger property add --id p1 --name "Casa Azul" --address "1 Main St" --owner ann --attr beds=3'],
  'property update': ['pawledger property update p1 --attr beds=4 --attr garage=null'],
  'property transfer': ['pawledger property transfer p1 --from ann --to bob --json'],
  'property list': ['pawledger property list', 'pawledger property list --json'],
  'property show': ['pawledger property show p1 --json'],
  drill: ['pawledger drill', 'pawledger drill --tier db --json'],
  'rotate-key': [
    'LEDGER_ENCRYPTION_KEY=<new> LEDGER_PREVIOUS_KEYS=<old> pawledger rotate-key',
    'pawledger rotate-key --json',
  ],
  proof: ['pawledger proof p1 --out p1.proof.json', 'pawledger proof p1 --from 0 --limit 50'],
  'proof verify': [
    'pawledger proof verify p1.proof.json',
    'pawledger proof verify p1.proof.json --root 3f2a... --consistency c.json --json',
  ],
};

/** EXIT_CODES_HELP says what the exit codes mean, for the main --help (main.ts EXIT). */
export const EXIT_CODES_HELP = `
Exit codes:
  0  done (a check passed)
  1  failed: a verification or doctor check failed, a tier could not record a restore, or an error
  2  usage error: an unknown command or option, or a value that is not valid`;

/** commandPath is a command's name with its parents' ("backups prune"), without the program's. */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** addExamples appends each command's examples to its --help, all the way down. */
export function addExamples(program: Command): void {
  const visit = (command: Command) => {
    const examples = EXAMPLES[commandPath(command)];
    if (examples) command.addHelpText('after', `\nExamples:\n${examples.map((e) => `  $ ${e}`).join('\n')}`);
    command.commands.forEach(visit);
  };
  program.commands.forEach(visit);
}
