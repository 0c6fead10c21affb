/**
 * Authorization as a hostile client probes it: every change route and every /admin route the router really has,
 * asked for under every other spelling of its path that an HTTP server may route to it (percent-encoding, absolute-form
 * targets, doubled and trailing slashes, other cases, dot segments, HEAD for GET), over a raw socket to a listening
 * server, without a token and with a wrong one. None may succeed, and none may answer with backup data.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../src/server/app.js';
import { Ledger } from '../src/service/ledger.js';
import { collectRoutes, rawRequest, requestText, type RouteInfo } from './support/http-raw.js';
import { createTempDatabase, ledgerConfig, type TempDatabase } from './support/pg.js';

const TOKEN = 'access-test-token-0123456789abcdef';
const MARKER = 'Backup-Marker-7f3a';
const HOUSE = { id: 'house-1', name: 'Old Mill', address: '1 River Lane', owner: 'alice' };

let dir: string;
let db: TempDatabase;
let ledger: Ledger;
let app: FastifyInstance;
let routes: RouteInfo[];
let port: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pl-access-'));
  db = await createTempDatabase();
  ledger = await Ledger.open({ config: ledgerConfig(join(dir, 'blocks'), db.url) });
  await ledger.register(HOUSE);
  await ledger.backupToDatabase({ name: MARKER, adminId: 1 });
  app = buildServer(ledger, { adminToken: TOKEN, rateLimit: 0 });
  routes = collectRoutes(app);
  // Added by the test, with no access declared: the server must treat it as admin (fail closed).
  app.get('/undeclared', async () => ({ secret: MARKER }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
});

afterAll(async () => {
  await app?.close();
  await ledger?.close();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

const hex = (c: string, upper: boolean) =>
  `%${c.charCodeAt(0).toString(16).padStart(2, '0')[upper ? 'toUpperCase' : 'toLowerCase']()}`;

/** spellings lists other ways to write `path` as a request target that a router might match to the same route. */
function spellings(path: string): string[] {
  const segs = path.split('/').slice(1);
  const join = (s: string[]) => `/${s.join('/')}`;
  const out = new Set<string>([path]);
  segs.forEach((seg, i) => {
    for (const upper of [false, true]) {
      out.add(join(segs.map((s, j) => (j === i ? hex(s[0]!, upper) + s.slice(1) : s))));
      out.add(join(segs.map((s, j) => (j === i ? s.slice(0, -1) + hex(s.at(-1)!, upper) : s))));
    }
    out.add(join(segs.map((s, j) => (j === i ? [...s].map((c) => hex(c, false)).join('') : s))));
    out.add(join(segs.map((s, j) => (j === i ? s.toUpperCase() : s))));
    out.add(join(segs.map((s, j) => (j === i ? `${s};x=1` : s))));
    void seg;
  });
  const last = path.lastIndexOf('/');
  for (const p of [
    `/${path}`,
    `${path.slice(0, last)}//${path.slice(last + 1)}`,
    `${path}/`,
    `${path}//`,
    path.toUpperCase(),
    `/.${path}`,
    `/x/..${path}`,
    `${path}/.`,
    `${path}?`,
    `${path}?x=1`,
    `${path}#x`,
    `${path}%00`,
    `${path}%20`,
  ])
    out.add(p);
  for (const base of [
    `http://127.0.0.1:${port}`,
    'http://localhost',
    'HTTP://EXAMPLE.COM',
    'https://example.com:443',
  ]) {
    out.add(`${base}${path}`);
    out.add(`${base}/${hex(path[1]!, false)}${path.slice(2)}`);
    out.add(`${base}/${path}`);
  }
  return [...out];
}

// A request body each change route would accept if it got that far: the register body also fits PATCH (name, address).
function bodyFor(route: RouteInfo): string {
  if (route.url.endsWith('/transfer')) return JSON.stringify({ from: 'alice', to: 'mallory' });
  if (route.url.startsWith('/properties'))
    return JSON.stringify(route.method === 'POST' ? { ...HOUSE, id: 'house-2' } : { name: 'Stolen' });
  return JSON.stringify(route.url.endsWith('/prune') ? { keepLast: 1 } : {});
}

// A wildcard route (the docs UI's static files) is probed with a file it serves.
const concrete = (url: string) => url.replace(':id', HOUSE.id).replace(/\*$/, 'swagger-ui.css');
// GET /metrics needs a token too (METRICS_TOKEN, else the admin token).
const guarded = (r: RouteInfo) =>
  (r.method !== 'GET' && r.method !== 'HEAD') || r.url.startsWith('/admin') || r.url === '/metrics';

describe('authorization is decided by the route the router matched', () => {
  it('the router has the routes this test probes', () => {
    expect(routes.filter(guarded).length).toBeGreaterThanOrEqual(8);
    expect(routes.some((r) => r.method === 'HEAD' && r.url === '/admin/backups')).toBe(true);
  });

  it('no spelling of a change or /admin route succeeds without the admin token or with a wrong one', async () => {
    const before = { height: ledger.head.index, backups: (await ledger.listBackups()).length };
    const failures: string[] = [];
    let sent = 0;
    for (const route of routes.filter(guarded)) {
      const methods = route.method === 'GET' ? ['GET', 'HEAD', 'get'] : [route.method];
      for (const target of spellings(concrete(route.url))) {
        for (const auth of [
          undefined,
          'Bearer wrong-token',
          `Bearer ${TOKEN}x`,
          `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`,
        ]) {
          for (const method of methods) {
            const body = method === 'GET' || method === 'HEAD' ? undefined : bodyFor(route);
            const headers: Record<string, string> = {
              ...(auth ? { authorization: auth } : {}),
              ...(body ? { 'content-type': 'application/json' } : {}),
            };
            const res = await rawRequest(port, requestText(method, target, headers, body));
            sent++;
            if ((res.status >= 200 && res.status < 300) || res.body.includes(MARKER) || res.status === 0) {
              failures.push(`${method} ${target} (${auth ?? 'no token'}) -> ${res.status} ${res.body.slice(0, 120)}`);
            }
          }
        }
      }
    }
    expect(sent).toBeGreaterThan(500);
    expect(failures).toEqual([]);
    expect(ledger.head.index).toBe(before.height);
    expect((await ledger.listBackups()).length).toBe(before.backups);
  });

  it('the canonical spelling of each guarded route answers 401 with WWW-Authenticate, and with the token is served', async () => {
    for (const route of routes.filter((r) => r.url.startsWith('/admin') && r.method === 'GET')) {
      const refused = await rawRequest(port, requestText('GET', route.url));
      expect(refused.status, route.url).toBe(401);
      expect(refused.headers['www-authenticate']).toBe('Bearer');
      expect(JSON.parse(refused.body).error.code).toBe('UNAUTHORIZED');
      const served = await rawRequest(
        port,
        requestText('GET', `http://127.0.0.1:${port}/%61dmin/backups`, { authorization: `Bearer ${TOKEN}` }),
      );
      expect(served.status).toBe(200);
      expect(served.body).toContain(MARKER);
    }
  });

  it('a route that declares no access needs the admin token (fail closed)', async () => {
    for (const target of ['/undeclared', '/%75ndeclared', `http://127.0.0.1:${port}/undeclared`]) {
      const res = await rawRequest(port, requestText('GET', target));
      expect(res.status, target).toBe(401);
      expect(res.body).not.toContain(MARKER);
    }
    expect(
      (await rawRequest(port, requestText('GET', '/undeclared', { authorization: `Bearer ${TOKEN}` }))).status,
    ).toBe(200);
  });

  it('public reads stay public under any spelling, and an unknown route is a JSON 404 without revealing more', async () => {
    for (const route of routes.filter((r) => r.method === 'GET' && !guarded(r) && r.url !== '/undeclared')) {
      // @fastify/static (the docs UI's files) finds a file by the origin-form path only.
      const target = route.url.endsWith('*') ? concrete(route.url) : `http://127.0.0.1:${port}${concrete(route.url)}`;
      const res = await rawRequest(port, requestText('GET', target));
      // The docs UI's old index.html address redirects to the UI.
      expect(res.status, route.url).toBe(route.url.endsWith('/index.html') ? 302 : 200);
    }
    for (const target of ['/nowhere', '/admin/nowhere', '/admin', '/%61dmin']) {
      const res = await rawRequest(port, requestText('GET', target));
      expect(res.status, target).toBe(404);
      expect(JSON.parse(res.body).error.code).toBe('NOT_FOUND');
    }
  });
});
