/**
 * `pawledger proof ID` and `pawledger proof verify FILE` (the built command): a proof written on the ledger's machine,
 * beside a running server or not, verifies on a machine with no key, no data folder and no server; exit 0 valid,
 * 1 invalid with the reason, 2 for a usage error.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliSandbox, type CliSandbox } from '../support/cli.js';
import { tempDir } from '../support/pg.js';
import { runCliAsync, startServe } from '../support/serve-process.js';

let root: string;
let cleanup: () => Promise<void>;
let cli: CliSandbox;

beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('proof-cli'));
  cli = cliSandbox(root);
});
afterAll(async () => {
  await cleanup();
});

// A stranger's machine: nothing of the ledger, not even its key.
async function verifyElsewhere(args: string[]) {
  const away = join(root, 'elsewhere');
  await mkdir(away, { recursive: true });
  return runCliAsync(away, { LOG_FORMAT: 'json', LEDGER_DATA_DIR: join(away, 'no-such-folder') }, [
    'proof',
    'verify',
    ...args,
  ]);
}

describe('pawledger proof', () => {
  it('writes a proof that verifies without the key or the data folder, and fails once edited', async () => {
    const add = ['property', 'add', '--id', 'p1', '--name', 'Casa', '--address', '1 Main St', '--owner', 'ann'];
    expect(cli.run('data', add).code).toBe(0);
    expect(
      cli.run('data', ['property', 'add', '--id', 'p2', '--name', 'Hidden', '--address', 'x', '--owner', 'o']).code,
    ).toBe(0);
    expect(cli.run('data', ['property', 'transfer', 'p1', '--from', 'ann', '--to', 'bo']).code).toBe(0);
    const out = join(root, 'p1.proof.json');
    const made = cli.run('data', ['proof', 'p1', '--out', out]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stderr).toContain(`to ${out}`);
    const text = await readFile(out, 'utf8');
    expect(text).not.toContain('Hidden');
    const stdout = cli.run('data', ['proof', 'p1']);
    expect(stdout.stdout).toBe(text);

    const ok = await verifyElsewhere([out]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(
      /^valid: property p1, 2 transactions in 2 blocks, in the chain at height 3 with root [0-9a-f]{64}\n$/,
    );
    expect(ok.stderr).not.toContain('key');
    const root64 = JSON.parse(text).head.root as string;
    expect((await verifyElsewhere([out, '--root', root64.toUpperCase()])).code).toBe(0);

    const other = await verifyElsewhere([out, '--root', 'ab'.repeat(32)]);
    expect(other.code).toBe(1);
    expect(other.stdout).toMatch(/^INVALID: the proof leads to root/);

    const edited = join(root, 'edited.json');
    await writeFile(edited, text.replace('"bo"', '"bz"'));
    const bad = await verifyElsewhere([edited]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^INVALID: /);

    expect((await verifyElsewhere([out, '--root', 'xyz'])).code).toBe(2);
    const missing = await verifyElsewhere([join(root, 'nope.json')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('nope.json');
    expect(cli.run('data', ['proof', 'nope']).code).toBe(1);
    expect(cli.run('data', ['proof', 'p1', '--limit', '101']).code).toBe(2);
  }, 120_000);

  it('goes through a running server, and verifies against a newer head with a consistency proof', async () => {
    const dataDir = join(root, 'served');
    const env = { ...cli.env, LEDGER_DATA_DIR: dataDir, ADMIN_TOKEN: 'proof-cli-token-0123456789' };
    const server = await startServe(root, { ...env, LOG_LEVEL: 'info' });
    try {
      const run = (args: string[]) => runCliAsync(root, env, args);
      expect((await run(['property', 'add', '--id', 'p1', '--name', 'n', '--address', 'a', '--owner', 'o'])).code).toBe(
        0,
      );
      const old = join(root, 'old.json');
      expect((await run(['proof', 'p1', '--out', old])).code).toBe(0);
      expect((await run(['property', 'add', '--id', 'p2', '--name', 'n', '--address', 'a', '--owner', 'o'])).code).toBe(
        0,
      );
      const from = JSON.parse(await readFile(old, 'utf8')).head.height as number;
      const res = await fetch(`${server.url}/chain/consistency?from=${from}`);
      const consistency = join(root, 'consistency.json');
      await writeFile(consistency, await res.text());
      const newRoot = JSON.parse(await readFile(consistency, 'utf8')).to.root as string;
      const ok = await verifyElsewhere([old, '--consistency', consistency, '--root', newRoot]);
      expect(ok.code, ok.stdout).toBe(0);
      expect(ok.stdout).toContain(`at height ${from + 1} with root ${newRoot}`);
      expect((await verifyElsewhere([old, '--root', newRoot])).code).toBe(1);
    } finally {
      await server.stop('SIGTERM');
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
