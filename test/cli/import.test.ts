/**
 * `pawledger export` and `import` as a user runs them: a round trip to a fresh data folder, damaged files refused
 * without touching the target, and the --force rule for chains that do not extend the current one.
 */
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Property } from '../../src/ledger/types.js';
import type { LedgerStatus, SaveResult } from '../../src/service/ledger.js';
import { cliSandbox, snapshot, type CliSandbox } from '../support/cli.js';

const EXPORT_HEADER = 88;
const RECORD_HEADER = 52;

describe('export and import', () => {
  let root: string;
  let cli: CliSandbox;
  let file: string;
  let ledgerId: string;
  let head: string;
  let property: Property;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'pl-cli-import-'));
    cli = cliSandbox(root);
    const added = cli.json<SaveResult>('source', [
      'property',
      'add',
      '--id',
      'p1',
      '--name',
      'Casa Azul',
      '--address',
      '1 Main St',
      '--owner',
      'ann',
      '--attr',
      'beds=3',
    ]);
    const moved = cli.json<SaveResult>('source', ['property', 'transfer', 'p1', '--from', 'ann', '--to', 'bob']);
    ledgerId = added.block.previousHash; // the genesis hash
    head = moved.block.hash;
    property = moved.property;
    file = join(root, 'ledger.export');
    const r = cli.run('source', ['export', '--out', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^exported 3 blocks \(\d+ bytes\) to /);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('imports an export into a fresh data folder with the same key: same ledger, head and properties', () => {
    const r = cli.run('fresh', ['import', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`imported 3 blocks from ${file}\n`);
    expect(cli.json<LedgerStatus>('fresh', ['status'])).toMatchObject({
      ledgerId,
      headHash: head,
      height: 2,
      totalProperties: 1,
    });
    expect(cli.json<Property[]>('fresh', ['property', 'list'])).toEqual([property]);
  });

  describe('export --out never clobbers', () => {
    const tmpFiles = async () => (await readdir(root)).filter((n) => n.includes('.tmp-'));

    it('an existing file without --force: exit 1 naming --force, the file unchanged, no temp file left; with --force: replaced', async () => {
      const target = join(root, 'existing.export');
      await writeFile(target, 'keep me');
      const r = cli.run('source', ['export', '--out', target]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('already exists');
      expect(r.stderr).toContain('--force');
      expect(r.stderr).not.toMatch(/bug/);
      expect(await readFile(target, 'utf8')).toBe('keep me');
      expect(await tmpFiles()).toEqual([]);
      const forced = cli.run('source', ['export', '--out', target, '--force']);
      expect(forced.code, forced.stderr).toBe(0);
      expect((await readFile(target)).subarray(0, 4).toString('latin1')).toBe('PWLX');
      expect(await tmpFiles()).toEqual([]);
    });

    it('a FIFO, a symbolic link, or a folder: refused even with --force, left as it was', async () => {
      const fifo = join(root, 'a-fifo');
      execFileSync('mkfifo', [fifo]);
      const aim = join(root, 'aim.txt');
      await writeFile(aim, 'the link target');
      const link = join(root, 'a-link');
      await symlink(aim, link);
      const folder = join(root, 'a-folder');
      await mkdir(folder);
      for (const [path, kind] of [
        [fifo, 'FIFO'],
        [link, 'symbolic link'],
        [folder, 'folder'],
      ] as const) {
        for (const args of [[], ['--force']]) {
          const r = cli.run('source', ['export', '--out', path, ...args]);
          // A bad --out is a usage error (exit 2), as every ValidationError of the command line is.
          expect(r.code, `${kind} ${args.join(' ')}`).toBe(2);
          expect(r.stderr).toContain(`is a ${kind}, not a regular file`);
        }
      }
      expect((await lstat(fifo)).isFIFO()).toBe(true);
      expect((await lstat(link)).isSymbolicLink()).toBe(true);
      expect(await readFile(aim, 'utf8')).toBe('the link target');
      expect((await lstat(folder)).isDirectory()).toBe(true);
      expect(await tmpFiles()).toEqual([]);
    });

    it('a folder that does not exist or cannot be written: an operating-system error, never "this is a bug"', async () => {
      const r = cli.run('source', ['export', '--out', join(root, 'no-such-folder', 'x.export')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/ENOENT/);
      expect(r.stderr).not.toMatch(/bug/);
    });
  });

  describe('into a store that holds another ledger', () => {
    beforeAll(() => {
      cli.json<SaveResult>('target', [
        'property',
        'add',
        '--id',
        't1',
        '--name',
        'Target',
        '--address',
        '9 Side St',
        '--owner',
        'tess',
      ]);
    });

    it('refuses a file with one flipped byte, or cut short, with an integrity error, even with --force, changing nothing', async () => {
      const good = await readFile(file);
      const sealEnd = EXPORT_HEADER + good.readUInt32LE(80);
      const before = await snapshot(join(root, 'target'));
      const damaged: [string, Buffer, RegExp][] = [
        ['header (ledger id)', flip(good, 20), /damaged header/],
        ['sealed export object', flip(good, EXPORT_HEADER + 30), /export 2 .*failed authentication/],
        ['record header of block 0', flip(good, sealEnd + 4), /record header checksum mismatch/],
        ['sealed block 2', flip(good, good.length - 20), /block 2 is damaged/],
        ['missing its last block', good.subarray(0, lastRecordStart(good, sealEnd)), /ends at block 1 .*names block 2/],
      ];
      for (const [what, bytes, said] of damaged) {
        const path = join(root, `damaged-${what.replace(/\W+/g, '-')}.export`);
        await writeFile(path, bytes);
        const r = cli.run('target', ['import', path, '--force']);
        expect(r.code, `${what}: ${r.stderr}`).toBe(1);
        expect(r.stderr, what).toContain(path);
        expect(r.stderr, what).toMatch(said);
        expect(r.stdout, what).toBe('');
      }
      expect(await snapshot(join(root, 'target'))).toEqual(before);
    });

    it('refuses a chain that does not extend the current one without --force, and takes it with --force', async () => {
      const before = await snapshot(join(root, 'target'));
      const other = cli.run('target', ['import', file]);
      expect(other.code).toBe(1);
      expect(other.stderr).toContain('another ledger');
      expect(other.stderr).toContain('--force');
      expect(await snapshot(join(root, 'target'))).toEqual(before);

      const forced = cli.run('target', ['import', file, '--force']);
      expect(forced.code, forced.stderr).toBe(0);
      expect(forced.stdout).toBe(`imported 3 blocks from ${file}\n`);

      // A newer export of the same ledger extends it: no --force needed.
      cli.json<SaveResult>('source', [
        'property',
        'add',
        '--id',
        'p2',
        '--name',
        'Casa Roja',
        '--address',
        '3 Main St',
        '--owner',
        'ann',
      ]);
      const newer = join(root, 'newer.export');
      expect(cli.run('source', ['export', '--out', newer]).code).toBe(0);
      const extended = cli.run('target', ['import', newer]);
      expect(extended.code, extended.stderr).toBe(0);
      expect(extended.stdout).toBe(`imported 4 blocks from ${newer}\n`);

      // Going back to the older export would discard block 3: refused, then done with --force.
      const atNewer = await snapshot(join(root, 'target'));
      const back = cli.run('target', ['import', file]);
      expect(back.code).toBe(1);
      expect(back.stderr).toContain('does not extend');
      expect(back.stderr).toContain('--force');
      expect(await snapshot(join(root, 'target'))).toEqual(atNewer);
      expect(cli.run('target', ['import', file, '--force']).code).toBe(0);
      expect(cli.json<Property[]>('target', ['property', 'list'])).toEqual([property]);
    });
  });
});

function flip(buf: Buffer, at: number): Buffer {
  const out = Buffer.from(buf);
  out[at]! ^= 0x01;
  return out;
}

function lastRecordStart(buf: Buffer, from: number): number {
  let at = from;
  let last = from;
  while (at < buf.length) {
    last = at;
    at += RECORD_HEADER + buf.readUInt32LE(at);
  }
  return last;
}
