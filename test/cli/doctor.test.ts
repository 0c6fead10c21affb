import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey } from '../../src/crypto/key.js';
import { loadConfig } from '../../src/config.js';
import { Ledger } from '../../src/service/ledger.js';
import { segmentFiles } from '../support/durability.js';
import { createTempDatabase, type TempDatabase } from '../support/pg.js';
import { runCliAsync } from '../support/serve-process.js';
import { startPinataStandin, type PinataStandin } from '../support/standins/pinata.js';

interface Report {
  ok: boolean;
  checks: { name: string; status: string; detail: string; fix?: string }[];
}

describe('pawledger doctor', () => {
  let cwd: string;
  let db: TempDatabase;
  let pinata: PinataStandin;
  const key = generateKey();
  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'pl-doctor-'));
    db = await createTempDatabase();
    pinata = await startPinataStandin({ jwt: 'the-right-jwt' });
    const ledger = await Ledger.open({
      config: loadConfig({ LEDGER_DATA_DIR: join(cwd, 'blocks'), LEDGER_ENCRYPTION_KEY: key, DATABASE_URL: db.url }),
    });
    await ledger.register({ id: 'd1', name: 'Doctor House', address: '1 Clinic Rd', owner: 'ann' });
    await ledger.close();
  });
  afterAll(async () => {
    await pinata?.close();
    await db?.drop();
    await rm(cwd, { recursive: true, force: true });
  });

  const doctor = async (env: Record<string, string>, ...args: string[]) => {
    const r = await runCliAsync(cwd, { LEDGER_DATA_DIR: join(cwd, 'blocks'), LOG_LEVEL: 'silent', ...env }, [
      'doctor',
      '--json',
      ...args,
    ]);
    return { code: r.code, report: JSON.parse(r.stdout) as Report, text: r.stdout + r.stderr };
  };
  const check = (report: Report, name: string) => report.checks.find((c) => c.name === name)!;

  it('passes on a working setup, and --write proves the Pinata key may pin', async () => {
    const { code, report } = await doctor(
      {
        LEDGER_ENCRYPTION_KEY: key,
        DATABASE_URL: db.url,
        PINATA_JWT: 'the-right-jwt',
        PINATA_API_URL: pinata.url,
        PINATA_GATEWAY_URL: pinata.gatewayUrl,
      },
      '--write',
    );
    expect(report.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(check(report, 'db backups').detail).toMatch(/decrypts and verifies: 2 blocks/);
    expect(check(report, 'ipfs').detail).toMatch(/stored, fetched and deleted a probe/);
    expect(code).toBe(0);
  });

  it('names a wrong key, an unreachable database and a bad Pinata key, each with a fix, and exits 1', async () => {
    const wrongKey = generateKey();
    const badDb = await doctor({
      LEDGER_ENCRYPTION_KEY: key,
      DATABASE_URL: 'postgresql://pawuser:s3cret-pw@127.0.0.1:1/none',
      PINATA_JWT: 'a-wrong-jwt',
      PINATA_API_URL: pinata.url,
      PINATA_GATEWAY_URL: pinata.gatewayUrl,
    });
    expect(badDb.code).toBe(1);
    expect(check(badDb.report, 'db')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/unreachable/) });
    expect(check(badDb.report, 'db').fix).toMatch(/DATABASE_URL/);
    expect(check(badDb.report, 'ipfs')).toMatchObject({ status: 'fail', fix: expect.stringMatching(/PINATA_JWT/) });
    expect(badDb.text).not.toContain('s3cret-pw');
    expect(badDb.text).not.toContain('a-wrong-jwt');

    const badKey = await doctor({ LEDGER_ENCRYPTION_KEY: wrongKey, DATABASE_URL: db.url });
    expect(badKey.code).toBe(1);
    expect(check(badKey.report, 'db backups')).toMatchObject({
      status: 'fail',
      fix: expect.stringMatching(/LEDGER_ENCRYPTION_KEY/),
    });
    expect(badKey.text).not.toContain(wrongKey);
  });

  it('for a damaged local store, names the tiers that hold a copy (any tier, not only db or IPFS), or says none does', async () => {
    const data = join(cwd, 'damaged');
    const folder = join(cwd, 'damaged-backups');
    await mkdir(folder, { mode: 0o700 });
    const env = { LEDGER_ENCRYPTION_KEY: key, LEDGER_DATA_DIR: data, LEDGER_BACKUP_DIR: folder, LEDGER_DB: 'off' };
    const ledger = await Ledger.open({ config: loadConfig(env) });
    for (let i = 0; i < 3; i++) await ledger.register({ id: `x${i}`, name: 'X', address: `${i} Rd`, owner: 'ann' });
    await ledger.close();
    const seg = (await segmentFiles(data)).at(-1)!;
    const buf = await readFile(seg);
    buf[buf.length - 5]! ^= 0x40;
    await writeFile(seg, buf);

    const withDir = await doctor(env);
    const store = check(withDir.report, 'local store');
    expect(store.status).toBe('fail');
    expect(store.fix).toContain('restores a verified copy from a tier (dir)');
    const alone = await doctor({ ...env, LEDGER_BACKUP_DIR: '' });
    expect(check(alone.report, 'local store').fix).toMatch(/^No other tier holds a copy/);
  }, 60_000);
});
