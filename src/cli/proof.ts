import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { UnavailableError, ValidationError } from '../errors.js';
import { canonicalJson } from '../ledger/canonical.js';
import { verifyProofText, type PropertyProof } from '../ledger/proof-verifier.js';
import { MAX_PROOF_BLOCKS } from '../service/chain-proofs.js';
import { atomicWrite } from '../store/fsutil.js';
import { withLedger, type CliContext } from './context.js';
import { printJson } from './output.js';
import { throughServerOr } from './through-server.js';

const HEX64 = /^[0-9a-fA-F]{64}$/;

function count(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = /^\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
    if (!(n >= min && n <= max)) throw new ValidationError(`--${name} must be an integer from ${min} to ${max}`, name);
    return n;
  };
}

/**
 * registerProofCommands adds `pawledger proof ID` (a property's proof, from the running server when one holds the
 * ledger, else from the ledger opened here) and `pawledger proof verify FILE`, which needs no server, key or data
 * folder: exit 0 when the proof holds, 1 with the reason when it does not.
 */
export function registerProofCommands(program: Command, ctx: () => CliContext, setExit: (code: number) => void): void {
  const proof = program
    .command('proof')
    .description("prove a property's transactions to someone without the key, or verify such a proof (proof verify)")
    .argument('<id>', 'the property id')
    .option('--out <file>', 'write the proof here (atomically) instead of to stdout')
    .option('--from <n>', "start at the n-th block of the property's history (0 first)", count('from', 0, 2 ** 53 - 1))
    .option(
      '--limit <n>',
      `at most n blocks (1 to ${MAX_PROOF_BLOCKS}, the default)`,
      count('limit', 1, MAX_PROOF_BLOCKS),
    )
    .action(async (id: string, o: { out?: string; from?: number; limit?: number }) => {
      const from = o.from ?? 0;
      const limit = o.limit ?? MAX_PROOF_BLOCKS;
      const query = `from=${from}&limit=${limit}`;
      const made = await throughServerOr<PropertyProof>(
        ctx(),
        { method: 'GET', url: `/properties/${encodeURIComponent(id)}/proof?${query}` },
        () =>
          withLedger(ctx(), false, async (l) => {
            if ((await l.proofsReady()).state !== 'ready')
              throw new UnavailableError('the chain accumulator could not be built; the log says why');
            return (await l.proof(id, { from, limit })).proof;
          }),
      );
      const text = `${canonicalJson(made)}\n`;
      if (o.out) {
        await atomicWrite(o.out, Buffer.from(text), 0o644);
        process.stderr.write(
          `wrote the proof of ${id} (${made.blocks.length} blocks, head ${made.head.height}, root ${made.head.root}) to ${o.out}\n`,
        );
      } else process.stdout.write(text);
      if (made.blocks.length === limit)
        process.stderr.write(`the history may go on: the next page starts at --from ${from + limit}\n`);
    });

  proof
    .command('verify <file>')
    .description('check a proof offline (no server, key or data folder): exit 0 valid, 1 invalid with the reason')
    .option('--root <hex>', 'the root you trust (from a backup record, a manifest, or a newer head)')
    .option('--consistency <file>', 'a consistency proof from the proof’s head to the head whose root you trust')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { root?: string; consistency?: string; json?: boolean }) => {
      if (o.root !== undefined && !HEX64.test(o.root))
        throw new ValidationError('--root must be 64 hexadecimal digits (a SHA-256)', 'root');
      const text = await readFile(file, 'utf8');
      const consistency = o.consistency ? await readFile(o.consistency, 'utf8') : undefined;
      const verdict = await verifyProofText(text, {
        ...(o.root ? { root: o.root.toLowerCase() } : {}),
        ...(consistency ? { consistency } : {}),
      });
      if (o.json) printJson(verdict);
      else if (verdict.ok)
        process.stdout.write(
          `valid: property ${verdict.propertyId}, ${verdict.transactions.length} transactions in ${verdict.blocks} blocks, in the chain at height ${verdict.head.height} with root ${verdict.head.root}\n`,
        );
      else process.stdout.write(`INVALID: ${verdict.reason}\n`);
      if (!verdict.ok) setExit(1);
    });
}
