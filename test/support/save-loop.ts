/**
 * Child-process fixture for test/durability/crash.test.ts. Run as
 *   node --import tsx test/support/save-loop.ts <dataDir> [segmentBytes]
 * It opens the Ledger on <dataDir> and registers properties forever, singly and in concurrent groups of 3 (so the
 * group commit and the segment roll are exercised), printing `ack <height> <hash> <propertyId>` on stdout as soon as
 * each `register` resolves, i.e. once the save is acknowledged as durable. The parent kills it with SIGKILL.
 */
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config.js';
import { Ledger } from '../../src/service/ledger.js';

const dataDir = process.argv[2];
if (!dataDir) {
  process.stderr.write('usage: save-loop.ts <dataDir> [segmentBytes]\n');
  process.exit(2);
}
const segmentBytes = Number(process.argv[3] ?? 16384);

const ledger = await Ledger.open({ config: { ...loadConfig({ LEDGER_DB: 'off' }), dataDir, segmentBytes } });
process.stdout.write(`ready ${ledger.head.index} ${ledger.head.hash}\n`);

const run = randomBytes(4).toString('hex');
let n = 0;

async function save(): Promise<void> {
  const id = `crash-${run}-${n++}`;
  const { block, property } = await ledger.register({
    id,
    name: `Property ${id}`,
    address: `${n} Crash Street, Killtown`,
    owner: `owner-${n % 17}`,
    attributes: { run, n, note: 'x'.repeat(n % 50) },
  });
  // Pipes are synchronous on Linux: this line is in the pipe before the next save starts.
  process.stdout.write(`ack ${block.index} ${block.hash} ${property.id}\n`);
}

for (;;) {
  if (n % 4 === 0) await Promise.all([save(), save(), save()]);
  else await save();
}
