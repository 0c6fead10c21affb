/**
 * Closed schemas on every route: an unknown body field or query parameter is a 400 naming it (never silently
 * dropped, never ignored), values are checked for type and range without coercion, and the messages name the field
 * in the Ledger's own words.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { buildServer } from '../src/server/app.js';
import { Ledger } from '../src/service/ledger.js';
import { TIER_NAMES } from '../src/tiers/registry.js';
import { collectRoutes, type RouteInfo } from './support/http-raw.js';

const TOKEN = 'schema-test-token-0123456789abcdef';
const HOUSE = { id: 'house-1', name: 'Old Mill', address: '1 River Lane', owner: 'alice' };

let dir: string;
let ledger: Ledger;
let app: FastifyInstance;
let routes: RouteInfo[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pl-schemas-'));
  ledger = await Ledger.open({ config: { ...loadConfig({ LEDGER_DB: 'off' }), dataDir: join(dir, 'blocks') } });
  await ledger.register(HOUSE);
  app = buildServer(ledger, { adminToken: TOKEN, rateLimit: 0 });
  routes = collectRoutes(app);
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await ledger?.close();
  await rm(dir, { recursive: true, force: true });
});

function send(method: string, url: string, body?: unknown): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return app.inject({
    method: method as 'GET',
    url,
    headers,
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
}

function expectField(res: LightMyRequestResponse, field: string, message?: RegExp): void {
  expect(res.statusCode, res.body).toBe(400);
  expect(res.json().error).toMatchObject({ code: 'VALIDATION', field });
  if (message) expect(res.json().error.message).toMatch(message);
}

const concrete = (url: string) => url.replace(':id', HOUSE.id);
const takesBody = (r: RouteInfo) => r.method === 'POST' || r.method === 'PATCH';

describe('closed schemas', () => {
  it('an unknown query parameter is a 400 naming it, on every route the router has', async () => {
    expect(routes.length).toBeGreaterThanOrEqual(14);
    // A body is checked before the query string: a body route is sent bodies until one its schema takes.
    const bodies = [{}, { ...HOUSE, id: 'house-9' }, { name: 'New name' }, { from: 'alice', to: 'bob' }, { id: '1' }];
    for (const route of routes) {
      const errors = [];
      for (const body of takesBody(route) ? bodies : [undefined]) {
        const res = await send(route.method, `${concrete(route.url)}?verbose=1`, body);
        expect(res.statusCode, `${route.method} ${route.url}`).toBe(400);
        if (route.method !== 'HEAD') errors.push(res.json().error);
      }
      if (route.method !== 'HEAD')
        expect(errors, `${route.method} ${route.url}`).toContainEqual({
          code: 'VALIDATION',
          field: 'verbose',
          message: 'verbose is not a known query parameter',
        });
    }
    expect(ledger.head.index).toBe(1);
  });

  it('an unknown body field is a 400 naming it, on every route that takes a body, and nothing runs', async () => {
    const before = ledger.head.hash;
    for (const route of routes.filter(takesBody)) {
      const res = await send(route.method, concrete(route.url), { dryrun: true });
      expectField(res, 'dryrun', /^dryrun is not a known field$/);
    }
    // Among valid fields too: the typo is refused, not dropped.
    expectField(await send('POST', '/admin/backups/prune', { keepLast: 1, dryrun: true }), 'dryrun');
    expectField(
      await send('POST', '/properties', { ...HOUSE, id: 'house-2', colour: 'red' }),
      'colour',
      /^colour is not a known field$/,
    );
    expectField(
      await send('POST', `/properties/${HOUSE.id}/transfer`, { from: 'alice', to: 'bob', force: true }),
      'force',
    );
    // A client's own key is echoed cut short.
    expectField(await send('POST', '/admin/restore', { ['k'.repeat(5000)]: 1 }), `${'k'.repeat(100)}…`);
    expect(ledger.head.hash).toBe(before);
  });

  it("values are checked for type without coercion, with messages in the Ledger's words", async () => {
    expectField(
      await send('POST', '/admin/backups/prune', { keepLast: 1, dryRun: 'true' }),
      'dryRun',
      /dryRun must be a boolean/,
    );
    expectField(await send('POST', '/admin/restore', { dryRun: 1 }), 'dryRun');
    expectField(
      await send('POST', '/properties', { ...HOUSE, id: 'house-2', name: 5 }),
      'name',
      /^name must be a string$/,
    );
    expectField(
      await send('POST', '/properties', { ...HOUSE, id: 'house-2', owner: 'x'.repeat(501) }),
      'owner',
      /^owner is longer than 500 characters$/,
    );
    expectField(await send('POST', '/properties', { ...HOUSE, id: 'bad id!' }), 'id', /^id must be 1-128 letters/);
    expectField(
      await send('POST', '/properties', { id: 'house-2', name: 'n', address: 'a' }),
      'owner',
      /^owner is required$/,
    );
    expectField(await send('POST', '/properties', [HOUSE]), 'body', /the body must be a JSON object/);
    expectField(
      await send('PATCH', `/properties/${HOUSE.id}`, { attributes: 'big' }),
      'attributes',
      /^attributes must be an object$/,
    );
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i]));
    expectField(
      await send('PATCH', `/properties/${HOUSE.id}`, { attributes: many }),
      'attributes',
      /more than 64 keys/,
    );
    expectField(await send('GET', '/properties/bad%20id'), 'id');
    expectField(
      await send('GET', '/admin/backups?tier=tape'),
      'tier',
      new RegExp(`tier must be one of ${TIER_NAMES.join(', ')}`), // every tier the registry knows, in its order
    );
    expectField(await send('GET', '/chain?limit=10&limit=20'), 'limit');
    expect(ledger.head.index).toBe(1);
  });

  it('attribute maps stay open: any keys the caller chooses are user data', async () => {
    const res = await send('PATCH', `/properties/${HOUSE.id}`, {
      attributes: { dryrun: true, 'any key': [1, { deep: 'x' }] },
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().property.attributes).toEqual({ dryrun: true, 'any key': [1, { deep: 'x' }] });
  });

  it('backup names and admin ids are checked before they reach a database: printable, bounded, in range', async () => {
    for (const name of [
      'with\u0000nul',
      'bell\u0007',
      'line\nbreak',
      '\u007f',
      '',
      '   ',
      'x'.repeat(201),
      '\ud800lone surrogate',
    ]) {
      expectField(await send('POST', '/admin/backups', { name }), 'name');
    }
    for (const adminId of [2 ** 31, -1, 1.5, 2 ** 53, '7']) {
      expectField(
        await send('POST', '/admin/backups', { adminId }),
        'adminId',
        typeof adminId === 'number' && Number.isInteger(adminId)
          ? /adminId must be an integer from 0 to 2147483647/
          : undefined,
      );
    }
    expectField(
      await send('POST', '/admin/restore', {
        cid: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy',
        backupId: '2',
      }),
      'backupId',
      /cannot be given with cid/,
    );
    expectField(await send('POST', '/admin/restore', { backupId: '../1' }), 'backupId');
    expectField(await send('POST', '/admin/backups/protect', {}), 'id', /^id is required$/);
  });
});
