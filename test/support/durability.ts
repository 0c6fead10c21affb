/**
 * Shared helpers for test/durability: temporary data folders, a log-capturing logger, a config with small segments,
 * and ways to look at what is on disk.
 */
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig, type Config } from '../../src/config.js';
import type { Logger } from '../../src/log.js';
import { encodeSlot, HEAD_FILE } from '../../src/store/head-marker.js';

/** REPO is the repository root (for spawning fixtures with the right cwd). */
export const REPO = new URL('../../', import.meta.url).pathname;

/** tempDir makes a fresh temporary folder; the returned cleanup removes it. */
export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `pawledger-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** testConfig is the default configuration (no environment) on `dataDir`, with `segmentBytes`. */
export function testConfig(dataDir: string, segmentBytes = 16384): Config {
  return { ...loadConfig({ LEDGER_DB: 'off' }), dataDir, segmentBytes };
}

/** LogLine is one parsed pino line. */
export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** captureLogger returns a pino logger whose lines are parsed into `lines`. */
export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { logger, lines };
}

/** listFiles lists every regular file under `dir`, recursively, as absolute paths, sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out.sort();
}

/** generationDir is the live generation folder named by CURRENT. */
export async function generationDir(dataDir: string): Promise<string> {
  return join(dataDir, (await readFile(join(dataDir, 'CURRENT'), 'utf8')).trim());
}

/** segmentFiles lists the live generation's segment files in order. */
export async function segmentFiles(dataDir: string): Promise<string[]> {
  const gen = await generationDir(dataDir);
  return (await readdir(gen))
    .filter((n) => n.endsWith('.seg'))
    .sort()
    .map((n) => join(gen, n));
}

/** totalBytes sums the sizes of the given files. */
export async function totalBytes(paths: readonly string[]): Promise<number> {
  let sum = 0;
  for (const p of paths) sum += (await stat(p)).size;
  return sum;
}

/** mode returns a file's permission bits (e.g. 0o600). */
export async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

/** errorInfo renders a thrown value for an assertion message. */
export function errorInfo(err: unknown): string {
  if (err instanceof Error) return `${err.name} [${(err as { code?: unknown }).code ?? 'no code'}]: ${err.message}`;
  return String(err);
}

/**
 * markInFlight rewrites a closed store's head marker as a crash during its last append leaves it: the append of
 * block `height` (hash `hash`) begun but not acknowledged. A test that cuts that block then plays a crash, not a loss.
 */
export async function markInFlight(dataDir: string, height: number, hash: string): Promise<void> {
  const generation = Number((await readFile(join(dataDir, 'CURRENT'), 'utf8')).trim().slice(6));
  const slot = encodeSlot({ seq: 1_000_000, generation, acked: height - 1, height, hash });
  await writeFile(join(dataDir, HEAD_FILE), Buffer.concat([Buffer.alloc(128), slot]));
}
