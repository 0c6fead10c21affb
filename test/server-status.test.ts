/**
 * GET /status without the token shows the ledger and its health, and nothing about the infrastructure it runs on:
 * no database host, user or name, no folder, no provider URL, no CID, no instance name. With the token, all of it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../src/server/app.js';
import { Ledger } from '../src/service/ledger.js';
import { createTempDatabase, ledgerConfig, waitFor, type TempDatabase } from './support/pg.js';

const TOKEN = 'status-test-token-0123456789abcdef';

let dir: string;
let db: TempDatabase;
let ledger: Ledger;
let app: FastifyInstance;
let cid: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pl-status-'));
  db = await createTempDatabase();
  ledger = await Ledger.open({
    config: ledgerConfig(join(dir, 'blocks'), db.url, {
      IPFS_PROVIDER: 'embedded',
      IPFS_EMBEDDED_DIR: join(dir, 'ipfs'),
      IPFS_DEBOUNCE_MS: '10',
    }),
  });
  await ledger.register({ id: 'p1', name: 'House', address: 'x', owner: 'ann' });
  const newestCid = () => ledger.status().tiers.find((t) => t.name === 'ipfs')?.newestBackup;
  await waitFor('the IPFS tier to name its newest CID', () => newestCid() !== undefined);
  cid = newestCid()!;
  app = buildServer(ledger, { adminToken: TOKEN });
});

afterAll(async () => {
  await app?.close();
  await ledger?.close();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

describe('GET /status', () => {
  it('without the token names no host, user, database, folder, CID or instance', async () => {
    const full = ledger.status();
    // Each of these is in the full status (checked below), so the test would see it leak.
    const secrets = [db.name, '127.0.0.1', 'postgres', dir, cid, full.writer.instance, hostname()];
    for (const token of [undefined, 'wrong-token']) {
      const res = await app.inject({
        method: 'GET',
        url: '/status',
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      expect(res.statusCode).toBe(200);
      for (const s of secrets) expect(res.body, `${s} leaked`).not.toContain(s);
      expect(res.json()).toEqual({
        ledgerId: full.ledgerId,
        height: full.height,
        headHash: full.headHash,
        totalBlocks: full.totalBlocks,
        totalProperties: 1,
        keyId: full.keyId,
        fork: null,
        writer: { mode: 'lock', role: 'writer' },
        tiers: full.tiers.map((t) => ({ name: t.name, state: t.state, height: t.height })),
        verification: 'full',
        degraded: false,
        proofs: full.proofs,
      });
    }
  });

  it('with the token shows the full status, details included', async () => {
    const res = await app.inject({ method: 'GET', url: '/status', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.statusCode).toBe(200);
    for (const s of [db.name, dir, cid, ledger.status().writer.instance]) expect(res.body).toContain(s);
    expect(res.json()).toEqual(JSON.parse(JSON.stringify(ledger.status())));
  });
});
