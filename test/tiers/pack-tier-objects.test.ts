import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sealCheckpoint } from '../../src/crypto/checkpoints.js';
import { encodePack } from '../../src/crypto/packs.js';
import { verifyBackup } from '../../src/engine/restore.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { openTiers } from '../../src/tiers/registry.js';
import type { BackupTier } from '../../src/tiers/tier.js';
import { makeChain, recordFor, testSealer } from '../support/chain.js';
import { expected, opened, packOf, stateAt } from '../conformance/pack-suite.js';

// What a user of a folder (or bucket, or IPFS) tier notices of the ledger's packs: stored once and as they are, a
// save that uploads only what is new, small manifests, and retention that frees what no backup needs any more.
const sealer = testSealer();
let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'pl-pack-objects-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

async function folderTier(existing?: string): Promise<{ tier: BackupTier; dir: string }> {
  const dir = existing ?? join(root, `f${n++}`, 'backups');
  await mkdir(dir, { recursive: true });
  const config = { ...loadConfig({ LEDGER_DB: 'off', LEDGER_BACKUP_DIR: dir }), dataDir: join(dir, '..', 'data') };
  const tier = openTiers(config, { sealer, log: silentLogger(), only: 'dir' }).entries[0]!.tier;
  await tier.init();
  return { tier, dir };
}

// The files under a ledger's folder, by kind (packs, lists, manifests, checkpoints), with their sizes.
async function files(dir: string, ledgerId: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const base = join(dir, 'ledgers', ledgerId);
  for (const kind of await readdir(base).catch(() => [] as string[])) {
    for (const f of await readdir(join(base, kind))) out.set(`${kind}/${f}`, (await stat(join(base, kind, f))).size);
  }
  return out;
}
const ofKind = (all: Map<string, number>, suffix: string) => [...all.keys()].filter((k) => k.endsWith(suffix));

describe('pack tier objects (a folder)', () => {
  it("stores the ledger's pack byte for byte as the ledger sealed it, once", async () => {
    const { tier, dir } = await folderTier();
    const chain = makeChain(sealer, 20);
    await tier.append(chain.ledgerId, null, chain.stored, recordFor(sealer, chain, 19));
    const pack = packOf(sealer, chain, 0, 9);
    await tier.putPack!(chain.ledgerId, null, pack);
    expect((await tier.putPack!(chain.ledgerId, null, pack)).bytesWritten).toBe(0);
    expect(await tier.hasPack!(chain.ledgerId, 9, chain.blocks[9]!.hash)).toBe(true);
    expect(await tier.hasPack!(chain.ledgerId, 19, chain.blocks[19]!.hash)).toBe(false);
    const all = await files(dir, chain.ledgerId);
    const stored = ofKind(all, '.pwpk');
    expect(stored).toHaveLength(1);
    const bytes = await readFile(join(dir, 'ledgers', chain.ledgerId, stored[0]!));
    expect(bytes.equals(encodePack(pack))).toBe(true);
    // A pack whose index disagrees with its range is refused before anything is stored.
    const bad = { ...packOf(sealer, chain, 10, 19), to: 18 };
    await expect(tier.putPack!(chain.ledgerId, chain.blocks[9]!.hash, bad)).rejects.toMatchObject({
      code: 'VALIDATION',
    });
    expect(ofKind(await files(dir, chain.ledgerId), '.pwpk')).toHaveLength(1);
    await tier.close();
  });

  it('uploads only what is new: a save after 40 packs sends one small pack and a manifest under 8 KiB', async () => {
    const { tier, dir } = await folderTier();
    const chain = makeChain(sealer, 402);
    await tier.putPack!(chain.ledgerId, null, packOf(sealer, chain, 0, 9));
    for (let from = 10; from < 400; from += 10)
      await tier.putPack!(chain.ledgerId, chain.blocks[from - 1]!.hash, packOf(sealer, chain, from, from + 9));
    const before = await files(dir, chain.ledgerId);
    const packBytes = ofKind(before, '.pwpk').reduce((s, k) => s + before.get(k)!, 0);
    const { record, bytesWritten } = await tier.append(
      chain.ledgerId,
      chain.blocks[399]!.hash,
      chain.stored.slice(400),
      recordFor(sealer, chain, 401),
    );
    const after = await files(dir, chain.ledgerId);
    const added = [...after.keys()].filter((k) => !before.has(k));
    // One pack of the two new blocks and the manifest (which holds the last spans itself): no pack of the ledger again.
    expect(ofKind(after, '.pwpk')).toHaveLength(40);
    expect(added.filter((k) => k.endsWith('.pwpk'))).toEqual([]);
    expect(added.filter((k) => k.endsWith('.pack'))).toHaveLength(1);
    expect(added.filter((k) => k.endsWith('.list'))).toEqual([]);
    expect(bytesWritten).toBeLessThan(packBytes / 20);
    const manifest = added.find((k) => k.endsWith('.manifest'))!;
    expect(after.get(manifest)).toBeLessThan(8192);
    const { pages, blocks } = await opened(tier, sealer, record!);
    expect(blocks).toEqual(expected(chain));
    expect(pages.filter((p) => 'pack' in p)).toHaveLength(40);
    await verifyBackup(tier, record!, sealer);
    await tier.close();
  });

  it('frees, on retention, the packs, lists and checkpoints only deleted backups named, and keeps what the rest need', async () => {
    const { tier, dir } = await folderTier();
    const chain = makeChain(sealer, 30);
    const { record: r9 } = await tier.append(
      chain.ledgerId,
      null,
      chain.stored.slice(0, 10),
      recordFor(sealer, chain, 9),
    );
    const { record: r19 } = await tier.append(
      chain.ledgerId,
      chain.blocks[9]!.hash,
      chain.stored.slice(10, 20),
      recordFor(sealer, chain, 19),
    );
    for (const h of [5, 12, 18])
      await tier.putCheckpoint!(
        chain.ledgerId,
        sealCheckpoint(sealer, chain.ledgerId, chain.blocks[h]!.hash, stateAt(chain, h)),
      );
    await tier.putPack!(chain.ledgerId, null, packOf(sealer, chain, 0, 14));
    const { record: r29 } = await tier.append(
      chain.ledgerId,
      chain.blocks[19]!.hash,
      chain.stored.slice(20),
      recordFor(sealer, chain, 29),
    );
    const before = await files(dir, chain.ledgerId);
    expect(ofKind(before, '.part').length).toBe(6);
    // Keep r29 only (with the auto backups the packs and checkpoints made, every other backup goes).
    const others = (await tier.listBackups(chain.ledgerId, { limit: 100 })).filter((r) => r.id !== r29!.id);
    expect(others.map((r) => r.id)).toEqual(expect.arrayContaining([r9!.id, r19!.id]));
    await tier.deleteBackups(others.map((r) => r.id));
    const freed = await tier.collectGarbage(chain.ledgerId);
    expect(freed.blocks).toBeGreaterThan(0);
    const after = await files(dir, chain.ledgerId);
    // The loose packs of blocks 0..14 the ledger's pack replaced, the checkpoint at 5 and the old lists are gone.
    expect(ofKind(after, '.part').length).toBe(4);
    expect(ofKind(after, '.manifest')).toEqual([expect.stringContaining('manifests/')]);
    expect(ofKind(after, '.pwpk')).toHaveLength(1);
    expect(after.size).toBeLessThan(before.size);
    expect((await opened(tier, sealer, r29!)).blocks).toEqual(expected(chain));
    await verifyBackup(tier, r29!, sealer);
    expect(await tier.checkpointFor!(r29!)).toMatchObject({ height: 18 });
    // Run again (as after a crash): nothing more goes, and the kept backup still reads.
    expect(await tier.collectGarbage(chain.ledgerId)).toEqual({ blocks: 0, bytes: 0 });
    await verifyBackup(tier, r29!, sealer);
    await tier.close();
  });

  it('refuses a backup whose pack list was altered, naming it, and leaves the others readable', async () => {
    const { tier, dir } = await folderTier();
    const chain = makeChain(sealer, 30);
    const { record: r5 } = await tier.append(
      chain.ledgerId,
      null,
      chain.stored.slice(0, 6),
      recordFor(sealer, chain, 5),
    );
    // Enough packs (one block each) that the pack list outgrows the manifest and goes in a list object.
    for (let h = 0; h < 24; h++)
      await tier.putPack!(chain.ledgerId, h === 0 ? null : chain.blocks[h - 1]!.hash, packOf(sealer, chain, h, h));
    const { record: r11 } = await tier.append(
      chain.ledgerId,
      chain.blocks[23]!.hash,
      chain.stored.slice(24),
      recordFor(sealer, chain, 29),
    );
    await tier.close();
    // Alter the newest list object, which r11 names (keeping its length).
    const all = await files(dir, chain.ledgerId);
    const lists = ofKind(all, '.list');
    const path = join(dir, 'ledgers', chain.ledgerId, lists.sort().at(-1)!);
    await chmod(path, 0o600);
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.replace('"p"', '"b"'));
    const again = (await folderTier(dir)).tier;
    await expect(again.getBackup(r11!.id)).rejects.toMatchObject({
      code: 'INTEGRITY',
      message: expect.stringContaining('/lists/'),
    });
    expect((await opened(again, sealer, r5!)).blocks).toEqual(expected(chain, 0, 5));
    await again.close();
  });
});
