import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../src/server/app.js';
import { Ledger } from '../src/service/ledger.js';
import { createTempDatabase, ledgerConfig, type TempDatabase } from './support/pg.js';

const TOKEN = 'admin-routes-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

describe('the /admin routes', () => {
  let dir: string;
  let db: TempDatabase;
  let ledger: Ledger;
  let app: ReturnType<typeof buildServer>;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pl-admin-'));
    db = await createTempDatabase();
    ledger = await Ledger.open({
      config: ledgerConfig(join(dir, 'blocks'), db.url, {
        IPFS_PROVIDER: 'embedded',
        IPFS_EMBEDDED_DIR: join(dir, 'ipfs'),
        IPFS_DEBOUNCE_MS: '10',
      }),
    });
    app = buildServer(ledger, { adminToken: TOKEN });
    for (const id of ['a1', 'a2']) {
      await app.inject({
        method: 'POST',
        url: '/properties',
        headers: auth,
        payload: { id, name: `House ${id}`, address: 'x', owner: 'ann' },
      });
    }
  });
  afterAll(async () => {
    await app?.close();
    await ledger?.close();
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('needs the admin token even to list backups', async () => {
    expect((await app.inject({ method: 'GET', url: '/admin/backups' })).statusCode).toBe(401);
  });

  it('backs up to the database by name, lists it, and plans a restore as a rollback after a later save', async () => {
    const made = await app.inject({
      method: 'POST',
      url: '/admin/backups',
      headers: auth,
      payload: { name: 'Before the audit', adminId: 7 },
    });
    expect(made.statusCode).toBe(201);
    const backup = made.json().backup as { id: string; height: number };
    const list = (await app.inject({ method: 'GET', url: '/admin/backups', headers: auth })).json().backups as {
      id: string;
      name: string;
      createdBy: number;
    }[];
    expect(list[0]).toMatchObject({ id: backup.id, name: 'Before the audit', createdBy: 7 });
    await app.inject({
      method: 'POST',
      url: '/properties',
      headers: auth,
      payload: { id: 'a3', name: 'Later', address: 'x', owner: 'ann' },
    });
    const plan = await app.inject({
      method: 'POST',
      url: '/admin/restore',
      headers: auth,
      payload: { backupId: backup.id, dryRun: true },
    });
    expect(plan.json()).toMatchObject({ backupId: backup.id, height: backup.height, rollback: true, dryRun: true });
    expect(ledger.properties().map((p) => p.id)).toEqual(['a1', 'a2', 'a3']);
    const done = await app.inject({
      method: 'POST',
      url: '/admin/restore',
      headers: auth,
      payload: { backupId: backup.id },
    });
    expect(done.statusCode).toBe(200);
    expect(ledger.properties().map((p) => p.id)).toEqual(['a1', 'a2']);
  });

  it('backs up to IPFS and answers with the manifest CID, which restores', async () => {
    const made = await app.inject({
      method: 'POST',
      url: '/admin/backups',
      headers: auth,
      payload: { tier: 'ipfs', name: 'Off-site' },
    });
    expect(made.statusCode).toBe(201);
    const cid = made.json().backup.id as string;
    expect(cid).toMatch(/^bafk/);
    const plan = await app.inject({
      method: 'POST',
      url: '/admin/restore',
      headers: auth,
      payload: { cid, dryRun: true },
    });
    expect(plan.json()).toMatchObject({ tier: 'ipfs', backupId: cid, headHash: ledger.head.hash, rollback: false });
  });

  it('refuses a typo of dryRun (an unknown field) with 400 naming it, and rolls nothing back', async () => {
    const made = await app.inject({
      method: 'POST',
      url: '/admin/backups',
      headers: auth,
      payload: { name: 'Typo target' },
    });
    const backupId = made.json().backup.id as string;
    await app.inject({
      method: 'POST',
      url: '/properties',
      headers: auth,
      payload: { id: 'a9', name: 'After', address: 'x', owner: 'ann' },
    });
    const head = ledger.head.hash;
    const r = await app.inject({
      method: 'POST',
      url: '/admin/restore',
      headers: auth,
      payload: { backupId, dryrun: true },
    });
    expect(r.statusCode, r.body).toBe(400);
    expect(r.json()).toEqual({
      error: { code: 'VALIDATION', message: 'dryrun is not a known field', field: 'dryrun' },
    });
    expect(ledger.head.hash).toBe(head);
    expect(ledger.properties().map((p) => p.id)).toContain('a9');
    const both = await app.inject({
      method: 'POST',
      url: '/admin/restore',
      headers: auth,
      payload: { backupId, cid: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy' },
    });
    expect(both.statusCode).toBe(400);
    expect(ledger.head.hash).toBe(head);
  });

  it('answers what PostgreSQL would refuse (a NUL in a name, an adminId past 2^31) with 400, never 500', async () => {
    const before = (await ledger.listBackups()).length;
    for (const [payload, field] of [
      [{ name: 'nul\u0000byte' }, 'name'],
      [{ name: 'esc\u001b[31m' }, 'name'],
      [{ adminId: 2 ** 31 }, 'adminId'],
      [{ adminId: 2 ** 53 + 2 }, 'adminId'],
    ] as const) {
      const r = await app.inject({ method: 'POST', url: '/admin/backups', headers: auth, payload });
      expect(r.statusCode, JSON.stringify(payload)).toBe(400);
      expect(r.json().error).toMatchObject({ code: 'VALIDATION', field });
    }
    // The largest accepted values do go into the database.
    const edge = await app.inject({
      method: 'POST',
      url: '/admin/backups',
      headers: auth,
      payload: { name: `Édition ${'é'.repeat(180)}`, adminId: 2 ** 31 - 1 },
    });
    expect(edge.statusCode, edge.body).toBe(201);
    expect((await ledger.listBackups()).length).toBe(before + 1);
  });

  it('refuses a bad tier, backup id or cid with 400 naming the field', async () => {
    for (const [payload, field] of [
      [{ tier: 'tape' }, 'tier'],
      [{ backupId: 'drop table' }, 'backupId'],
      [{ cid: '../../etc' }, 'cid'],
    ] as const) {
      const r = await app.inject({ method: 'POST', url: '/admin/restore', headers: auth, payload });
      expect(r.statusCode, JSON.stringify(payload)).toBe(400);
      expect(r.json().error.field).toBe(field);
    }
  });
});
