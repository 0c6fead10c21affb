/**
 * The built `pawledger` command as a user runs it (LEDGER_DB=off, a temporary data folder): help and usage errors,
 * keygen, the property commands, status, verify against damaged segment files, and a wrong or malformed key.
 * Export and import are in import.test.ts, the write lock beside a running server in lock.test.ts.
 */
import { cp, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TIER_NAMES } from '../../src/tiers/registry.js';
import { generateKey, parseKey } from '../../src/crypto/key.js';
import type { Property } from '../../src/ledger/types.js';
import type { HistoryEntry, LedgerStatus, SaveResult } from '../../src/service/ledger.js';
import {
  cliSandbox,
  flipByte,
  forgeRecord,
  segmentRecords,
  snapshot,
  withWritable,
  type CliResult,
  type CliSandbox,
} from '../support/cli.js';

let root: string;
let cli: CliSandbox;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'pl-cli-'));
  cli = cliSandbox(root);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('help, usage errors and keygen', () => {
  // Independent runs on no data folder: side by side, to keep the suite quick.
  let help: CliResult;
  let unknownCommand: CliResult;
  let unknownOption: CliResult;
  let keygen: CliResult;
  beforeAll(async () => {
    [help, unknownCommand, unknownOption, keygen] = await Promise.all([
      cli.start('untouched', ['--help']),
      cli.start('untouched', ['frobnicate']),
      cli.start('untouched', ['status', '--frobnicate']),
      cli.start('untouched', ['keygen']),
    ]);
  });

  it('prints help listing every command, with exit 0', () => {
    expect(help.code).toBe(0);
    for (const c of [
      'serve',
      'keygen',
      'status',
      'verify',
      'export',
      'import',
      'migrate',
      'backup',
      'backups',
      'restore',
      'property',
      'proof',
    ]) {
      expect(help.stdout).toMatch(new RegExp(`^\\s+${c}\\b`, 'm'));
    }
  });

  it('exits 2 on an unknown command or option, saying which, and touches no data folder', async () => {
    expect(unknownCommand.code).toBe(2);
    expect(unknownCommand.stderr).toContain("unknown command 'frobnicate'");
    expect(unknownOption.code).toBe(2);
    expect(unknownOption.stderr).toContain("unknown option '--frobnicate'");
    await expect(readdir(join(root, 'untouched'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('keygen prints one new key that parseKey accepts', () => {
    expect(keygen.code).toBe(0);
    expect(keygen.stdout.endsWith('\n')).toBe(true);
    expect(keygen.stdout.trim().split('\n')).toHaveLength(1);
    expect(parseKey(keygen.stdout).bytes.length).toBe(32);
    expect(keygen.stdout.trim()).not.toBe(cli.key);
  });
});

describe('property commands, status and verify', () => {
  const DIR = 'ledger';
  let head = '';

  it('adds, updates, transfers, lists and shows a property (--json)', () => {
    const added = cli.json<SaveResult>(DIR, [
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
      '--attr',
      'pool=true',
      '--attr',
      'note=sea view',
    ]);
    expect(added.block.index).toBe(1);
    expect(added.property).toEqual({
      id: 'p1',
      name: 'Casa Azul',
      address: '1 Main St',
      owner: 'ann',
      attributes: { beds: 3, pool: true, note: 'sea view' },
    });

    const updated = cli.json<SaveResult>(DIR, [
      'property',
      'update',
      'p1',
      '--name',
      'Casa Verde',
      '--attr',
      'beds=4',
      '--attr',
      'pool=null',
    ]);
    expect(updated.block.index).toBe(2);
    expect(updated.block.previousHash).toBe(added.block.hash);
    expect(updated.property).toEqual({
      id: 'p1',
      name: 'Casa Verde',
      address: '1 Main St',
      owner: 'ann',
      attributes: { beds: 4, note: 'sea view' },
    });

    const moved = cli.json<SaveResult>(DIR, ['property', 'transfer', 'p1', '--from', 'ann', '--to', 'bob']);
    expect(moved.block.index).toBe(3);
    expect(moved.property.owner).toBe('bob');
    head = moved.block.hash;

    expect(cli.json<Property[]>(DIR, ['property', 'list'])).toEqual([moved.property]);
    const shown = cli.json<{ property: Property; history: HistoryEntry[] }>(DIR, ['property', 'show', 'p1']);
    expect(shown.property).toEqual(moved.property);
    expect(shown.history.map((h) => [h.blockIndex, h.transaction.type])).toEqual([
      [1, 'register'],
      [2, 'update'],
      [3, 'transfer'],
    ]);
    expect(shown.history[2]!.blockHash).toBe(head);
  });

  it('refuses a duplicate id (exit 1), a bad id (exit 2, naming the field) and a wrong owner (exit 1), saving nothing', async () => {
    const before = await snapshot(join(root, DIR));
    const dup = cli.run(DIR, [
      'property',
      'add',
      '--id',
      'p1',
      '--name',
      'Other',
      '--address',
      '2 Main St',
      '--owner',
      'carl',
    ]);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('property p1 is already registered');
    expect(dup.stdout).toBe('');

    const bad = cli.run(DIR, [
      'property',
      'add',
      '--id',
      'p 1!',
      '--name',
      'Other',
      '--address',
      '2 Main St',
      '--owner',
      'carl',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/\bid must be 1-128 letters/);

    const wrongOwner = cli.run(DIR, ['property', 'transfer', 'p1', '--from', 'ann', '--to', 'carl']);
    expect(wrongOwner.code).toBe(1);
    expect(wrongOwner.stderr).toContain('owned by someone other than ann');
    expect(await snapshot(join(root, DIR))).toEqual(before);
  });

  it('status --json reports the head, the counts, the key id and the tiers', () => {
    const s = cli.json<LedgerStatus>(DIR, ['status']);
    expect(s).toMatchObject({
      height: 3,
      headHash: head,
      totalBlocks: 4,
      totalProperties: 1,
      keyId: parseKey(cli.key).id,
    });
    expect(s.ledgerId).toMatch(/^[0-9a-f]{64}$/);
    // The local store, then every tier the sandbox leaves off (LEDGER_DB=off, no IPFS), each saying how to turn it on.
    expect(s.tiers[0]).toEqual({ name: 'local', state: 'ok', height: 3, role: 'local', detail: join(root, DIR) });
    expect(s.tiers.slice(1).map((t) => [t.name, t.state])).toEqual(TIER_NAMES.map((n) => [n, 'off']));
    expect(s.tiers.find((t) => t.name === 'db')!.detail).toMatch(/DATABASE_URL/);
  });

  it('verify exits 0 on the intact store and names the head', () => {
    const r = cli.run(DIR, ['verify']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`ok: 4 blocks verify, head ${head}\n`);
  });

  async function damagedCopy(name: string, damage: (segment: string) => Promise<void>): Promise<string> {
    await cp(join(root, DIR), join(root, name), { recursive: true });
    const gen = (await readFile(join(root, name, 'CURRENT'), 'utf8')).trim();
    const [segment] = (await readdir(join(root, name, gen))).filter((n) => n.endsWith('.seg')).sort();
    await damage(join(root, name, gen, segment!));
    return join(gen, segment!);
  }

  it('verify exits 1 naming the file and the block after one byte of a segment file is flipped', async () => {
    const rel = await damagedCopy('flipped', async (path) => {
      const rec = segmentRecords(await readFile(path)).find((r) => r.height === 2)!;
      await flipByte(path, rec.start + 52 + 30);
    });
    const r = cli.run('flipped', ['verify']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(rel);
    expect(r.stderr).toMatch(/block 2\b/);
    expect(r.stdout).not.toContain('ok');
  });

  it('verify exits 1 naming the block when a byte is changed and the checksums forged: only the seal can tell', async () => {
    await damagedCopy('forged', (path) =>
      withWritable(path, (buf) => {
        forgeRecord(buf, segmentRecords(buf).find((r) => r.height === 2)!, 30);
      }),
    );
    const r = cli.run('forged', ['verify']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/block 2 .*failed authentication/);
    expect(r.stdout).not.toContain('ok');
  });

  it('fails with a message about the key (exit 1), never printing a key, and leaves the ledger as it was', async () => {
    const before = await snapshot(join(root, DIR));
    const wrong = generateKey();
    const notAKey = 'my-ledger-passphrase-0123456789';
    const add = ['property', 'add', '--id', 'p9', '--name', 'n', '--address', 'a', '--owner', 'o'];
    const [status, write, malformed] = await Promise.all([
      cli.start(DIR, ['status'], { LEDGER_ENCRYPTION_KEY: wrong }),
      cli.start(DIR, add, { LEDGER_ENCRYPTION_KEY: wrong }),
      cli.start(DIR, ['status'], { LEDGER_ENCRYPTION_KEY: notAKey }),
    ]);
    for (const r of [status!, write!]) {
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(
        `was sealed with key ${parseKey(cli.key).id}, but the configured key is ${parseKey(wrong).id}`,
      );
      expect(r.stderr).toContain('Set LEDGER_ENCRYPTION_KEY');
      for (const k of [wrong, cli.key]) {
        expect(r.stdout + r.stderr).not.toContain(k);
        expect(r.stdout + r.stderr).not.toContain(parseKey(k).bytes.toString('hex'));
      }
    }
    expect(malformed!.code).toBe(1);
    expect(malformed!.stderr).toContain('LEDGER_ENCRYPTION_KEY is not a 32-byte key');
    expect(malformed!.stderr).toContain('pawledger keygen');
    expect(malformed!.stdout + malformed!.stderr).not.toContain(notAKey);
    // Nothing was replaced by a new genesis block: not one byte of the store changed.
    expect(await snapshot(join(root, DIR))).toEqual(before);
  });
});
