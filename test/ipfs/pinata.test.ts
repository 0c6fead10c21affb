import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, describeError, IntegrityError, NotFoundError, UnavailableError } from '../../src/errors.js';
import { PinataStore, type PinataOptions } from '../../src/objects/pinata.js';
import { retryingStore } from '../../src/objects/retry.js';
import { RetryAfterError, retryAfterFromHeaders, withRetry } from '../../src/util/retry.js';
import { computeCid } from '../../src/objects/unixfs.js';
import { startPinataStandin, type PinataStandin } from '../support/standins/pinata.js';

const KEY = 'pk_0123456789abcdef';
const SECRET = 'sk_fedcba9876543210fedcba';
const JWT = 'eyJhbGciOiJIUzI1NiJ9.standin.jwt';
const small = randomBytes(5000);
const big = randomBytes(700 * 1024);
const hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const fast = { attempts: 8, baseMs: 5, maxMs: 40 };

/** captureLog collects every log call, to prove no secret reaches a log line. */
function captureLog() {
  const lines: string[] = [];
  const log = {
    warn: (o: object, m?: string) => void lines.push(JSON.stringify([o, m])),
    info: (o: object, m?: string) => void lines.push(JSON.stringify([o, m])),
  };
  return { lines, log: log as unknown as NonNullable<PinataOptions['log']> };
}

function expectNoSecret(text: string): void {
  for (const s of [KEY, SECRET, JWT, 'gw-token-123']) expect(text).not.toContain(s);
}

describe('PinataStore against the stand-in', () => {
  let s: PinataStandin;
  let provider: PinataStore;
  beforeAll(async () => {
    s = await startPinataStandin({ apiKey: KEY, secretKey: SECRET, jwt: JWT });
    provider = new PinataStore({
      apiUrl: s.url,
      gatewayUrl: s.gatewayUrl,
      auth: { apiKey: KEY, secretKey: SECRET },
      timeoutMs: 5000,
    });
  });
  afterAll(() => s.close());
  afterEach(() => Object.assign(s.gateway, { mode: 'ok', formats: true }));

  it('checks credentials, pins, lists and reads back a one-chunk and a multi-chunk file with the CIDs computeCid gives', async () => {
    await provider.check();
    expect(provider.label).not.toContain(KEY);
    for (const [i, bytes] of [small, big].entries()) {
      const cid = await provider.put(bytes, {
        key: 'test',
        label: `pack-${i}`,
        keyvalues: { ledger: 'L1', height: String(i) },
      });
      expect(cid).toBe(await computeCid(bytes));
      expect(s.pins.get(cid)?.keyvalues).toEqual({ ledger: 'L1', height: String(i) });
      expect((await provider.get(cid)).equals(bytes)).toBe(true);
      expect((await provider.get(cid, { sha256: hex(bytes) })).equals(bytes)).toBe(true);
    }
    expect((await provider.pinFileToIPFS(small, { name: 'pack-0' })).isDuplicate).toBe(true);
    const jwtProvider = new PinataStore({ apiUrl: s.url, gatewayUrl: s.gatewayUrl, auth: { jwt: JWT } });
    expect(await jwtProvider.testAuthentication()).toMatch(/Congratulations/);
  });

  it('lists pins by name and keyvalues across pages', async () => {
    for (let i = 0; i < 5; i++)
      await provider.put(randomBytes(64), { key: 'test', label: `paged-${i}`, keyvalues: { group: 'paged' } });
    const rows = [];
    for await (const row of provider.pinList({ keyvalues: { group: 'paged' }, pageLimit: 2 })) rows.push(row);
    expect(rows.map((r) => r.name)).toEqual(['paged-4', 'paged-3', 'paged-2', 'paged-1', 'paged-0']);
    const named = [];
    for await (const row of provider.pinList({ name: 'paged-3' })) named.push(row);
    expect(named).toHaveLength(1);
    expect(named[0]?.keyvalues).toEqual({ group: 'paged' });
  });

  it('catches a lying gateway, by raw block, by CAR, and by plain bytes, with IntegrityError naming the CID', async () => {
    const one = await provider.put(small, { key: 'test', label: 'lie-raw' });
    const many = await provider.put(big, { key: 'test', label: 'lie-car' });
    s.gateway.mode = 'lie';
    for (const cid of [one, many]) {
      const err = await provider.get(cid).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IntegrityError);
      expect((err as Error).message).toContain(cid);
    }
    s.gateway.formats = false; // the gateway ignores format=car and sends the file, altered
    await expect(provider.get(many)).rejects.toThrow(IntegrityError);
    s.gateway.mode = 'ok';
    expect((await provider.get(many)).equals(big)).toBe(true); // plain bytes, checked by recomputing the CID
  });

  it('turns gateway failures into UnavailableError or NotFoundError', async () => {
    const cid = await provider.put(small, { key: 'test', label: 'gw-fail' });
    s.gateway.mode = 'fail';
    await expect(provider.get(cid)).rejects.toThrow(UnavailableError);
    Object.assign(s.gateway, { mode: 'slow', slowMs: 1500 });
    const impatient = new PinataStore({ apiUrl: s.url, gatewayUrl: s.gatewayUrl, auth: { jwt: JWT }, timeoutMs: 150 });
    await expect(impatient.get(cid)).rejects.toThrow(/no answer within 150 ms/);
    s.gateway.mode = 'ok';
    await expect(provider.get(await computeCid(randomBytes(10)))).rejects.toThrow(NotFoundError);
  });

  it('rides out a 429 storm with backoff when wrapped by retryingStore', async () => {
    const before = s.requests.pinFileToIPFS;
    s.failNext(429, 5);
    const retrying = retryingStore(provider, fast);
    const cid = await retrying.put(small, { key: 'test', label: 'storm' });
    expect(cid).toBe(await computeCid(small));
    expect(s.requests.pinFileToIPFS - before).toBe(6);
    s.failNext(503, 2);
    await retrying.check();
  });

  it('unpins, and treats an already-gone CID as fine', async () => {
    const bytes = randomBytes(200);
    const cid = await provider.put(bytes, { key: 'test', label: 'gone' });
    await provider.delete(cid);
    expect(s.pins.get(cid)?.dateUnpinned).not.toBeNull();
    await provider.delete(cid); // CURRENT_USER_HAS_NOT_PINNED_CID
    await provider.delete(await computeCid(randomBytes(10))); // never pinned
    await expect(provider.get(cid)).rejects.toThrow(NotFoundError);
  });
});

describe('PinataStore credentials and scopes', () => {
  let s: PinataStandin;
  beforeAll(async () => {
    s = await startPinataStandin({ apiKey: KEY, secretKey: SECRET, jwt: JWT, gatewayToken: 'gw-token-123' });
  });
  afterAll(() => s.close());

  it('fails a 401 once, without retrying, naming the variables to check and never the secret', async () => {
    const { lines, log } = captureLog();
    for (const [auth, vars] of [
      [{ apiKey: KEY, secretKey: 'wrong-secret-value' }, 'PINATA_API_KEY and PINATA_SECRET_KEY'],
      [{ jwt: 'not.the.jwt' }, 'PINATA_JWT'],
    ] as const) {
      const before = s.requests.testAuthentication;
      const p = retryingStore(new PinataStore({ apiUrl: s.url, gatewayUrl: s.gatewayUrl, auth, log }), {
        ...fast,
        log,
      });
      const err = await p.check().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain(vars);
      expect((err as Error).message).toContain('INVALID_CREDENTIALS');
      expect(s.requests.testAuthentication - before).toBe(1);
      expectNoSecret(`${describeError(err)} ${JSON.stringify(err)} ${(err as Error).stack}`);
      expect(describeError(err)).not.toContain('wrong-secret-value');
    }
    expectNoSecret(lines.join('\n'));
  });

  it('answers missing key headers with 400 KEYS_MUST_BE_STRINGS, as Pinata does', async () => {
    const res = await fetch(`${s.url}/data/testAuthentication`);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { reason: 'KEYS_MUST_BE_STRINGS', details: expect.any(String) } });
  });

  it('reports a key without pinning scope as a ConfigError about pinFileToIPFS, though testAuthentication passes', async () => {
    const scoped = await startPinataStandin({ apiKey: KEY, secretKey: SECRET, pinningScope: false });
    try {
      const p = new PinataStore({
        apiUrl: scoped.url,
        gatewayUrl: scoped.gatewayUrl,
        auth: { apiKey: KEY, secretKey: SECRET },
      });
      await p.check();
      const err = await p.put(small, { key: 'test', label: 'x' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect(describeError(err)).toMatch(/NO_SCOPES_FOUND[\s\S]*pinFileToIPFS/);
      expectNoSecret(describeError(err));
    } finally {
      await scoped.close();
    }
  });

  it('sends the gateway token to a dedicated gateway, and reports its absence as a ConfigError', async () => {
    const withToken = new PinataStore({
      apiUrl: s.url,
      gatewayUrl: s.gatewayUrl,
      gatewayToken: 'gw-token-123',
      auth: { jwt: JWT },
    });
    const cid = await withToken.put(small, { key: 'test', label: 'gated' });
    expect((await withToken.get(cid)).equals(small)).toBe(true);
    expectNoSecret(withToken.label);
    const without = new PinataStore({ apiUrl: s.url, gatewayUrl: s.gatewayUrl, auth: { jwt: JWT } });
    const err = await without.get(cid).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(describeError(err)).toContain('PINATA_GATEWAY_TOKEN');
  });

  it('scrubs a secret a service echoes back, and turns a refused connection into UnavailableError', async () => {
    const echo: typeof fetch = async () =>
      new Response(JSON.stringify({ error: { reason: 'INVALID_CREDENTIALS', details: `bad key ${KEY}` } }), {
        status: 401,
      });
    const err = await new PinataStore({ auth: { apiKey: KEY, secretKey: SECRET }, fetch: echo })
      .check()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expectNoSecret(describeError(err));
    const closed = new PinataStore({ apiUrl: 'http://127.0.0.1:9', auth: { jwt: JWT }, timeoutMs: 2000 });
    await expect(closed.check()).rejects.toThrow(UnavailableError);
  });
});

describe('PinataStore rate limits and CID policy', () => {
  it('reads x-ratelimit-reset on a 429 and waits for it', async () => {
    const s = await startPinataStandin({ jwt: JWT, rateLimit: { dataPerWindow: 2, windowMs: 1500 } });
    try {
      const p = new PinataStore({ apiUrl: s.url, gatewayUrl: s.gatewayUrl, auth: { jwt: JWT } });
      await p.check();
      await p.check();
      const err = await p.check().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RetryAfterError);
      expect((err as RetryAfterError).retryAfterMs).toBeGreaterThan(0);
      expect((err as RetryAfterError).retryAfterMs).toBeLessThanOrEqual(2600);
      await retryingStore(p, fast).check();
    } finally {
      await s.close();
    }
  });

  it('accepts a multi-chunk CID Pinata chunked differently as unverifiable, and still verifies reads', async () => {
    const s = await startPinataStandin({ jwt: JWT, chunkSize: 100_000 });
    try {
      const { lines, log } = captureLog();
      const p = new PinataStore({ apiUrl: s.url, gatewayUrl: s.gatewayUrl, auth: { jwt: JWT }, log });
      const result = await p.pinFileToIPFS(big, { name: 'odd' });
      expect(result.verified).toBe('unverifiable');
      expect(result.cid).not.toBe(await computeCid(big));
      expect(lines.join('\n')).toContain(result.cid);
      expect((await p.get(result.cid)).equals(big)).toBe(true); // CAR, block by block
      s.gateway.formats = false;
      await expect(p.get(result.cid)).rejects.toThrow(IntegrityError); // plain bytes, nothing to decide
      expect((await p.get(result.cid, { sha256: hex(big) })).equals(big)).toBe(true);
      expect(await p.put(small, { key: 'test', label: 'one-chunk' })).toBe(await computeCid(small));
      const strict = new PinataStore({ apiUrl: s.url, gatewayUrl: s.gatewayUrl, auth: { jwt: JWT }, strictCid: true });
      await expect(strict.put(big, { key: 'test', label: 'strict' })).rejects.toThrow(IntegrityError);
    } finally {
      await s.close();
    }
  });

  it("refuses a one-chunk upload whose returned CID is not the bytes' CID", async () => {
    const wrong = await computeCid(Buffer.from('something else'));
    const liar: typeof fetch = async () =>
      Response.json({ IpfsHash: wrong, PinSize: 14, Timestamp: new Date().toISOString(), isDuplicate: false });
    const err = await new PinataStore({ auth: { jwt: JWT }, fetch: liar })
      .put(small, { key: 'test', label: 'x' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toContain(wrong);
  });
});

describe('withRetry', () => {
  const sleeps: number[] = [];
  const opts = {
    attempts: 5,
    baseMs: 100,
    maxMs: 300,
    what: 'test',
    sleep: async (ms: number) => void sleeps.push(ms),
    random: () => 0.999,
  };
  afterEach(() => void sleeps.splice(0));

  it('retries UnavailableError with capped exponential full jitter, and waits at least retryAfterMs', async () => {
    let n = 0;
    const result = await withRetry(async () => {
      if (++n < 5) throw n === 2 ? new RetryAfterError('busy', { retryAfterMs: 1234 }) : new UnavailableError('down');
      return 'ok';
    }, opts);
    expect(result).toBe('ok');
    expect(sleeps).toEqual([99, 1234, 299, 299]);
  });

  it('never retries ConfigError, IntegrityError or NotFoundError, gives up after the attempts, and will not wait past maxRetryAfterMs', async () => {
    for (const err of [new ConfigError('c'), new IntegrityError('i'), new NotFoundError('n'), new Error('bug')]) {
      let n = 0;
      await expect(
        withRetry(async () => {
          n++;
          throw err;
        }, opts),
      ).rejects.toBe(err);
      expect(n).toBe(1);
    }
    let n = 0;
    await expect(
      withRetry(
        async () => {
          n++;
          throw new UnavailableError('down');
        },
        { ...opts, attempts: 3 },
      ),
    ).rejects.toThrow('down');
    expect(n).toBe(3);
    n = 0;
    await expect(
      withRetry(async () => {
        n++;
        throw new RetryAfterError('later', { retryAfterMs: 3_600_000 });
      }, opts),
    ).rejects.toThrow('later');
    expect(n).toBe(1);
  });

  it('reads Retry-After (seconds or date) and x-ratelimit-reset (epoch seconds)', () => {
    const now = 1_700_000_000_000;
    expect(retryAfterFromHeaders(new Headers({ 'retry-after': '3' }), now)).toBe(3000);
    expect(retryAfterFromHeaders(new Headers({ 'retry-after': new Date(now + 5000).toUTCString() }), now)).toBe(5000);
    expect(retryAfterFromHeaders(new Headers({ 'x-ratelimit-reset': String(now / 1000 + 7) }), now)).toBe(7000);
    expect(retryAfterFromHeaders(new Headers({ 'x-ratelimit-reset': String(now / 1000 - 7) }), now)).toBeUndefined();
    expect(retryAfterFromHeaders(new Headers(), now)).toBeUndefined();
  });
});
