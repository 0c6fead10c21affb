import { mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config.js';
import { ConfigError, LockedError } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { buildServer } from '../src/server/app.js';
import { bearerToken, tokenMatches } from '../src/server/auth.js';
import { Ledger } from '../src/service/ledger.js';

const TOKEN = 'test-admin-token-0123456789';

// A stack line in a body, raw or JSON-escaped ("\n    at fn (file.ts:1:2)"), or any source position.
const STACK = /(\\n|\n)\s+at |\.(ts|js|mjs|cjs):\d+:\d+/;

const HOUSE = {
  id: 'house-1',
  name: 'Old Mill',
  address: '1 River Lane',
  owner: 'alice',
  attributes: { rooms: 4, garden: true },
};

let tmp: string;
let ledger: Ledger;
let app: FastifyInstance;

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

/** call sends one request through inject; every response is checked for stack traces on the way. */
async function call(
  method: Method,
  url: string,
  options: { body?: unknown; raw?: string; token?: string | null; headers?: Record<string, string> } = {},
): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = { ...options.headers };
  const token = options.token === undefined ? TOKEN : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let payload: string | undefined;
  if (options.raw !== undefined) payload = options.raw;
  else if (options.body !== undefined) payload = JSON.stringify(options.body);
  if (payload !== undefined) headers['content-type'] ??= 'application/json';
  const res = await app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) });
  expect(res.body).not.toMatch(STACK);
  if (res.statusCode >= 400 && res.statusCode !== 500)
    expect(res.headers['content-type']).toMatch(/^application\/json/);
  return res;
}

async function height(): Promise<number> {
  return (await call('GET', '/status')).json().height;
}

function expectError(res: LightMyRequestResponse, status: number, code: string, field?: string): void {
  expect(res.statusCode, res.body).toBe(status);
  const { error } = res.json();
  expect(error.code).toBe(code);
  expect(typeof error.message).toBe('string');
  if (field !== undefined) expect(error.field).toBe(field);
}

async function openLedger(dataDir: string): Promise<Ledger> {
  return Ledger.open({ config: { ...loadConfig({ LEDGER_DB: 'off' }), dataDir } });
}

beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'pawledger-server-'));
  ledger = await openLedger(tmp);
  app = buildServer(ledger, { adminToken: TOKEN });
});

afterEach(async () => {
  vi.restoreAllMocks();
  await app.close();
  await ledger.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('reads', () => {
  it('GET /healthz answers ok', async () => {
    const res = await call('GET', '/healthz', { token: null });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true });
  });

  it('GET /status reports the ledger summary without a token', async () => {
    const res = await call('GET', '/status', { token: null });
    expect(res.statusCode).toBe(200);
    const status = res.json();
    expect(status).toMatchObject({ ledgerId: ledger.ledgerId, height: 0, totalBlocks: 1, totalProperties: 0 });
    expect(status.headHash).toMatch(/^[0-9a-f]{64}$/);
    expect(typeof status.keyId).toBe('string');
    expect(status.tiers.filter((t: { state: string }) => t.state !== 'off')).toEqual([
      expect.objectContaining({ name: 'local', state: 'ok', height: 0 }),
    ]);
  });

  it('GET of an unknown property is 404', async () => {
    expectError(await call('GET', '/properties/nope', { token: null }), 404, 'NOT_FOUND');
  });

  it('an unknown route is a JSON 404', async () => {
    expectError(await call('GET', '/nowhere', { token: null }), 404, 'NOT_FOUND');
  });

  it('a malformed URL or an over-long id is a JSON 4xx', async () => {
    expectError(await call('GET', '/properties/%E0%A4%A', { token: null }), 400, 'BAD_REQUEST');
    expectError(await call('GET', `/properties/${'x'.repeat(300)}`, { token: null }), 414, 'BAD_REQUEST');
  });

  it('a 128-character id reaches the ledger (not cut off by the router)', async () => {
    const id = `p${'x'.repeat(127)}`;
    expect((await call('POST', '/properties', { body: { ...HOUSE, id } })).statusCode).toBe(201);
    expect((await call('GET', `/properties/${id}`)).json().property.id).toBe(id);
  });
});

describe('changes', () => {
  it('register, update and transfer save blocks and build the history', async () => {
    const reg = await call('POST', '/properties', { body: HOUSE });
    expect(reg.statusCode).toBe(201);
    const regBody = reg.json();
    expect(regBody.block.index).toBe(1);
    expect(regBody.block.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(regBody.property).toEqual(HOUSE);

    const upd = await call('PATCH', '/properties/house-1', {
      body: { name: 'New Mill', attributes: { garden: null, pool: false } },
    });
    expect(upd.statusCode).toBe(200);
    expect(upd.json().block.index).toBe(2);
    expect(upd.json().property).toEqual({ ...HOUSE, name: 'New Mill', attributes: { rooms: 4, pool: false } });

    const tr = await call('POST', '/properties/house-1/transfer', { body: { from: 'alice', to: 'bob' } });
    expect(tr.statusCode).toBe(200);
    expect(tr.json().block.index).toBe(3);
    expect(tr.json().property.owner).toBe('bob');

    const got = (await call('GET', '/properties/house-1', { token: null })).json();
    expect(got.property).toEqual({ ...HOUSE, name: 'New Mill', owner: 'bob', attributes: { rooms: 4, pool: false } });
    expect(
      got.history.map((h: { blockIndex: number; transaction: { type: string } }) => [h.blockIndex, h.transaction.type]),
    ).toEqual([
      [1, 'register'],
      [2, 'update'],
      [3, 'transfer'],
    ]);
    expect(got.history[2].blockHash).toBe(tr.json().block.hash);

    expect((await call('GET', '/properties', { token: null })).json().properties).toEqual([got.property]);
    expect((await call('GET', '/status')).json()).toMatchObject({ height: 3, totalBlocks: 4, totalProperties: 1 });
  });

  it('refuses changes without the admin token, with 401 and WWW-Authenticate, and saves nothing', async () => {
    await call('POST', '/properties', { body: HOUSE });
    const before = await height();
    const attempts: [Method, string, unknown][] = [
      ['POST', '/properties', { ...HOUSE, id: 'house-2' }],
      ['PATCH', '/properties/house-1', { name: 'Stolen' }],
      ['POST', '/properties/house-1/transfer', { from: 'alice', to: 'mallory' }],
    ];
    const wrong: (string | null | Record<string, string>)[] = [
      null,
      'wrong-token',
      `${TOKEN}x`,
      TOKEN.slice(0, -1),
      { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` },
      { authorization: 'Bearer' },
    ];
    for (const [method, url, body] of attempts) {
      for (const w of wrong) {
        const res =
          typeof w === 'object' && w !== null
            ? await call(method, url, { body, token: null, headers: w })
            : await call(method, url, { body, token: w });
        expectError(res, 401, 'UNAUTHORIZED');
        expect(res.headers['www-authenticate']).toBe('Bearer');
      }
    }
    expect(await height()).toBe(before);
    expect((await call('GET', '/properties/house-1')).json().property).toEqual(HOUSE);
  });

  it('accepts the scheme name in any case', async () => {
    const res = await call('POST', '/properties', {
      body: HOUSE,
      token: null,
      headers: { authorization: `bearer ${TOKEN}` },
    });
    expect(res.statusCode).toBe(201);
  });

  it('checks the token before reading the body', async () => {
    const res = await call('POST', '/properties', { raw: '{not json', token: null });
    expectError(res, 401, 'UNAUTHORIZED');
    expectError(await call('POST', '/nowhere', { body: {}, token: null }), 401, 'UNAUTHORIZED');
  });

  it('answers bad input with 400 naming the field', async () => {
    const { name: _name, ...noName } = HOUSE;
    expectError(await call('POST', '/properties', { body: noName }), 400, 'VALIDATION', 'name');
    expectError(await call('POST', '/properties', { body: { ...HOUSE, id: 'bad id!' } }), 400, 'VALIDATION', 'id');
    expectError(await call('POST', '/properties', { body: { ...HOUSE, colour: 'red' } }), 400, 'VALIDATION', 'colour');
    expectError(await call('POST', '/properties', { raw: '{"id": "x",' }), 400, 'VALIDATION', 'body');
    expectError(await call('POST', '/properties', { raw: '' }), 400, 'VALIDATION', 'body');
    expectError(
      await call('POST', '/properties', { raw: '{"__proto__": {"admin": true}}' }),
      400,
      'VALIDATION',
      'body',
    );
    expectError(await call('POST', '/properties', { body: [HOUSE] }), 400, 'VALIDATION');
    await call('POST', '/properties', { body: HOUSE });
    expectError(await call('PATCH', '/properties/house-1', { body: {} }), 400, 'VALIDATION');
    expectError(await call('PATCH', '/properties/house-1', { body: { owner: 'bob' } }), 400, 'VALIDATION', 'owner');
    expectError(
      await call('POST', '/properties/house-1/transfer', { body: { from: 'alice' } }),
      400,
      'VALIDATION',
      'to',
    );
    expect(await height()).toBe(1);
  });

  it('answers a change to an unknown property with 404', async () => {
    expectError(await call('PATCH', '/properties/nope', { body: { name: 'x' } }), 404, 'NOT_FOUND');
    expectError(await call('POST', '/properties/nope/transfer', { body: { from: 'a', to: 'b' } }), 404, 'NOT_FOUND');
  });

  it('answers a duplicate register and a transfer from the wrong owner with 409 naming the field', async () => {
    await call('POST', '/properties', { body: HOUSE });
    expectError(await call('POST', '/properties', { body: { ...HOUSE, name: 'Copy' } }), 409, 'CONFLICT', 'id');
    expectError(
      await call('POST', '/properties/house-1/transfer', { body: { from: 'mallory', to: 'bob' } }),
      409,
      'CONFLICT',
      'from',
    );
    expect(await height()).toBe(1);
    expect((await call('GET', '/properties/house-1')).json().property.owner).toBe('alice');
  });

  it('answers an oversized body with 413 and a non-JSON one with 415', async () => {
    const big = { ...HOUSE, attributes: { notes: 'x'.repeat(70 * 1024) } };
    const tooLarge = await call('POST', '/properties', { body: big });
    expectError(tooLarge, 413, 'PAYLOAD_TOO_LARGE');
    expect(tooLarge.json().error.message).toContain(String(64 * 1024));
    expectError(
      await call('POST', '/properties', { raw: 'id=house-1', headers: { 'content-type': 'text/plain' } }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    expectError(
      await call('POST', '/properties', { raw: '<p/>', headers: { 'content-type': 'application/xml' } }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    expect(await height()).toBe(0);
  });

  it('honours a smaller bodyLimit', async () => {
    await app.close();
    app = buildServer(ledger, { adminToken: TOKEN, bodyLimit: 100 });
    expectError(
      await call('POST', '/properties', { body: { ...HOUSE, name: 'y'.repeat(200) } }),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    expect(
      (await call('POST', '/properties', { body: { id: 'a', name: 'b', address: 'c', owner: 'd' } })).statusCode,
    ).toBe(201);
  });
});

describe('chain', () => {
  beforeEach(async () => {
    for (const id of ['a', 'b', 'c']) await call('POST', '/properties', { body: { ...HOUSE, id } });
  });

  it('pages through the blocks', async () => {
    const all = (await call('GET', '/chain', { token: null })).json().blocks;
    expect(all.map((b: { index: number }) => b.index)).toEqual([0, 1, 2, 3]);
    for (let i = 1; i < all.length; i++) expect(all[i].previousHash).toBe(all[i - 1].hash);
    const page = (await call('GET', '/chain?from=1&limit=2')).json().blocks;
    expect(page).toEqual(all.slice(1, 3));
    expect((await call('GET', '/chain?from=3&limit=1000')).json().blocks).toEqual(all.slice(3));
    expect((await call('GET', '/chain?from=99')).json().blocks).toEqual([]);
  });

  it('answers a bad from or limit with 400 naming it', async () => {
    for (const q of [
      'from=1.5',
      'from=-1',
      'from=abc',
      'from=',
      'from=1e2',
      'from=1&from=2',
      'from=99999999999999999',
    ]) {
      expectError(await call('GET', `/chain?${q}`), 400, 'VALIDATION', 'from');
    }
    for (const q of ['limit=0', 'limit=1001', 'limit=ten', 'limit=2.0']) {
      expectError(await call('GET', `/chain?${q}`), 400, 'VALIDATION', 'limit');
    }
  });

  it('verifies a sound chain', async () => {
    const res = await call('GET', '/chain/verify', { token: null });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true, totalBlocks: 4, headHash: ledger.head.hash });
  });

  it('answers 500 {ok:false, reason} when a stored block was tampered with', async () => {
    const gen = (await readdir(tmp)).find((n) => n.startsWith('chain-'))!;
    const seg = (await readdir(join(tmp, gen))).find((n) => n.endsWith('.seg'))!;
    const fh = await open(join(tmp, gen, seg), 'r+');
    const { size } = await fh.stat();
    const byte = Buffer.alloc(1);
    await fh.read(byte, 0, 1, size - 1);
    byte[0] = byte[0]! ^ 0xff;
    await fh.write(byte, 0, 1, size - 1);
    await fh.close();
    const res = await call('GET', '/chain/verify');
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ ok: false, reason: expect.stringContaining('block 3') });
  });
});

describe('failures', () => {
  it('answers an unexpected error with a bare 500 and logs the real one', async () => {
    const lines: string[] = [];
    const logger: Logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    await app.close();
    app = buildServer(ledger, { adminToken: TOKEN, logger });
    vi.spyOn(ledger, 'properties').mockImplementation(() => {
      throw new TypeError('cannot read secret internals of undefined');
    });
    const res = await call('GET', '/properties');
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
    const logged = lines
      .map((l) => JSON.parse(l))
      .find((l) => l.err?.message === 'cannot read secret internals of undefined');
    expect(logged?.err.stack).toMatch(STACK);
  });

  it('answers a vanished store with 500 on reads and 503 + Retry-After on changes', async () => {
    // Closing drops the store's file handles, so removing the files makes the next read and write fail for real.
    await ledger.close();
    const gen = (await readdir(tmp)).find((n) => n.startsWith('chain-'))!;
    await rm(join(tmp, gen), { recursive: true });
    expectError(await call('GET', '/chain'), 500, 'INTERNAL');
    const res = await call('POST', '/properties', { body: HOUSE });
    expectError(res, 503, 'UNAVAILABLE');
    expect(res.headers['retry-after']).toBe('5');
    expect((await call('GET', '/status')).json().tiers[0].state).toBe('down');
  });

  it('maps LOCKED to 503 and CONFIG to 500 with their operator-safe messages', async () => {
    vi.spyOn(ledger, 'register').mockRejectedValueOnce(
      new LockedError('the ledger is in use by process 42', { hint: 'Stop it' }),
    );
    const locked = await call('POST', '/properties', { body: HOUSE });
    expectError(locked, 503, 'LOCKED');
    expect(locked.json().error).toEqual({
      code: 'LOCKED',
      message: 'the ledger is in use by process 42',
      hint: 'Stop it',
    });
    expect(locked.headers['retry-after']).toBe('5');
    vi.spyOn(ledger, 'status').mockImplementationOnce(() => {
      throw new ConfigError('LEDGER_SEGMENT_BYTES is wrong');
    });
    expect((await call('GET', '/status')).json()).toEqual({
      error: { code: 'CONFIG', message: 'LEDGER_SEGMENT_BYTES is wrong' },
    });
  });

  it('refuses to build a server with an empty admin token or a bad body limit', () => {
    expect(() => buildServer(ledger, { adminToken: '' })).toThrow(ConfigError);
    expect(() => buildServer(ledger, { adminToken: TOKEN, bodyLimit: 0 })).toThrow(ConfigError);
  });
});

describe('auth helpers', () => {
  it('bearerToken reads only the Bearer scheme', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('BEARER  abc ')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeNull();
    expect(bearerToken('Bearer a b')).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
  });

  it('tokenMatches compares whole tokens of any length', () => {
    expect(tokenMatches('secret', 'secret')).toBe(true);
    expect(tokenMatches('secre', 'secret')).toBe(false);
    expect(tokenMatches('', 'secret')).toBe(false);
  });
});
