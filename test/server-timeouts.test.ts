/**
 * Slow clients (slowloris): a request whose headers or body stop arriving, or trickle in forever, loses its
 * connection after a bounded time, with or without a token, while the server goes on answering others.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { buildServer } from '../src/server/app.js';
import { Ledger } from '../src/service/ledger.js';
import { rawRequest, requestText } from './support/http-raw.js';

const TOKEN = 'timeout-test-token-0123456789abcdef';
const REQUEST_MS = 600;
const HEADERS_MS = 300;
// Node checks its timers every connectionsCheckingInterval; the server sets it to a quarter of the headers timeout.
const SLACK_MS = 400;

let dir: string;
let ledger: Ledger;
let app: FastifyInstance;
let port: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pl-timeouts-'));
  ledger = await Ledger.open({ config: { ...loadConfig({ LEDGER_DB: 'off' }), dataDir: join(dir, 'blocks') } });
  app = buildServer(ledger, { adminToken: TOKEN, requestTimeoutMs: REQUEST_MS, headersTimeoutMs: HEADERS_MS });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
});

afterAll(async () => {
  await app?.close();
  await ledger?.close();
  await rm(dir, { recursive: true, force: true });
});

// Headers of a POST whose body says 200 bytes are coming, followed by only the first 20.
function partialPost(token?: string): string {
  const body = JSON.stringify({
    id: 'slow',
    name: 'Slow',
    address: 'x',
    owner: 'o',
    attributes: { pad: 'p'.repeat(200) },
  });
  const head = requestText(
    'POST',
    '/properties',
    { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body,
  );
  return head.slice(0, head.indexOf('\r\n\r\n') + 4 + 20);
}

describe('slow clients', () => {
  it('a body that stops arriving is cut off within the request timeout, with a token or without', async () => {
    for (const token of [TOKEN, undefined, 'wrong-token']) {
      const res = await rawRequest(port, partialPost(token), 5000);
      expect(res.closedAfterMs, `token ${token ?? 'none'}`).not.toBeNull();
      expect(res.closedAfterMs!).toBeLessThan(REQUEST_MS + SLACK_MS);
      // With the token the server was waiting for the body: it says why it gave up, in the API's error shape.
      if (token === TOKEN) {
        expect(res.status).toBe(408);
        expect(JSON.parse(res.body)).toEqual({
          error: { code: 'REQUEST_TIMEOUT', message: 'the request did not arrive in time' },
        });
      }
    }
    expect(ledger.head.index).toBe(0);
  });

  it('headers that stop arriving are cut off within the headers timeout', async () => {
    const res = await rawRequest(port, 'GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ', 5000);
    expect(res.closedAfterMs).not.toBeNull();
    expect(res.closedAfterMs!).toBeLessThan(HEADERS_MS + SLACK_MS);
  });

  it('a body that trickles in a byte at a time is cut off all the same, and others are served meanwhile', async () => {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const started = performance.now();
    const closed = new Promise<number>((r) => socket.once('close', () => r(performance.now() - started)));
    socket.on('error', () => undefined);
    socket.write(partialPost(TOKEN));
    const drip = setInterval(() => socket.writable && socket.write('p'), 50);
    try {
      const status = await app.inject({ method: 'GET', url: '/healthz' });
      expect(status.statusCode).toBe(200);
      const other = await rawRequest(port, requestText('GET', '/status'));
      expect(other.status).toBe(200);
      expect(await closed).toBeLessThan(REQUEST_MS + SLACK_MS);
    } finally {
      clearInterval(drip);
      socket.destroy();
    }
  });

  it("what is not HTTP, or has headers over the size limit, is answered in the API's error shape", async () => {
    const garbage = await rawRequest(port, 'HELLO\r\n\r\n');
    expect(garbage.status).toBe(400);
    expect(JSON.parse(garbage.body).error.code).toBe('BAD_REQUEST');
    const huge = await rawRequest(port, requestText('GET', '/status', { 'x-big': 'h'.repeat(20_000) }));
    expect(huge.status).toBe(431);
    expect(JSON.parse(huge.body).error).toEqual({ code: 'BAD_REQUEST', message: 'the request headers are too large' });
  });

  it('defaults: 30 s for a request, 10 s for its headers, 72 s for an idle keep-alive connection', async () => {
    const defaults = buildServer(ledger, { adminToken: TOKEN });
    try {
      expect(defaults.server.requestTimeout).toBe(30_000);
      expect(defaults.server.headersTimeout).toBe(10_000);
      expect(defaults.server.keepAliveTimeout).toBe(72_000);
    } finally {
      await defaults.close();
    }
  });
});
