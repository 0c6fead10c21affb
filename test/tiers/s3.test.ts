import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, vi } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { openTiers } from '../../src/tiers/registry.js';
import { describeTier } from '../conformance/tier-suite.js';
import { testSealer } from '../support/chain.js';
import { S3RVER_CREDENTIALS, type S3rverProcess, startS3rver } from '../support/s3.js';

// The s3 tier as the registry builds it from S3_BUCKET: packs in a bucket, listed by the bucket itself, with the
// credentials from the SDK's usual chain (the environment here). Each case gets a prefix of its own.
const sealer = testSealer();
const BUCKET = 'tier-suite';
let s3: S3rverProcess;
beforeAll(async () => {
  s3 = await startS3rver([BUCKET]);
  vi.stubEnv('AWS_ACCESS_KEY_ID', S3RVER_CREDENTIALS.accessKeyId);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', S3RVER_CREDENTIALS.secretAccessKey);
});
afterAll(async () => {
  vi.unstubAllEnvs();
  await s3?.stop();
});
const s3Tier = (prefix: string) =>
  openTiers(
    { ...loadConfig({ LEDGER_DB: 'off', S3_BUCKET: BUCKET, S3_ENDPOINT: s3.endpoint, S3_PREFIX: prefix }) },
    { sealer, log: silentLogger(), only: 's3' },
  ).entries[0]!.tier;
const prefixOf = new WeakMap<object, string>();

describeTier('an S3 bucket (S3_BUCKET, s3rver)', {
  branches: true,
  sealer,
  async create() {
    const prefix = `cases/${randomBytes(5).toString('hex')}`;
    const t = s3Tier(prefix);
    prefixOf.set(t, prefix);
    return t;
  },
  async reopen(tier) {
    const t = s3Tier(prefixOf.get(tier)!);
    prefixOf.set(t, prefixOf.get(tier)!);
    return t;
  },
});
