/**
 * The CLI's side of the control channel when the server goes quiet in the middle of a change: it gives up within a
 * bounded time, says whether the server is stopped or busy and that the change's outcome is unknown, and refuses a
 * socket answered by another process than the one holding the ledger. The server here is a stand-in child process
 * that answers pings and never the change, so that it can be stopped or made to spin at the right moment.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { callServer, type ControlTarget } from '../../src/cli/control-client.js';
import { ConfigError, UnavailableError } from '../../src/errors.js';
import { tempDir } from '../support/pg.js';

// Answers GET /healthz at once; a POST to /slow is never answered, and a POST to /spin blocks the event loop.
const STAND_IN = `
const http = require('node:http');
http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json', 'pawledger-server-pid': String(process.pid) });
    return res.end('{"ok":true}');
  }
  if (req.url === '/spin') for (;;) {}
}).listen(process.argv[1], () => process.stdout.write('ready\\n'));
`;

describe('the control client when the server goes quiet during a change', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let child: ChildProcess | null = null;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('control-client'));
  });
  afterEach(() => {
    child?.kill('SIGKILL');
    child = null;
  });
  afterAll(async () => {
    await cleanup();
  });

  async function standIn(name: string): Promise<ControlTarget> {
    const socketPath = join(dir, `${name}.sock`);
    child = spawn(process.execPath, ['-e', STAND_IN, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve) => child!.stdout!.once('data', resolve));
    return { dir, socketPath, pid: child.pid!, timeoutMs: 300 };
  }

  it('gives up soon after the server is stopped, saying the outcome is unknown and how to resume it', async () => {
    const t = await standIn('stopped');
    const call = callServer(t, { method: 'POST', url: '/slow', body: {} });
    await new Promise((r) => setTimeout(r, 500));
    child!.kill('SIGSTOP');
    const started = performance.now();
    const err = await call.catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(3000);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toContain(`(process ${t.pid}) stopped answering while it ran POST /slow`);
    expect((err as Error).message).toContain('whether that change was made is unknown');
    expect((err as UnavailableError).hint).toContain(`kill -CONT ${t.pid}`);
    child!.kill('SIGCONT');
  });

  it('gives up after three unanswered pings when the server runs but does not answer', async () => {
    const t = await standIn('spinning');
    const started = performance.now();
    const err = await callServer(t, { method: 'POST', url: '/spin', body: {} }).catch((e: unknown) => e);
    // Three pings, each sent a timeout after the last and waited on for one: about 6 timeouts.
    expect(performance.now() - started).toBeLessThan(6 * t.timeoutMs + 2000);
    expect((err as Error).message).toContain('stopped answering while it ran POST /spin');
    expect((err as Error).message).toContain('it may be overloaded or hung');
  });

  it('refuses a socket answered by another process than the one holding the ledger', async () => {
    const t = await standIn('other');
    const err = await callServer({ ...t, pid: t.pid + 100_000 }, { method: 'POST', url: '/slow' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe(
      `${t.socketPath} is answered by process ${t.pid}, but process ${t.pid + 100_000} holds the ledger`,
    );
  });
});
