import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { openTiers } from '../../src/tiers/registry.js';
import { describeTier } from '../conformance/tier-suite.js';
import { testSealer } from '../support/chain.js';

// The dir tier as the registry builds it from LEDGER_BACKUP_DIR: packs in a folder, listed by the folder itself.
const sealer = testSealer();
let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'pl-tier-dir-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
const dirTier = (dir: string) =>
  openTiers(
    { ...loadConfig({ LEDGER_DB: 'off', LEDGER_BACKUP_DIR: dir }), dataDir: join(dir, '..', 'data') },
    { sealer, log: silentLogger(), only: 'dir' },
  ).entries[0]!.tier;
const folderOf = new WeakMap<object, string>();

describeTier('a backup folder (LEDGER_BACKUP_DIR)', {
  branches: true,
  sealer,
  async create() {
    const dir = join(root, `f${n++}`, 'backups');
    await mkdir(dir, { recursive: true });
    const t = dirTier(dir);
    folderOf.set(t, dir);
    return t;
  },
  async reopen(tier) {
    const t = dirTier(folderOf.get(tier)!);
    folderOf.set(t, folderOf.get(tier)!);
    return t;
  },
});
