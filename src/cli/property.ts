import type { Command } from 'commander';
import { ValidationError } from '../errors.js';
import type { Attributes, JsonValue } from '../ledger/types.js';
import type { SaveResult } from '../service/ledger.js';
import { withLedger, type CliContext } from './context.js';
import { printJson, printLines, printTable } from './output.js';
import { changeLedger } from './through-server.js';

function attr(value: string, previous: Attributes = {}): Attributes {
  const eq = value.indexOf('=');
  if (eq < 1) throw new ValidationError(`--attr ${value} is not KEY=VALUE`, 'attr');
  const raw = value.slice(eq + 1);
  let parsed: JsonValue;
  try {
    parsed = JSON.parse(raw) as JsonValue;
  } catch {
    parsed = raw;
  }
  return { ...previous, [value.slice(0, eq)]: parsed };
}

function printSaved(r: SaveResult, json: boolean): void {
  if (json) {
    printJson(r);
    return;
  }
  printLines([
    ['saved in block', r.block.index],
    ['block hash', r.block.hash],
    ['property', r.property.id],
    ['owner', r.property.owner],
  ]);
}

/** registerPropertyCommands adds `pawledger property add|update|transfer|list|show`. */
export function registerPropertyCommands(program: Command, ctx: () => CliContext): void {
  const property = program
    .command('property')
    .description('register, change and read properties (beside a running server, changes go through it)');
  property
    .command('add')
    .description('register a new property')
    .requiredOption('--id <id>', 'property id (letters, digits, . _ : -)')
    .requiredOption('--name <name>', 'display name')
    .requiredOption('--address <address>', 'street address')
    .requiredOption('--owner <owner>', 'current owner')
    .option('--attr <key=value>', 'a free-form attribute (value parsed as JSON when it can be); repeatable', attr)
    .option('--json', 'print JSON')
    .action(
      async (o: { id: string; name: string; address: string; owner: string; attr?: Attributes; json?: boolean }) => {
        const input = { id: o.id, name: o.name, address: o.address, owner: o.owner, attributes: o.attr };
        const r = await changeLedger(ctx(), { method: 'POST', url: '/properties', body: input }, (l) =>
          l.register(input),
        );
        printSaved(r, o.json ?? false);
      },
    );
  property
    .command('update <id>')
    .description("change a property's name, address or attributes (--attr key=null removes one)")
    .option('--name <name>', 'new display name')
    .option('--address <address>', 'new street address')
    .option('--attr <key=value>', 'set an attribute; repeatable', attr)
    .option('--json', 'print JSON')
    .action(async (id: string, o: { name?: string; address?: string; attr?: Attributes; json?: boolean }) => {
      const input = { name: o.name, address: o.address, attributes: o.attr };
      const url = `/properties/${encodeURIComponent(id)}`;
      const r = await changeLedger(ctx(), { method: 'PATCH', url, body: input }, (l) => l.update(id, input));
      printSaved(r, o.json ?? false);
    });
  property
    .command('transfer <id>')
    .description('transfer a property to a new owner')
    .requiredOption('--from <owner>', 'the current owner')
    .requiredOption('--to <owner>', 'the new owner')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { from: string; to: string; json?: boolean }) => {
      const input = { from: o.from, to: o.to };
      const url = `/properties/${encodeURIComponent(id)}/transfer`;
      const r = await changeLedger(ctx(), { method: 'POST', url, body: input }, (l) => l.transfer(id, input));
      printSaved(r, o.json ?? false);
    });
  property
    .command('list')
    .description('list every property')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const props = await withLedger(ctx(), true, async (l) => l.properties());
      if (o.json) return printJson(props);
      printTable(
        ['ID', 'NAME', 'OWNER', 'ADDRESS'],
        props.map((p) => [p.id, p.name, p.owner, p.address]),
      );
    });
  property
    .command('show <id>')
    .description("show a property's current state and history")
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const r = await withLedger(ctx(), true, (l) => l.property(id));
      if (o.json) return printJson(r);
      const p = r.property;
      printLines([
        ['id', p.id],
        ['name', p.name],
        ['address', p.address],
        ['owner', p.owner],
        ['attributes', JSON.stringify(p.attributes)],
      ]);
      process.stdout.write('\nhistory:\n');
      printTable(
        ['BLOCK', 'TIME', 'CHANGE'],
        r.history.map((h) => [h.blockIndex, h.transaction.timestamp, describeTx(h.transaction)]),
      );
    });
}

function describeTx(tx: SaveResult['block']['transactions'][number]): string {
  if (tx.type === 'register') return `registered, owner ${tx.property.owner}`;
  if (tx.type === 'transfer') return `transferred from ${tx.from} to ${tx.to}`;
  return `updated ${Object.keys(tx.changes).join(', ')}`;
}
