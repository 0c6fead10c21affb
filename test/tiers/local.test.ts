import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { LocalTier } from '../../src/tiers/local.js';
import { describeTier } from '../conformance/tier-suite.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describeTier('local store', {
  branches: false,
  async create() {
    const dir = await mkdtemp(join(tmpdir(), 'pl-tier-local-'));
    dirs.push(dir);
    return new LocalTier({ dir, segmentBytes: 4096 });
  },
  async reopen(tier) {
    return new LocalTier({ dir: tier.label.replace(/^local store /, ''), segmentBytes: 4096 });
  },
});
