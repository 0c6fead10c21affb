import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { verifyProofText } from '../../src/ledger/proof-verifier.js';
import { buildServer } from '../../src/server/app.js';
import { Ledger } from '../../src/service/ledger.js';
import { ACCUMULATOR_FILE } from '../../src/store/accumulator-file.js';

const TOKEN = 'proof-routes-token';
const opened: { app: FastifyInstance; ledger: Ledger; dir: string }[] = [];

async function serve(options: { rateLimit?: number; brokenNodes?: boolean } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'pawledger-proof-routes-'));
  if (options.brokenNodes) await mkdir(join(dir, ACCUMULATOR_FILE), { recursive: true });
  const ledger = await Ledger.open({ config: { ...loadConfig({ LEDGER_DB: 'off' }), dataDir: dir } });
  await ledger.register({ id: 'p1', name: 'Casa', address: '1 Main St', owner: 'ann' });
  await ledger.register({ id: 'p2', name: 'Other', address: '2 Main St', owner: 'bo' });
  await ledger.transfer('p1', { from: 'ann', to: 'cy' });
  await ledger.proofsReady();
  const app = buildServer(ledger, {
    adminToken: TOKEN,
    ...(options.rateLimit ? { rateLimit: options.rateLimit } : {}),
  });
  opened.push({ app, ledger, dir });
  return { app, ledger };
}

afterEach(async () => {
  for (const { app, ledger, dir } of opened.splice(0)) {
    await app.close();
    await ledger.close();
    await rm(dir, { recursive: true, force: true });
  }
});

function expectError(res: LightMyRequestResponse, status: number, code: string, field?: string): void {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.json().error).toMatchObject({ code, ...(field ? { field } : {}) });
}

describe('GET /properties/:id/proof', () => {
  it('answers anyone with the canonical proof, which verifies offline', async () => {
    const { app } = await serve();
    const res = await app.inject({ method: 'GET', url: '/properties/p1/proof' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['pawledger-next-from']).toBeUndefined();
    expect(await verifyProofText(res.body)).toMatchObject({ ok: true, propertyId: 'p1', blocks: 2 });
    expect(res.body).not.toContain('Other');
    // Anyone can read the root a proof of the current head must lead to.
    const status = (await app.inject({ url: '/status' })).json();
    expect(status.proofs).toEqual({ state: 'ready', root: JSON.parse(res.body).head.root });
  });

  it('pages through a long history, each page a proof of its own', async () => {
    const { app } = await serve();
    const first = await app.inject({ method: 'GET', url: '/properties/p1/proof?limit=1' });
    expect(first.headers['pawledger-next-from']).toBe('1');
    const second = await app.inject({ method: 'GET', url: '/properties/p1/proof?from=1&limit=1' });
    expect(second.headers['pawledger-next-from']).toBeUndefined();
    const [a, b] = [await verifyProofText(first.body), await verifyProofText(second.body)];
    expect(a.ok && a.transactions[0]!.type).toBe('register');
    expect(b.ok && b.transactions[0]!.type).toBe('transfer');
  });

  it('refuses unknown parameters, a limit past the bound, a page past the history and an unknown property', async () => {
    const { app } = await serve();
    expectError(await app.inject({ method: 'GET', url: '/properties/p1/proof?all=1' }), 400, 'VALIDATION', 'all');
    expectError(await app.inject({ method: 'GET', url: '/properties/p1/proof?limit=101' }), 400, 'VALIDATION', 'limit');
    expectError(await app.inject({ method: 'GET', url: '/properties/p1/proof?limit=0' }), 400, 'VALIDATION', 'limit');
    expectError(await app.inject({ method: 'GET', url: '/properties/p1/proof?from=1e3' }), 400, 'VALIDATION', 'from');
    expectError(await app.inject({ method: 'GET', url: '/properties/p1/proof?from=2' }), 400, 'VALIDATION', 'from');
    expectError(await app.inject({ method: 'GET', url: '/properties/nope/proof' }), 404, 'NOT_FOUND');
    expectError(await app.inject({ method: 'GET', url: '/properties/bad%20id/proof' }), 400, 'VALIDATION', 'id');
  });

  it('counts against the public rate limit', async () => {
    const { app } = await serve({ rateLimit: 2 });
    for (let i = 0; i < 2; i++) expect((await app.inject({ url: '/properties/p1/proof' })).statusCode).toBe(200);
    expectError(await app.inject({ url: '/properties/p1/proof' }), 429, 'RATE_LIMITED');
  });

  it('answers 503 with Retry-After while proofs are not available, and the rest of the API goes on', async () => {
    const { app } = await serve({ brokenNodes: true });
    const res = await app.inject({ url: '/properties/p1/proof' });
    expectError(res, 503, 'UNAVAILABLE');
    expect(res.headers['retry-after']).toBeDefined();
    expectError(await app.inject({ url: '/chain/consistency?from=0&to=1' }), 503, 'UNAVAILABLE');
    expect((await app.inject({ url: '/properties/p1' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/status' })).json().proofs).toEqual({ state: 'building', root: null });
  });
});

describe('GET /chain/consistency', () => {
  it('proves an older head a prefix of a newer one, and checks its parameters', async () => {
    const { app } = await serve();
    const res = await app.inject({ url: '/chain/consistency?from=1&to=3' });
    expect(res.statusCode).toBe(200);
    const c = res.json();
    expect(c).toMatchObject({ format: 'pawledger-consistency/2', from: { height: 1 }, to: { height: 3 } });
    const old = await app.inject({ url: '/properties/p1/proof?limit=1' });
    // The proof's head is 3 here; a consistency proof from 3 to 3 is empty and holds.
    const same = (await app.inject({ url: '/chain/consistency?from=3&to=3' })).body;
    expect((await verifyProofText(old.body, { consistency: same })).ok).toBe(true);
    const whole = (await app.inject({ url: '/chain/consistency' })).json();
    expect(whole).toMatchObject({ from: { height: 0 }, to: { height: 3 } });
    expectError(await app.inject({ url: '/chain/consistency?from=1&to=4' }), 400, 'VALIDATION', 'to');
    expectError(await app.inject({ url: '/chain/consistency?from=3&to=2' }), 400, 'VALIDATION', 'from');
    expectError(await app.inject({ url: '/chain/consistency?from=0&to=1&x=2' }), 400, 'VALIDATION', 'x');
    expectError(await app.inject({ url: '/chain/consistency?from=-1&to=1' }), 400, 'VALIDATION', 'from');
  });
});

describe('GET /proof-verifier.js', () => {
  it('serves the one verifier file, which runs as a module with no imports and checks a proof', async () => {
    const { app } = await serve();
    const res = await app.inject({ url: '/proof-verifier.js' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/javascript/);
    const file = await readFile(new URL('../../src/ledger/proof-verifier.js', import.meta.url), 'utf8');
    expect(res.body).toBe(file);
    expect(res.body).not.toMatch(/^\s*import\s/m);
    const mod = (await import(
      `data:text/javascript;base64,${Buffer.from(res.body).toString('base64')}`
    )) as typeof import('../../src/ledger/proof-verifier.js');
    const proof = (await app.inject({ url: '/properties/p2/proof' })).body;
    expect((await mod.verifyProofText(proof)).ok).toBe(true);
    expect((await mod.verifyProofText(proof.replace('Other', 'Othes'))).ok).toBe(false);
    expectError(await app.inject({ url: '/proof-verifier.js?v=1' }), 400, 'VALIDATION', 'v');
  });
});
