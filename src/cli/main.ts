import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { generateKey } from '../crypto/key.js';
import { ConfigError, describeError, IntegrityError, PawledgerError } from '../errors.js';
import { isFsError } from '../store/fs-errors.js';
import type { ReplayState } from '../engine/background-replay.js';
import { Ledger, type VerifyReport } from '../service/ledger.js';
import { registerBackupCommands } from './backups.js';
import { tierKeys, tierStatuses, verifyTierBackup } from './tier-access.js';
import { droppableKeys } from '../engine/rotation.js';
import { CID_TIER, requireTier, TIER_NAMES } from '../tiers/registry.js';
import { createContext, withLedger, type CliContext } from './context.js';
import { describeWriter, writerStatus } from './writer-status.js';
import { printJson, printLines } from './output.js';
import { withProgressBars } from './progress.js';
import { addExamples, EXIT_CODES_HELP } from './examples.js';
import { registerDoctorCommand } from './doctor.js';
import { registerProofCommands } from './proof.js';
import { registerDrillCommand } from './drill.js';
import { describeKeys, registerRotateKeyCommand } from './rotate-key.js';
import { assuranceStatus, describeAssurance } from './assurance-status.js';
import { registerPropertyCommands } from './property.js';
import { changeLedger, throughServerOr } from './through-server.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** EXIT codes: 0 ok, 1 failure, 2 usage error. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** buildProgram makes the `pawledger` command; `setExit` receives the exit code a command sets. */
export function buildProgram(setExit: (code: number) => void = () => {}): Command {
  let context: CliContext | undefined;
  const ctx = (logTo: 'stdout' | 'stderr' = 'stderr') => (context ??= createContext({ logTo }));
  const program = new Command('pawledger')
    .description('Keeps an encrypted property ledger alive on hosts that forget everything at each deploy.')
    .version(pkg.version)
    .showHelpAfterError()
    .exitOverride();
  program.addHelpText(
    'after',
    `
Environment:
  LEDGER_DATA_DIR        local store folder (default ./blocks)
  LEDGER_ENCRYPTION_KEY  32-byte key, base64 or hex (see keygen); without it a development key is kept in the data folder
  PORT, HOST             where serve listens (default 127.0.0.1:3000; HOST 0.0.0.0 on Render)
  DATABASE_URL           PostgreSQL server for backups (password redacted in logs); without it, embedded PGlite
  LEDGER_SOURCE_TIMEOUT_MS  startup skips a source silent this long (default 30000)
  LEDGER_RETENTION       serve prunes by this policy, e.g. keep-last=50,keep-daily=30,older-than=90d
                         (every LEDGER_RETENTION_INTERVAL_MS, default 6 h)
  LEDGER_DB_DIR          the embedded database's folder (default ./.pawledger/db); LEDGER_DB=off disables the tier
  PG_TIMEOUT_MS          connect timeout (default 5000); LEDGER_RETRY_MS first catch-up delay (default 1000)
  LEDGER_TIER_TIMEOUT_MS  how long a save waits for a tier, and a database statement may run (default: the smaller
                         of PG_TIMEOUT_MS and 2000); LEDGER_DB_KEEPALIVE_MS TCP keepalive delay (default 1000)
  IPFS_PROVIDER          pinata, kubo, embedded or off (default: pinata with PINATA_* keys, kubo with IPFS_API_URL, else off)
  PINATA_JWT             or PINATA_API_KEY + PINATA_SECRET_KEY; PINATA_API_URL, PINATA_GATEWAY_URL, PINATA_GATEWAY_TOKEN
  IPFS_API_URL           Kubo RPC (e.g. http://127.0.0.1:5001/api/v0); IPFS_EMBEDDED_DIR (default ./.pawledger/ipfs)
  RENDER_API_KEY         with RENDER_SERVICE_ID: keep the newest IPFS CID in the Render env var LEDGER_LATEST_CID
  ADMIN_TOKEN            bearer token for HTTP mutations (generated and printed once in development)
  LEDGER_PREVIOUS_KEYS   older keys that still open objects sealed before a key change; serve re-seals those objects
                         with LEDGER_ENCRYPTION_KEY in the background (rotate-key: now), LEDGER_ROTATE_BATCH per step (500)
  LEDGER_CONTROL_TIMEOUT_MS  beside a running serve, changes go through its control socket (<data folder>/control.sock);
                         how long to wait for it to answer before saying it is unresponsive (default 10000)
  LEDGER_DRILL_INTERVAL  serve restores each tier's newest backup into a scratch folder this often (default 6h; 0 off),
                         the first LEDGER_DRILL_FIRST after start (default 5m); LEDGER_DRILL_KEEP verdicts kept (200)
  LEDGER_MAX_LAG_BLOCKS, LEDGER_MAX_LAG_SECONDS  a tier this far behind the head is stale (default 1000, 3600; 0 off)
  METRICS_TOKEN          bearer token for GET /metrics (default: the admin token)
  LEDGER_ALERT_WEBHOOK_URL  alerts (Slack-compatible JSON) when an incident starts and clears;
                         LEDGER_ALERT_FAILING_AFTER a failing tier's grace (default 10m)
  LOG_FORMAT, LOG_LEVEL  json or pretty (default pretty on a terminal); pino level (default info)
  LOG_SAVE_LINES, LOG_SUMMARY_INTERVAL  per-save lines at info per interval, the rest summarized (default 10, 10s)
${EXIT_CODES_HELP}
Run \`pawledger <command> --help\` for a command's options and examples.`,
  );

  program
    .command('serve')
    .description('restore the ledger and serve the HTTP API (npm start)')
    // Loaded on demand: the HTTP stack is the slowest part of the CLI to start, and only serve needs it.
    .action(async () => setExit(await (await import('./serve.js')).serve(ctx('stdout'))));

  program
    .command('degraded')
    .description(
      'a ledger whose full replay contradicted its checkpoint refuses writes (the server logs why; GET /status shows it)',
    )
    .command('clear')
    .description('accept writes again on the running server (an override: check the ledger first)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { cleared } = await throughServerOr(
        ctx(),
        { method: 'POST', url: '/admin/degraded/clear', body: {} },
        async (): Promise<{ cleared: string | null }> => {
          throw new ConfigError(
            'no pawledger serve is running on this data folder: only a running server can be degraded',
            {
              hint: 'A fresh start replays the chain again and says whether it is degraded',
            },
          );
        },
      );
      if (o.json) return printJson({ cleared });
      process.stdout.write(cleared ? `cleared: ${cleared}\n` : 'the ledger was not degraded\n');
    });

  program
    .command('keygen')
    .description('print a new random encryption key for LEDGER_ENCRYPTION_KEY')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) => {
      const key = generateKey();
      if (o.json) return printJson({ key });
      process.stdout.write(`${key}\n`);
    });

  program
    .command('status')
    .description('show the ledger height, head hash, property count and each tier')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const s = await withLedger(ctx(), true, async (l) => {
        const status = l.status();
        // Beside a running server the ledger is opened read-only, without its tiers: ask each tier directly.
        status.tiers = await tierStatuses(
          ctx(),
          status.tiers.find((t) => t.name === 'local')!,
          status.ledgerId,
          status.height,
        );
        status.assurance = await assuranceStatus(ctx(), l, status.tiers);
        // Every place's objects by key id: the local store from the ledger, each tier asked directly.
        const local = (await l.keyCounts()).tiers;
        const keyTiers = [...local, ...(await tierKeys(ctx(), status.ledgerId, status.keyId))];
        status.keys = {
          ...status.keys,
          tiers: keyTiers,
          droppable: droppableKeys(keyTiers, status.keys.previousKeyIds),
        };
        return status;
      });
      s.writer = await writerStatus(ctx()).catch(() => s.writer);
      if (o.json) return printJson(s);
      printLines([
        ['ledger', s.ledgerId],
        ['height', s.height],
        ['head hash', s.headHash],
        ['total blocks', s.totalBlocks],
        ['total properties', s.totalProperties],
        ['key id', s.keyId],
        ['writer', describeWriter(s.writer)],
        ['verified', describeVerification(s)],
        ...s.tiers.map((t): [string, string] => [
          `tier ${t.name}`,
          `${t.state}, height ${t.height}${t.detail ? ` (${t.detail})` : ''}`,
        ]),
        ...describeAssurance(s.assurance),
        ...describeKeys(s.keys),
      ]);
    });

  program
    .command('verify')
    .description(
      're-read the stored chain (or a backup in a tier) and check every hash link, block hash and Merkle root',
    )
    .option('--from <tier>', `verify a backup in this tier instead of the local store (${TIER_NAMES.join(', ')})`)
    .option('--id <id>', 'with --from: the backup id (default: the newest)')
    .option('--cid <cid>', 'an IPFS manifest CID: the same as --from ipfs --id CID')
    .option('--json', 'print JSON')
    .action(async (o: { from?: string; id?: string; cid?: string; json?: boolean }) => {
      const tier = o.cid ? CID_TIER : o.from;
      if (tier !== undefined) requireTier(ctx().config, tier, o.cid ? 'cid' : 'from');
      const r: VerifyReport & { backupId?: string } = await withProgressBars(o, () =>
        tier
          ? verifyTierBackup(ctx(), tier, o.cid ?? o.id).then(
              (v) => ({ ok: true as const, ...v }),
              (err: unknown) => {
                if (err instanceof IntegrityError) return { ok: false as const, reason: err.message };
                throw err;
              },
            )
          : withLedger(ctx(), true, (l) => l.verify()),
      );
      if (o.json) printJson(r);
      else if (r.ok)
        process.stdout.write(
          `ok: ${r.backupId ? `backup ${r.backupId}: ` : ''}${r.totalBlocks} blocks verify, head ${r.headHash}\n`,
        );
      else process.stdout.write(`FAILED: ${r.reason}\n`);
      if (!r.ok) setExit(EXIT.failure);
    });

  program
    .command('export')
    .description('write the whole chain as one sealed file, atomically')
    .requiredOption('--out <file>', 'where to write (e.g. blocks/blockchain_data.encrypted)')
    .option('--force', 'replace the file if it exists (never a folder, link, FIFO or device)')
    .option('--json', 'print JSON')
    .action(async (o: { out: string; force?: boolean; json?: boolean }) => {
      const r = await withProgressBars(o, () =>
        withLedger(ctx(), true, (l) => l.exportTo(o.out, { force: o.force ?? false })),
      );
      if (o.json) return printJson({ ...r, path: o.out });
      process.stdout.write(`exported ${r.totalBlocks} blocks (${r.bytes} bytes) to ${o.out}\n`);
    });

  program
    .command('import <file>')
    .description('verify a file written by export and make it the ledger')
    .addOption(new Option('--force', 'replace the ledger even if the file does not extend it (discards blocks)'))
    .option('--json', 'print JSON')
    .action(async (file: string, o: { force?: boolean; json?: boolean }) => {
      // Opened starting from the file (a damaged local store is replaced, its files kept aside), recorded in every tier;
      // beside a running server, the server imports it (the path as this user sees it: same machine, same user).
      const c = ctx();
      const force = o.force ?? false;
      const open = () => Ledger.open({ config: c.config, logger: c.log, restore: { file, force } });
      const r = await withProgressBars(o, () =>
        changeLedger(
          c,
          { method: 'POST', url: '/admin/import', body: { path: resolve(file), force } },
          async (l) => ({ totalBlocks: l.status().totalBlocks }),
          open,
        ),
      );
      if (o.json) return printJson({ ...r, path: file });
      process.stdout.write(`imported ${r.totalBlocks} blocks from ${file}\n`);
    });

  registerBackupCommands(program, () => ctx(), setExit);
  registerDoctorCommand(program, () => ctx(), setExit);
  registerDrillCommand(program, () => ctx(), setExit);
  registerRotateKeyCommand(program, () => ctx(), setExit);
  registerPropertyCommands(program, () => ctx());
  registerProofCommands(program, () => ctx(), setExit);
  addExamples(program);
  return program;
}

/** main runs the CLI and resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = buildProgram((code) => (exitCode = code));
  program.commands.forEach(function override(c: Command) {
    c.exitOverride();
    c.commands.forEach(override);
  });
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')
        return EXIT.ok;
      return EXIT.usage;
    }
    process.stderr.write(`pawledger: ${describeError(err)}\n`);
    if (isFsError(err))
      process.stderr.write(
        '(the operating system refused: check that the path exists and its owner and permissions)\n',
      );
    else if (!(err instanceof PawledgerError))
      process.stderr.write('(this is a bug or an environment problem; run with LOG_LEVEL=debug for details)\n');
    return err instanceof PawledgerError && err.code === 'VALIDATION' ? EXIT.usage : EXIT.failure;
  }
}

// How the running chain was verified, for `status`.
function describeVerification(s: { verification: ReplayState; degraded: { reason: string } | null }): string {
  const v = s.verification;
  if (s.degraded) return `DEGRADED, writes refused: ${s.degraded.reason}`;
  if (v.state === 'full') return 'in full from block 0';
  if (v.state === 'replaying')
    return `from the checkpoint at block ${v.checkpoint}; replaying from block 0 (${v.replayed} of ${v.checkpoint + 1})`;
  if (v.state === 'verified')
    return `from the checkpoint at block ${v.checkpoint}, then in full from block 0 (${v.ms} ms)`;
  if (v.state === 'degraded') return `DEGRADED: ${v.reason}`;
  return `from the checkpoint at block ${v.checkpoint}; the replay from block 0 stopped`;
}
