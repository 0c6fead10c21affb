/**
 * The CLI beside a running `pawledger serve` on the same data folder: reads work (and see the server's saves), writes
 * go through the server's control channel (the server writes; the CLI never takes its lock), and a process holding
 * the ledger without offering the channel is named and left alone.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Property } from '../../src/ledger/types.js';
import type { LedgerStatus } from '../../src/service/ledger.js';
import { cliSandbox, type CliSandbox } from '../support/cli.js';
import { startServe, type ServeProcess } from '../support/serve-process.js';

describe('the CLI while serve holds the write lock', () => {
  const token = 'cli-lock-admin-token-0123456789';
  let root: string;
  let cli: CliSandbox;
  let server: ServeProcess;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'pl-cli-lock-'));
    cli = cliSandbox(root);
    // LOG_LEVEL info: startServe waits for the "serving on" line.
    server = await startServe(
      root,
      { ...cli.env, LOG_LEVEL: 'info', LEDGER_DATA_DIR: join(root, 'blocks'), ADMIN_TOKEN: token },
      90_000,
    );
    const res = await fetch(`${server.url}/properties`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 's1', name: 'Served', address: '5 Port St', owner: 'sam' }),
    });
    expect(res.status).toBe(201);
  }, 120_000);
  afterAll(async () => {
    if (server) expect(await server.stop()).toBe(0);
    await rm(root, { recursive: true, force: true });
  });

  it('answers status and property list, including what the server saved', () => {
    const s = cli.json<LedgerStatus>('blocks', ['status']);
    expect(s).toMatchObject({ height: 1, totalBlocks: 2, totalProperties: 1 });
    // Who writes: the server, by the data folder's LOCK file.
    expect(s.writer).toMatchObject({
      mode: 'lock',
      role: 'standby',
      holder: expect.stringMatching(new RegExp(`:${server.child.pid}$`)),
    });
    expect(cli.run('blocks', ['status']).stdout).toMatch(
      new RegExp(`writer:\\s+\\S+:${server.child.pid} holds the data folder LOCK since`),
    );
    expect(cli.json<Property[]>('blocks', ['property', 'list']).map((p) => p.id)).toEqual(['s1']);
  });

  it('sends a write through the server, which saves it and keeps its lock', async () => {
    const r = await cli.start('blocks', [
      'property',
      'add',
      '--id',
      's2',
      '--name',
      'n',
      '--address',
      'a',
      '--owner',
      'o',
    ]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/saved in block: 2/);
    expect((await readFile(join(root, 'blocks', 'LOCK'), 'utf8')).trim()).toBe(String(server.child.pid));
    // The server saved it: its own API shows it, and it still takes changes over HTTP.
    const list = (await (await fetch(`${server.url}/properties`)).json()) as { properties: Property[] };
    expect(list.properties.map((p) => p.id)).toEqual(['s1', 's2']);
    const res = await fetch(`${server.url}/properties/s1/transfer`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ from: 'sam', to: 'tia' }),
    });
    expect(res.status).toBe(200);
  });
});

describe('the CLI while another process holds the ledger without a control channel', () => {
  let root: string;
  let cli: CliSandbox;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'pl-cli-nochannel-'));
    cli = cliSandbox(root);
    expect(
      cli.run('blocks', ['property', 'add', '--id', 'a', '--name', 'n', '--address', 'a', '--owner', 'o']).code,
    ).toBe(0);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('refuses a write with exit 1, naming the holder, and leaves its LOCK alone', async () => {
    // A live process that holds the LOCK (as a long command would) and answers on no socket.
    const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await writeFile(join(root, 'blocks', 'LOCK'), `${holder.pid}\n`);
      const r = cli.run('blocks', ['property', 'add', '--id', 'b', '--name', 'n', '--address', 'a', '--owner', 'o']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`in use by process ${holder.pid}, which offers no control channel`);
      expect(r.stderr).toMatch(/Wait for it and retry, or stop that process/);
      expect((await readFile(join(root, 'blocks', 'LOCK'), 'utf8')).trim()).toBe(String(holder.pid));
    } finally {
      holder.kill();
    }
  });
});

describe('the embedded database while serve holds it', () => {
  const token = 'pglite-lock-admin-token-0123456789';
  let root: string;
  let cli: CliSandbox;
  let server: ServeProcess;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'pl-pglite-lock-'));
    cli = cliSandbox(root);
    // Both data folders below share the default embedded database folder, ./.pawledger/db in the same cwd.
    // PGlite's first start (initdb and the migrations, in WebAssembly) takes seconds alone and over 30 s on a loaded
    // 2-core machine, where serve's default limits (30 s for a restore source, 2 s for a tier call) would give up on it.
    server = await startServe(
      root,
      {
        ...cli.env,
        LEDGER_DB: 'embedded',
        LOG_LEVEL: 'info',
        LEDGER_DATA_DIR: join(root, 'one'),
        ADMIN_TOKEN: token,
        LEDGER_SOURCE_TIMEOUT_MS: '240000',
        LEDGER_TIER_TIMEOUT_MS: '60000',
      },
      240_000,
    );
  }, 300_000);
  afterAll(async () => {
    if (server) expect(await server.stop()).toBe(0);
    await rm(root, { recursive: true, force: true });
  }, 120_000);

  it('refuses a second process on another data folder, naming the one that has it open', { timeout: 120_000 }, () => {
    const r = cli.run('two', ['property', 'add', '--id', 'x', '--name', 'n', '--address', 'a', '--owner', 'o'], {
      LEDGER_DB: 'embedded',
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `the embedded database in ${join(root, '.pawledger', 'db')} is in use by process ${server.child.pid}`,
    );
  });
});
