/**
 * Helpers for test/cli: a temporary working folder with a fixed key and no database tier, a way to run the built
 * command in it, snapshots of a data folder, and byte surgery on segment files from the documented format.
 */
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { crc32 } from 'node:zlib';
import { generateKey } from '../../src/crypto/key.js';
import { runCli, runCliAsync } from './serve-process.js';

/** CliResult is what one run of the command printed and returned. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** CliSandbox runs `pawledger` in `cwd` with LEDGER_DB=off, quiet JSON logs and `key`. */
export interface CliSandbox {
  cwd: string;
  key: string;
  env: Record<string, string>;
  /** run runs the command on the data folder `dataDir` (relative to cwd), with `extra` environment. */
  run(dataDir: string, args: string[], extra?: Record<string, string>): CliResult;
  /** start runs the command like run, without blocking: independent commands can run side by side. */
  start(dataDir: string, args: string[], extra?: Record<string, string>): Promise<CliResult>;
  /** json runs a command that must succeed and parses its stdout. */
  json<T>(dataDir: string, args: string[]): T;
}

/** cliSandbox makes a sandbox in `cwd` (a temporary folder the caller removes). */
export function cliSandbox(cwd: string): CliSandbox {
  const key = generateKey();
  const env = { LEDGER_DB: 'off', LOG_FORMAT: 'json', LOG_LEVEL: 'warn', LEDGER_ENCRYPTION_KEY: key };
  const run = (dataDir: string, args: string[], extra: Record<string, string> = {}) =>
    runCli(cwd, { ...env, LEDGER_DATA_DIR: join(cwd, dataDir), ...extra }, args);
  const start = (dataDir: string, args: string[], extra: Record<string, string> = {}) =>
    runCliAsync(cwd, { ...env, LEDGER_DATA_DIR: join(cwd, dataDir), ...extra }, args);
  return {
    cwd,
    key,
    env,
    run,
    start,
    json<T>(dataDir: string, args: string[]): T {
      const r = run(dataDir, [...args, '--json']);
      if (r.code !== 0) throw new Error(`pawledger ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      return JSON.parse(r.stdout) as T;
    },
  };
}

/** snapshot maps every file under dir (relative path) to its bytes, for "nothing changed" checks. */
export async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const path = join(e.parentPath, e.name);
    out.set(relative(dir, path), e.isFile() ? (await readFile(path)).toString('base64') : 'dir');
  }
  return new Map([...out.entries()].sort());
}

/**
 * withWritable runs fn on a file's bytes, changed in place, and writes them back: the file may be read-only (finished
 * segments and exports are 0400), and its mode is restored.
 */
export async function withWritable(path: string, fn: (buf: Buffer) => unknown): Promise<void> {
  const { mode } = await stat(path);
  const buf = await readFile(path);
  fn(buf);
  await chmod(path, 0o600);
  await writeFile(path, buf);
  await chmod(path, mode & 0o777);
}

/** flipByte XORs one byte of a file. */
export function flipByte(path: string, offset: number, mask = 0x01): Promise<void> {
  return withWritable(path, (buf) => {
    buf[offset]! ^= mask;
  });
}

const SEGMENT_HEADER = 52;
const RECORD_HEADER = 52;

/** SegmentRecord locates one stored block in a segment file. */
export interface SegmentRecord {
  height: number;
  /** start is the record header's offset; the sealed block runs from start + 52 to end. */
  start: number;
  end: number;
}

/** segmentRecords parses a segment file's framing (docs/FORMAT.md), independently of src/. */
export function segmentRecords(buf: Buffer): SegmentRecord[] {
  const out: SegmentRecord[] = [];
  for (let at = SEGMENT_HEADER; at + RECORD_HEADER <= buf.length; ) {
    const end = at + RECORD_HEADER + buf.readUInt32LE(at);
    out.push({ height: Number(buf.readBigUInt64LE(at + 4)), start: at, end });
    at = end;
  }
  return out;
}

/**
 * forgeRecord changes one byte of a stored block's sealed payload and recomputes the record's CRCs, as someone who
 * knows the format but not the key would: only the seal can tell.
 */
export function forgeRecord(buf: Buffer, rec: SegmentRecord, payloadOffset: number): void {
  buf[rec.start + RECORD_HEADER + payloadOffset]! ^= 0x01;
  buf.writeUInt32LE(crc32(buf.subarray(rec.start + RECORD_HEADER, rec.end)), rec.start + 44);
  buf.writeUInt32LE(crc32(buf.subarray(rec.start, rec.start + 48)), rec.start + 48);
}
