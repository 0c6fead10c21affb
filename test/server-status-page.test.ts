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

  it('shows freshness and drills with the token only, as /status does', async () => {
    const html = (token?: string) =>
      app.inject({
        url: '/',
        headers: { accept: 'text/html', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      });
    expect((await app.inject({ url: '/status' })).json()).not.toHaveProperty('assurance');
    const open = await html();
    expect(open.body).toMatch(/shown with the admin token/);
    expect(open.body).not.toContain('id="freshness"');
    // No backup tier here (LEDGER_DB=off): the full page says there is nothing to drill.
    expect((await html(TOKEN)).body).toContain('No backup tier is on: there is nothing to drill.');
  });

  it('serves the proof checker as a page of its own: no refresh, only its own scripts', async () => {
    const res = await app.inject({ url: '/proof-check', headers: { accept: 'text/html' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toBe(
      "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    expect(res.body).not.toContain('http-equiv="refresh"');
    expect(res.body).toContain('<script type="module" src="/proof-check.js"></script>');
    const script = await app.inject({ url: '/proof-check.js' });
    expect(script.statusCode).toBe(200);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(script.body).toContain("import { verifyProofText } from '/proof-verifier.js';");
  });

  it('refuses a query string, as every route does', async () => {
    const res = await app.inject({ url: '/?x=1', headers: { accept: 'text/html' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('VALIDATION');
  });
});
