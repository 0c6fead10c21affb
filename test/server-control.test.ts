/**
 * The control channel in process: the same routes as the HTTP API on a Unix socket, the operator's view of /status,
 * the import route that only this channel has, a refusal of anything that did not come in on the socket, and the
 * socket and folder it sets up and takes down.
 */
import { chmod, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { assembleServer, buildServer } from '../src/server/app.js';
import { openControlChannel, type ControlChannel } from '../src/server/control-server.js';
import { requireAdmin } from '../src/server/auth.js';
import { requireLocalPeer } from '../src/server/local-peer.js';
import { registerLocalRoutes } from '../src/server/local-routes.js';
import { Ledger } from '../src/service/ledger.js';
import { rawRequest } from './support/control.js';
import { captureLogger, TEST_KEY, tempDir } from './support/pg.js';

const TOKEN = 'control-server-token-0123456789';

describe('the control channel', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let dataDir: string;
  let ledger: Ledger;
  let channel: ControlChannel;
  const { logger, lines } = captureLogger();

  beforeAll(async () => {
    ({ dir: root, cleanup } = await tempDir('control-server'));
    dataDir = join(root, 'blocks');
    ledger = await Ledger.open({
      config: loadConfig({ LEDGER_DB: 'off', LEDGER_DATA_DIR: dataDir, LEDGER_ENCRYPTION_KEY: TEST_KEY }),
    });
    // As if someone had opened the folder up: the channel closes it again, and says so.
    await chmod(dataDir, 0o755);
    channel = await openControlChannel(ledger, dataDir, { logger });
  });
  afterAll(async () => {
    await channel?.close();
    await ledger?.close();
    await cleanup();
  });

  it('serves the same routes on a 0600 socket in a folder it made 0700, changes answered in full', async () => {
    expect(channel.path).toBe(join(dataDir, 'control.sock'));
    expect((await stat(channel.path)).mode & 0o777).toBe(0o600);
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    expect(lines.join('\n')).toContain('was open to other users (mode 755): set to 0700');

    const saved = await rawRequest(channel.path, 'POST', '/properties', {
      body: { id: 'c1', name: 'n', address: 'a', owner: 'o' },
    });
    expect(saved.status).toBe(201);
    // The whole block, as Ledger.register returns it (the HTTP API answers only its index and hash).
    expect(saved.body).toMatchObject({ block: { index: 1, transactions: [{ type: 'register' }] } });
    // Without a token, the operator's /status: who writes, by instance name.
    const s = await rawRequest(channel.path, 'GET', '/status');
    expect(s.body).toMatchObject({ height: 1, writer: { mode: 'lock', role: 'writer' } });
    expect((s.body.writer as { instance: string }).instance).toMatch(/:\d+$/);
    // The schemas are the HTTP API's: closed, naming the field.
    const bad = await rawRequest(channel.path, 'POST', '/admin/import', { body: { path: 'relative.enc' } });
    expect(bad).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION', field: 'path' } } });
  });

  it('keeps import, which names a file on this machine, off the HTTP API even with the token', async () => {
    const http = buildServer(ledger, { adminToken: TOKEN });
    try {
      const r = await http.inject({
        method: 'POST',
        url: '/admin/import',
        headers: { authorization: `Bearer ${TOKEN}` },
        payload: { path: '/etc/passwd' },
      });
      expect(r.statusCode).toBe(404);
    } finally {
      await http.close();
    }
    // Even a server that registered it by mistake refuses it to the token: 'local' routes answer only the channel.
    const mistaken = assembleServer(
      ledger,
      {},
      { access: requireAdmin(TOKEN), fullSaves: false, routes: registerLocalRoutes },
    );
    try {
      const r = await mistaken.inject({
        method: 'POST',
        url: '/admin/import',
        headers: { authorization: `Bearer ${TOKEN}` },
        payload: { path: '/etc/passwd' },
      });
      expect(r.statusCode).toBe(403);
      expect(r.json()).toMatchObject({ error: { code: 'FORBIDDEN' } });
    } finally {
      await mistaken.close();
    }
  });

  it('refuses a request that did not come in on its Unix socket', async () => {
    const tcp = assembleServer(
      ledger,
      {},
      {
        access: requireLocalPeer({ socketPath: channel.path, uid: process.getuid!(), ino: () => null }),
        fullSaves: true,
      },
    );
    try {
      const url = await tcp.listen({ host: '127.0.0.1', port: 0 });
      const r = await fetch(`${url}/properties`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'tcp', name: 'n', address: 'a', owner: 'o' }),
      });
      expect(r.status).toBe(403);
      expect(((await r.json()) as { error: { message: string } }).error.message).toBe(
        'the control channel answers only on its Unix socket',
      );
    } finally {
      await tcp.close();
    }
    expect(ledger.properties().map((p) => p.id)).toEqual(['c1']);
  });

  it('removes its socket when it closes, and will not replace a file that is not a socket', async () => {
    const other = join(root, 'other');
    await mkdir(other, { mode: 0o700 });
    const c = await openControlChannel(ledger, other, { logger });
    await c.close();
    await expect(stat(join(other, 'control.sock'))).rejects.toMatchObject({ code: 'ENOENT' });

    await writeFile(join(other, 'control.sock'), 'not a socket');
    await expect(openControlChannel(ledger, other, { logger })).rejects.toThrow(ConfigError);
    await expect(openControlChannel(ledger, other, { logger })).rejects.toThrow(/exists and is not a socket/);
    await rm(other, { recursive: true });
  });
});
