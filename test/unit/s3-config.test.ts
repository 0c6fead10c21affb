import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigError, NotFoundError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { configuredTiers, localPriority, openTiers, requireTier, TIER_NAMES } from '../../src/tiers/registry.js';
import { testSealer } from '../support/chain.js';

const R2 = 'https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com';

describe('S3 configuration', () => {
  it('is off without S3_BUCKET, and says how to turn it on', () => {
    const config = loadConfig({});
    expect(config.s3).toBeNull();
    expect(() => requireTier(config, 's3')).toThrow(NotFoundError);
    try {
      requireTier(config, 's3');
    } catch (err) {
      expect((err as NotFoundError).hint).toMatch(/S3_BUCKET/);
    }
  });

  it('defaults to AWS S3 in us-east-1 (or AWS_REGION), virtual-hosted; an endpoint defaults to path style', () => {
    expect(loadConfig({ S3_BUCKET: 'b' })).toMatchObject({
      s3: { bucket: 'b', prefix: '', endpoint: null, region: 'us-east-1', forcePathStyle: false },
      remoteTiers: ['S3 (S3_BUCKET)'],
    });
    expect(loadConfig({ S3_BUCKET: 'b', AWS_REGION: 'eu-west-3' }).s3?.region).toBe('eu-west-3');
    const r2 = loadConfig({ S3_BUCKET: 'b', S3_ENDPOINT: R2, S3_REGION: 'auto', S3_PREFIX: 'pawledger/prod' }).s3;
    expect(r2).toEqual({ bucket: 'b', prefix: 'pawledger/prod', endpoint: R2, region: 'auto', forcePathStyle: true });
    expect(loadConfig({ S3_BUCKET: 'b', S3_ENDPOINT: R2, S3_FORCE_PATH_STYLE: 'false' }).s3?.forcePathStyle).toBe(
      false,
    );
    expect(loadConfig({ S3_BUCKET: 'b', S3_FORCE_PATH_STYLE: 'true' }).s3?.forcePathStyle).toBe(true);
    expect(() => loadConfig({ S3_BUCKET: 'b', S3_FORCE_PATH_STYLE: 'yes' })).toThrow(ConfigError);
  });

  it('comes right after the database in the default restore order', () => {
    expect(TIER_NAMES.slice(0, 2)).toEqual(['db', 's3']);
    expect(loadConfig({}).tierOrder).toEqual([...TIER_NAMES, 'local']);
  });

  it('takes its place from LEDGER_TIER_ORDER, and its role from LEDGER_SYNC_TIERS (async by default)', async () => {
    const env = {
      S3_BUCKET: 'ledger-bucket',
      IPFS_API_URL: 'http://127.0.0.1:5001/api/v0',
      LEDGER_BACKUP_DIR: '/mnt/backups',
      LEDGER_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
    };
    const cases: Array<[string, string[], number]> = [
      ['db,s3,ipfs,local', ['db', 's3', 'ipfs', 'dir'], 3],
      ['s3,local', ['s3', 'db', 'ipfs', 'dir'], 1],
      ['local,s3', ['s3', 'db', 'ipfs', 'dir'], 0],
      ['ipfs,db,local,s3', ['ipfs', 'db', 's3', 'dir'], 2],
    ];
    for (const [order, names, before] of cases) {
      const config = loadConfig({ ...env, LEDGER_TIER_ORDER: order });
      expect(configuredTiers(config), order).toEqual(names);
      expect(localPriority(config), order).toBe(before);
      const opened = openTiers(config, { sealer: testSealer(), log: silentLogger() });
      try {
        expect(opened.entries.map((e) => e.name)).toEqual(names);
        expect(opened.localPriority).toBe(before);
        const s3 = opened.entries.find((e) => e.name === 's3')!;
        expect(s3).toMatchObject({ role: 'async', describe: 'S3 bucket' });
        expect(s3.tier.label).toBe('S3 bucket ledger-bucket at s3.us-east-1.amazonaws.com');
      } finally {
        await opened.close();
      }
    }
    const sync = openTiers(loadConfig({ ...env, LEDGER_SYNC_TIERS: 'db,s3' }), {
      sealer: testSealer(),
      log: silentLogger(),
    });
    expect(sync.entries.find((e) => e.name === 's3')?.role).toBe('sync');
    await sync.close();
    expect(() => loadConfig({ ...env, LEDGER_TIER_ORDER: 'db,s4,local' })).toThrow(
      /not one of db, s3, ipfs, dir, local/,
    );
  });
});
