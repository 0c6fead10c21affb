import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, describeError, UnavailableError } from '../../src/errors.js';
import { RenderEnvClient, type RenderEnvOptions } from '../../src/pointers/render.js';
import { startRenderStandin, type RenderStandin, type RenderStandinOptions } from '../support/standins/render.js';

const API_KEY = 'rnd_S3cr3tK3yValue0123456789';
const SERVICE = 'srv-d0standin0000000000';
const open: Array<RenderStandin> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

async function setup(standin: Partial<RenderStandinOptions> = {}, client: Partial<RenderEnvOptions> = {}) {
  const s = await startRenderStandin({ apiKey: API_KEY, serviceId: SERVICE, ...standin });
  open.push(s);
  const c = new RenderEnvClient({
    apiUrl: s.url,
    apiKey: API_KEY,
    serviceId: SERVICE,
    minIntervalMs: 50,
    retry: { attempts: 4, baseMs: 20 },
    ...client,
  });
  return { s, c };
}

describe('RenderEnvClient against the stand-in', () => {
  it('writes and reads one variable with the single-var PUT, leaving the others alone', async () => {
    const { s, c } = await setup({ vars: { DATABASE_URL: 'postgres://x', OTHER: 'keep' } });
    expect(await c.getVar('PAWLEDGER_LATEST_CID')).toBeNull();
    await c.putVar('PAWLEDGER_LATEST_CID', 'bafkreiaaa');
    expect(await c.getVar('PAWLEDGER_LATEST_CID')).toBe('bafkreiaaa');
    expect(s.vars.get('OTHER')).toBe('keep');
    expect(s.vars.get('DATABASE_URL')).toBe('postgres://x');
    expect(s.requests.replaceAll).toBe(0);
    const all = [];
    for await (const v of c.listVars()) all.push(v.key);
    expect(all).toEqual(['DATABASE_URL', 'OTHER', 'PAWLEDGER_LATEST_CID']);
    expect(c.label).not.toContain(API_KEY);
  });

  it('lists every variable across cursor pages', async () => {
    const vars = Object.fromEntries(
      Array.from({ length: 230 }, (_, i) => [`V${String(i).padStart(3, '0')}`, String(i)]),
    );
    const { c } = await setup({ vars });
    let n = 0;
    for await (const v of c.listVars()) expect(v.value).toBe(String(n++));
    expect(n).toBe(230);
  });

  it('coalesces a burst of 10 writes into at most 2, and the last value wins', async () => {
    const { s, c } = await setup({}, { minIntervalMs: 300 });
    const started = Date.now();
    await Promise.all(Array.from({ length: 10 }, (_, i) => c.putVar('CID', `v${i}`)));
    expect(s.writes).toBeLessThanOrEqual(2);
    expect(s.vars.get('CID')).toBe('v9');
    expect(s.writeValues.at(-1)).toEqual(['CID', 'v9']);
    if (s.writes === 2) expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(await c.getVar('CID')).toBe('v9');
    // Two keys in one burst share the pace: one write each.
    await Promise.all([c.putVar('A', '1'), c.putVar('B', '1'), c.putVar('A', '2')]);
    expect([s.vars.get('A'), s.vars.get('B')]).toEqual(['2', '1']);
    await c.close();
    await expect(c.putVar('A', '3')).rejects.toThrow(UnavailableError);
  });

  it('honours Retry-After on a 429 instead of hammering', async () => {
    const { s, c } = await setup(
      { writeLimit: { count: 1, windowMs: 1000 } },
      { minIntervalMs: 0, retry: { attempts: 4, baseMs: 10, maxMs: 20 } },
    );
    await c.putVar('A', 'first');
    const started = Date.now();
    await c.putVar('B', 'second');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(s.requests.rateLimited).toBe(1);
    expect(s.vars.get('B')).toBe('second');
  });

  it('fails a 401 at once as a ConfigError naming RENDER_API_KEY, without the key', async () => {
    const { s } = await setup();
    const c = new RenderEnvClient({
      apiUrl: s.url,
      apiKey: 'rnd_wrong_key_value',
      serviceId: SERVICE,
      retry: { attempts: 4, baseMs: 10 },
    });
    for (const call of [() => c.getVar('CID'), () => c.putVar('CID', 'x')]) {
      const before = s.requests.total;
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain('RENDER_API_KEY');
      expect(describeError(err)).not.toContain('rnd_wrong_key_value');
      expect(s.requests.total - before).toBe(1);
    }
  });

  it('tells a missing service (ConfigError about RENDER_SERVICE_ID) from a missing variable (null)', async () => {
    const { s } = await setup();
    const c = new RenderEnvClient({ apiUrl: s.url, apiKey: API_KEY, serviceId: 'srv-nope', minIntervalMs: 0 });
    for (const call of [() => c.getVar('CID'), () => c.putVar('CID', 'x')]) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect(describeError(err)).toContain('RENDER_SERVICE_ID');
    }
  });

  it('retries a 5xx, and says so when the service stays down', async () => {
    const { s, c } = await setup();
    s.failNext(503, 2);
    await c.putVar('CID', 'after-outage');
    expect(s.vars.get('CID')).toBe('after-outage');
    s.failNext(500, 10);
    await expect(c.getVar('CID')).rejects.toThrow(UnavailableError);
  });
});
