/**
 * rotation: how fast a key rotation (issue #17) re-seals a ledger of n blocks in every place (local store, database,
 * backup folder, embedded IPFS), in blocks per second, with the process's peak RSS, and what saves wait while one runs.
 * The measuring is in bench/lib/rotation.ts (the report's "Key rotation" section runs the same code).
 *
 * Run: npx tsx bench/rotation.ts [--blocks N] [--saves N] [--batch N] [--json FILE]. Markdown on stdout, progress
 * on stderr. `--from-json FILE` prints the tables of a run saved with --json again, measuring nothing. The database (pl_rotation_<pid>_<n> on BENCH_PG_URL) and the temporary folder are removed at the end,
 * also after Ctrl-C.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describeMachine, loadNow } from './lib/machine.js';
import { DEFAULT_ADMIN_URL, dropDatabase } from './lib/pg.js';
import { abortRotation, measureRotation, ROTATION_NOTE, type RotationResult, rotationTable } from './lib/rotation.js';

const args = process.argv.slice(2);
function arg(name: string): string | undefined {
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  const a = args[i]!;
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : args[i + 1];
}
const known = ['blocks', 'saves', 'batch', 'json', 'from-json'];
for (const [i, a] of args.entries()) {
  const prev = args[i - 1];
  const isValue = prev !== undefined && known.some((k) => prev === `--${k}`);
  if (!isValue && !known.some((k) => a === `--${k}` || a.startsWith(`--${k}=`))) {
    process.stderr.write(
      `unknown argument ${a}\nusage: npx tsx bench/rotation.ts [--blocks N] [--saves N] [--batch N] [--json FILE] | --from-json FILE\n`,
    );
    process.exit(2);
  }
}
/** Saved is what --json writes: the run's machine, load and result. */
interface Saved {
  startedAt: string;
  about: string[];
  loadStart: string;
  loadEnd: string;
  result: RotationResult;
}

function render(s: Saved): string {
  return [
    `# Key rotation of ${s.result.blocks.toLocaleString('en-US')} blocks, started ${s.startedAt}`,
    '',
    ...s.about.map((l) => `- ${l}`),
    `- Load at start: ${s.loadStart}; at end: ${s.loadEnd}`,
    `- LEDGER_ROTATE_BATCH=${s.result.batch}; ${s.result.latency.before.length} saves timed before and ${s.result.latency.after.length} after the rotation beside saves`,
    '',
    rotationTable([s.result]),
    '',
    ROTATION_NOTE,
    '',
  ].join('\n');
}

const fromJson = arg('from-json');
if (fromJson) {
  process.stdout.write(render(JSON.parse(await readFile(fromJson, 'utf8')) as Saved));
  process.exit(0);
}
const blocks = Number(arg('blocks') ?? '100000');
const saves = Number(arg('saves') ?? '100');
const batch = Number(arg('batch') ?? '500');
const jsonOut = arg('json');
if (!(blocks >= 2 && saves >= 1 && batch >= 1))
  throw new Error('--blocks, --saves and --batch must be positive numbers');

const server = process.env.BENCH_PG_URL ?? DEFAULT_ADMIN_URL;
const name = `pl_rotation_${process.pid}_${blocks}`;
const root = await mkdtemp(join(tmpdir(), 'pawledger-rotation-'));
const started = performance.now();
const progress = (line: string) =>
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
process.once('SIGINT', () => {
  progress('interrupted: dropping the benchmark database and removing the temporary folder');
  // What the interrupted run still has in flight may fail as its ledger closes: the cleanup goes on regardless.
  process.on('uncaughtException', () => {});
  process.on('unhandledRejection', () => {});
  void abortRotation()
    .then(() => Promise.allSettled([dropDatabase(server, name), rm(root, { recursive: true, force: true })]))
    .finally(() => process.exit(130));
});

try {
  const admin = new pg.Client({ connectionString: server, application_name: 'pawledger-bench-meter' });
  await admin.connect();
  const about = await describeMachine(admin).finally(() => admin.end());
  const loadStart = await loadNow();
  const startedAt = new Date().toISOString();
  progress(`rotation of ${blocks.toLocaleString('en-US')} blocks; database ${name}; files in ${root}`);
  const result = await measureRotation({ server, name, dir: join(root, 'ledger'), blocks, saves, batch, progress });
  const loadEnd = await loadNow();
  const saved: Saved = { startedAt, about, loadStart, loadEnd, result };
  // The raw results first: a table that fails to render is not a lost run.
  if (jsonOut) await writeFile(jsonOut, `${JSON.stringify(saved, null, 1)}\n`);
  process.stdout.write(render(saved));
} finally {
  await dropDatabase(server, name).catch(() => {});
  await rm(root, { recursive: true, force: true });
}
