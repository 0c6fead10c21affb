/**
 * The s3 tier, end to end with real processes and a real S3 server (s3rver on 127.0.0.1) behind a fault proxy:
 * S3_BUCKET alone (no database, no IPFS) keeps every save in the bucket; a wiped data folder comes back from it; a
 * burst of 503 SlowDown costs no save and the tier catches up; prune frees objects; the doctor proves the bucket is
 * writable; wrong credentials are a clear ConfigError that never shows the secret.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../src/objects/s3.js';
import { tempDir, TEST_KEY, waitFor } from '../support/pg.js';
import {
  S3RVER_CREDENTIALS,
  type S3FaultProxy,
  type S3rverProcess,
  SLOW_DOWN,
  startS3FaultProxy,
  startS3rver,
} from '../support/s3.js';
import { runCliAsync, startServe } from '../support/serve-process.js';

const TOKEN = 's3-tier-admin-token-0123456789';
const BUCKET = 'pawledger-e2e';
const PREFIX = 'prod';
const WRONG_SECRET = 'wJalrXUtnFEMI-this-must-never-be-printed';
let root: string;
let cleanup: () => Promise<void>;
let s3: S3rverProcess;
let proxy: S3FaultProxy;
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('s3-tier'));
  s3 = await startS3rver([BUCKET]);
  proxy = await startS3FaultProxy(s3.endpoint);
});
afterAll(async () => {
  await proxy?.close();
  await s3?.stop();
  await cleanup();
});

interface Status {
  height: number;
  headHash: string;
  tiers: { name: string; state: string; height: number }[];
}

const baseEnv = () => ({
  LEDGER_ENCRYPTION_KEY: TEST_KEY,
  ADMIN_TOKEN: TOKEN,
  LEDGER_DATA_DIR: join(root, 'data'),
  LEDGER_DB: 'off',
  S3_BUCKET: BUCKET,
  S3_PREFIX: PREFIX,
  S3_ENDPOINT: proxy.url,
  AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
  // Never ask the EC2 metadata address for credentials: the keys are above, and only loopback is ours.
  AWS_EC2_METADATA_DISABLED: 'true',
  LEDGER_RETRY_MS: '100',
  LOG_FORMAT: 'json',
  LOG_LEVEL: 'info',
});

/** bucketKeys lists what the bucket holds under the prefix, straight from s3rver (no proxy). */
async function bucketKeys(): Promise<string[]> {
  const store = new S3Store({ bucket: BUCKET, prefix: PREFIX, endpoint: s3.endpoint, credentials: S3RVER_CREDENTIALS });
  const out: string[] = [];
  for await (const k of store.list('')) out.push(k);
  await store.close();
  return out;
}

describe('an S3 bucket as the only other tier', () => {
  it('keeps every save through a SlowDown burst, brings a wiped data folder back, prunes, passes the doctor', async () => {
    const env = baseEnv();
    const s = await startServe(root, env);
    const auth = { authorization: `Bearer ${TOKEN}` };
    const post = (id: string) =>
      fetch(`${s.url}/properties`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ id, name: `House ${id}`, address: `${id} Bucket Lane`, owner: 'ann' }),
      });
    const status = async (url = s.url) => (await (await fetch(`${url}/status`, { headers: auth })).json()) as Status;
    const s3AtHead = async () => {
      const st = await status();
      return st.tiers.find((t) => t.name === 's3')?.height === st.height;
    };
    for (const id of ['a', 'b', 'c']) expect((await post(id)).status).toBe(201);
    await waitFor('the bucket at the head', s3AtHead, 15_000);

    // A burst of 503 SlowDown: more than one call's retries, so the replicator's backoff comes in too.
    proxy.failNext(12, SLOW_DOWN);
    const faulted = proxy.faulted;
    const started = performance.now();
    for (const id of ['d', 'e', 'f']) expect((await post(id)).status).toBe(201);
    const saveMs = performance.now() - started;
    const caughtUpMs = await waitFor('the bucket caught up after the burst', s3AtHead, 30_000);
    expect(proxy.faulted - faulted).toBe(12);
    console.log(`SlowDown burst: 3 saves in ${saveMs.toFixed(0)} ms; bucket level ${caughtUpMs.toFixed(0)} ms later`);
    const before = await status();
    expect(before.height).toBe(6);
    expect(await s.stop()).toBe(0);

    await rm(join(root, 'data'), { recursive: true, force: true });
    const again = await startServe(root, env);
    try {
      expect(await status(again.url)).toMatchObject({ height: before.height, headHash: before.headHash });
      expect(again.lines.join('\n')).toMatch(/Ledger restored from S3 bucket/);
    } finally {
      expect(await again.stop()).toBe(0);
    }

    const cli = (args: string[]) => runCliAsync(root, { ...env, LOG_LEVEL: 'warn' }, args);
    const list = await cli(['backups', 'list', '--tier', 's3', '--json']);
    expect(list.code, list.stderr).toBe(0);
    const records = JSON.parse(list.stdout) as { id: string; height: number }[];
    expect(records[0]!.height).toBe(before.height);
    expect(records.length).toBeGreaterThan(1);

    // Retention: keep the newest backup, delete the rest and every object only they needed.
    const objectsBefore = await bucketKeys();
    const pruned = await cli(['backups', 'prune', '--tier', 's3', '--keep-last', '1', '--json']);
    expect(pruned.code, pruned.stderr).toBe(0);
    const report = JSON.parse(pruned.stdout) as {
      tiers: { tier: string; removed: number; collected: { blocks: number } }[];
    };
    expect(report.tiers[0]).toMatchObject({ tier: 's3', removed: records.length - 1 });
    expect(report.tiers[0]!.collected.blocks).toBeGreaterThan(0);
    const objectsAfter = await bucketKeys();
    expect(objectsAfter.length).toBeLessThan(objectsBefore.length);
    expect(objectsAfter.filter((k) => k.includes('/manifests/'))).toHaveLength(1);
    expect(objectsAfter.filter((k) => k.includes('/pruned/'))).toEqual([]);
    const verify = await cli(['verify', '--from', 's3']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(new RegExp(`^ok: backup .*: ${before.height + 1} blocks verify`));

    // The doctor: the bucket is reachable, --write stores, reads and deletes a probe, the newest backup verifies.
    const doctor = await cli(['doctor', '--write', '--json']);
    const checks = (JSON.parse(doctor.stdout) as { checks: { name: string; status: string; detail: string }[] }).checks;
    const check = (name: string) => checks.find((c) => c.name === name);
    expect(check('s3'), doctor.stdout).toMatchObject({ status: 'ok' });
    expect(check('s3')!.detail).toMatch(
      new RegExp(`^S3 bucket ${BUCKET}/${PREFIX} at 127\\.0\\.0\\.1:\\d+: .*stored, fetched and deleted a probe`),
    );
    expect(check('s3 backups')).toMatchObject({ status: 'ok' });
    expect(await bucketKeys()).toEqual(objectsAfter); // the probe is gone
  }, 120_000);

  it('says wrong credentials plainly, as a ConfigError with what to do, and never prints the secret', async () => {
    const env = {
      ...baseEnv(),
      LEDGER_DATA_DIR: join(root, 'wrong-keys'),
      AWS_ACCESS_KEY_ID: 'AKIAWRONGKEY00000000',
      AWS_SECRET_ACCESS_KEY: WRONG_SECRET,
    };
    const doctor = await runCliAsync(root, { ...env, LOG_LEVEL: 'warn' }, ['doctor', '--json']);
    expect(doctor.code).toBe(1);
    const s3Check = (
      JSON.parse(doctor.stdout) as { checks: { name: string; status: string; detail: string; fix: string }[] }
    ).checks.find((c) => c.name === 's3');
    expect(s3Check).toMatchObject({ status: 'fail' });
    expect(s3Check!.detail).toMatch(/refused the credentials for check \(403 InvalidAccessKeyId\)/);
    expect(s3Check!.fix).toMatch(/AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    expect(doctor.stdout + doctor.stderr).not.toContain(WRONG_SECRET);

    const text = await runCliAsync(root, { ...env, LOG_LEVEL: 'warn' }, ['doctor']);
    expect(text.stdout).toMatch(/^FAIL {2}s3: .*refused the credentials/m);
    expect(text.stdout + text.stderr).not.toContain(WRONG_SECRET);

    // serve refuses to start on a configuration only a person can fix, and says what to fix (no secret).
    const refused = await startServe(root, env).then(
      async (s) => {
        await s.stop();
        return 'started';
      },
      (err: Error) => err.message,
    );
    expect(refused).toMatch(/serve exited with 1 before listening/);
    expect(refused).toMatch(/pawledger: S3 bucket .* refused the credentials for check \(403 InvalidAccessKeyId\)/);
    expect(refused).not.toContain(WRONG_SECRET);
  }, 60_000);
});
