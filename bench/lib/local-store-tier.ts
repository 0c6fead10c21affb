import { sealRecord, type BackupRecord, type NewBackup } from '../../src/crypto/records.js';
import type { Sealer } from '../../src/crypto/seal.js';
import type { StoredBlock } from '../../src/crypto/stored-block.js';
import type { SealedCheckpoint } from '../../src/crypto/checkpoints.js';
import type { SealedPack } from '../../src/crypto/packs.js';
import { LocalStore } from '../../src/store/local-store.js';
import type { BackupTier } from '../../src/tiers/tier.js';

/**
 * localStoreTier is a bench fixture: a local store folder seen as a tier, so that the restore benchmarks can load a
 * chain into it and restore from it like from the other tiers. It keeps one chain and one record (the head's, made
 * here); what a tier must do beyond that (retention, protection) it refuses.
 */
export function localStoreTier(dir: string, sealer: Sealer): BackupTier {
  let store: LocalStore | null = null;
  let record: BackupRecord | null = null;
  const open = async () => (store ??= (await LocalStore.open(dir)).store);
  const refuse = async (): Promise<never> => {
    throw new Error('the bench local-store tier keeps one chain and no history');
  };
  const headRecord = async (): Promise<BackupRecord | null> => {
    const s = await open();
    if (record || s.ledgerId === null || s.headHash === null) return record;
    const fields = sealRecord(sealer, {
      ledgerId: s.ledgerId,
      name: 'bench',
      kind: 'manual',
      createdAt: new Date(),
      createdBy: null,
      height: s.height,
      headHash: s.headHash,
      sizeBytes: 0,
    });
    return { ...fields, id: 'bench', tier: 'local', protected: false };
  };
  return {
    name: 'local',
    label: `local store ${dir}`,
    init: async () => void (await open()),
    hasBlock: async (ledgerId, height, hash) =>
      (await open()).ledgerId === ledgerId && (await store!.hashAt(height)) === hash,
    append: async (ledgerId: string, _parent: string | null, blocks: readonly StoredBlock[], r?: NewBackup) => {
      const { bytesWritten } = await (await open()).append(ledgerId, blocks);
      if (r) record = { ...r, id: 'bench', tier: 'local', protected: false };
      return { bytesWritten, ...(record && r ? { record } : {}) };
    },
    putBackup: async (r: NewBackup) => (record = { ...r, id: 'bench', tier: 'local', protected: false }),
    listBackups: async () => {
      const r = await headRecord();
      return r ? [r] : [];
    },
    getBackup: async () => (await headRecord())!,
    putPack: async (ledgerId: string, _parent: string | null, pack: SealedPack) => {
      const s = await open();
      // A fresh store takes a pack of blocks it lacks as loose blocks first: the bench lays out a chain from nothing.
      if (s.height < pack.to) throw new Error('the bench local-store tier takes packs only over blocks it holds');
      return s.putPack(ledgerId, pack);
    },
    putCheckpoint: async (_ledgerId: string, cp: SealedCheckpoint) => (await open()).putCheckpoint(cp),
    checkpointFor: async (r: BackupRecord) => {
      const cp = await (await open()).checkpoint();
      return cp && cp.height <= r.height ? cp : null;
    },
    readChainPages: async function* (r: BackupRecord, start = 0) {
      yield* (await open()).readPages(start, r.height);
    },
    hashAt: async (r, height) => (height > r.height ? null : (await open()).hashAt(height)),
    deleteBackups: refuse,
    setProtected: refuse,
    collectGarbage: async () => ({ blocks: 0, bytes: 0 }),
    close: async () => void (await store?.close()),
  };
}
