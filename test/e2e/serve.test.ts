import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey } from '../../src/crypto/key.js';
import { runCli, startServe } from '../support/serve-process.js';
import { createTempDatabase, type TempDatabase } from '../support/pg.js';

async function allBytes(dir: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) parts.push(await readFile(join(e.parentPath, e.name)));
  }
  return Buffer.concat(parts);
}

describe('pawledger serve, end to end', () => {
  let cwd: string;
  let db: TempDatabase;
  const token = 'e2e-admin-token-0123456789';
  let env: Record<string, string>;

  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'pl-e2e-'));
    db = await createTempDatabase();
    env = { LEDGER_ENCRYPTION_KEY: generateKey(), DATABASE_URL: db.url, ADMIN_TOKEN: token };
  });
  afterAll(async () => {
    await db?.drop();
    await rm(cwd, { recursive: true, force: true });
  });

  it('keeps ten properties registered over HTTP across a restart, a wiped disk, and verify', async () => {
    const first = await startServe(cwd, env);
    const names: string[] = [];
    for (let i = 0; i < 10; i++) {
      names.push(`Villa Secreta ${i}`);
      const res = await fetch(`${first.url}/properties`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ id: `villa-${i}`, name: names[i], address: `${i} Hidden Lane`, owner: 'Marguerite' }),
      });
      expect(res.status).toBe(201);
    }
    expect(await first.stop('SIGTERM')).toBe(0);
    expect(first.lines.join('\n')).toContain('Shut down cleanly');

    // No plaintext anywhere in the data folder.
    const bytes = await allBytes(join(cwd, 'blocks'));
    for (const n of [...names, 'Marguerite', 'Hidden Lane']) expect(bytes.includes(Buffer.from(n))).toBe(false);

    const second = await startServe(cwd, env);
    const props = (await (await fetch(`${second.url}/properties`)).json()) as {
      properties: { id: string; name: string }[];
    };
    expect(props.properties.map((p) => p.name).sort()).toEqual([...names].sort());
    expect(second.lines.join('\n')).toMatch(/Ledger restored from local store .*11 blocks, 10 properties/);
    await second.stop();

    const verify = runCli(cwd, env, ['verify']);
    expect(verify.stdout).toContain('ok: 11 blocks verify');
    expect(verify.code).toBe(0);

    // The disk is wiped, as on a Render deploy: the database brings everything back.
    await rm(join(cwd, 'blocks'), { recursive: true });
    const third = await startServe(cwd, env);
    const again = (await (await fetch(`${third.url}/properties`)).json()) as { properties: { id: string }[] };
    expect(again.properties).toHaveLength(10);
    expect(third.lines.join('\n')).toMatch(/Ledger restored from database .*11 blocks, 10 properties/);
    await third.stop();
  }, 120_000);

  it('refuses to start on Render without a key, and says how to make one', async () => {
    const r = runCli(
      cwd,
      { RENDER: 'true', ADMIN_TOKEN: token, DATABASE_URL: db.url, LEDGER_DATA_DIR: join(cwd, 'render-blocks') },
      ['serve'],
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('LEDGER_ENCRYPTION_KEY is not set');
    expect(r.stderr).toContain('pawledger keygen');
  });
});

describe('pawledger serve with no configuration at all', () => {
  it('serves on the embedded defaults (local store, PGlite) and warns about the generated key', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'pl-e2e-bare-'));
    try {
      const s = await startServe(cwd, {}, 90_000);
      expect(await (await fetch(`${s.url}/healthz`)).json()).toEqual({ ok: true });
      const status = (await (await fetch(`${s.url}/status`)).json()) as { tiers: { name: string; state: string }[] };
      // The embedded database first in restore order, then the local store; the other tiers are off.
      expect(status.tiers.map((t) => [t.name, t.state]).filter(([, s]) => s !== 'off')).toEqual([
        ['db', 'ok'],
        ['local', 'ok'],
      ]);
      const log = s.lines.join('\n');
      expect(log).toContain('generated a development key');
      expect(log).toContain('ADMIN_TOKEN is not set: generated one');
      expect(await s.stop('SIGINT')).toBe(0);
      expect((await readdir(cwd)).sort()).toEqual(['.pawledger', 'blocks']);
      // The embedded database is as private as the local store: folders 0700, files 0600, whoever else is on the box.
      const open: string[] = [];
      for (const top of ['.pawledger', 'blocks']) {
        for (const e of await readdir(join(cwd, top), { recursive: true, withFileTypes: true })) {
          const path = join(e.parentPath, e.name);
          const m = (await stat(path)).mode & 0o777;
          if ((e.isDirectory() && m !== 0o700) || (e.isFile() && (m & 0o077) !== 0))
            open.push(`${path} ${m.toString(8)}`);
        }
      }
      expect(open).toEqual([]);
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  }, 120_000);
});
