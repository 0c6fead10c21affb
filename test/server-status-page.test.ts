import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { buildServer } from '../src/server/app.js';
import { Ledger } from '../src/service/ledger.js';

const TOKEN = 'status-page-token-0123456789';
let tmp: string;
let ledger: Ledger;
let app: FastifyInstance;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'pawledger-page-inject-'));
  ledger = await Ledger.open({ config: { ...loadConfig({ LEDGER_DB: 'off' }), dataDir: tmp } });
  app = buildServer(ledger, { adminToken: TOKEN, rateLimit: 0 });
});

afterAll(async () => {
  await app.close();
  await ledger.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('GET /', () => {
  it('answers a browser with a page that runs nothing and is not stored', async () => {
    const res = await app.inject({ url: '/', headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toMatch(/^default-src 'none'; style-src 'unsafe-inline'/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toMatch(/<meta http-equiv="refresh" content="\d+">/);
    expect(res.body).not.toMatch(/<script/i);
  });

  it('answers anyone else with the JSON of /status, by the same rule', async () => {
    for (const token of [undefined, TOKEN]) {
      const headers = token ? { authorization: `Bearer ${token}` } : {};
      const root = await app.inject({ url: '/', headers: { ...headers, accept: 'application/json' } });
      const status = await app.inject({ url: '/status', headers });
      expect(root.headers['content-type']).toMatch(/^application\/json/);
      expect(root.json()).toEqual(status.json());
    }
  });

  it('refuses a query string, as every route does', async () => {
    const res = await app.inject({ url: '/?x=1', headers: { accept: 'text/html' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('VALIDATION');
  });
});
