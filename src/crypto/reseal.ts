import { resealCheckpointPart } from './checkpoints.js';
import { sealRecordAgain, type NewBackup } from './records.js';
import type { SealedPack } from './packs.js';
import { sealedKeyId, type Sealer } from './seal.js';
import type { StoredBlock } from './stored-block.js';

/**
 * Key rotation, object by object (pure code, no I/O): each function opens one stored object with the keyring and
 * returns it sealed under the active key, bound to the same context, so its height, hash and place in every tier
 * stay the same and only the sealed bytes change. An object already under the active key comes back unchanged (the
 * same Buffer), which is how a resumed rotation skips what it did before it was killed. Anything that does not open
 * throws IntegrityError: rotation never seals unauthenticated bytes again.
 */

/** needsReseal tells whether a sealed object is under a key other than the active one (null header: not sealed). */
export function needsReseal(sealer: Sealer, sealed: Uint8Array): boolean {
  const id = sealedKeyId(sealed);
  return id !== null && id !== sealer.keyId;
}

/** resealBlock is a stored block sealed under the active key. */
export function resealBlock(sealer: Sealer, ledgerId: string, block: StoredBlock, where?: string): StoredBlock {
  const sealed = sealer.reseal(
    { ledgerId, kind: 'block', height: block.height, hash: block.hash },
    block.sealed,
    where,
  );
  return sealed === block.sealed ? block : { ...block, sealed };
}

/** resealPack is a pack (crypto/packs.ts) sealed under the active key: same span, same hashes. */
export function resealPack(sealer: Sealer, ledgerId: string, pack: SealedPack, where?: string): SealedPack {
  const ctx = { ledgerId, kind: 'packed-blocks' as const, height: pack.to, hash: pack.hashes.at(-1)! };
  const sealed = sealer.reseal(ctx, pack.sealed, where);
  return sealed === pack.sealed ? pack : { ...pack, sealed };
}

/** resealCheckpoint is one stored part of the checkpoint after block (height, hash), sealed under the active key. */
export function resealCheckpoint(
  sealer: Sealer,
  ledgerId: string,
  at: { height: number; hash: string },
  part: Buffer,
  where?: string,
): Buffer {
  return resealCheckpointPart(sealer, ledgerId, at, part, where);
}

/** resealRecord is a backup record whose seal is under the active key (its fields unchanged). */
export function resealRecord<R extends NewBackup>(sealer: Sealer, record: R): R {
  return sealRecordAgain(sealer, record);
}

/** keyIdOf is the id of the key that sealed an object ('unsealed' for bytes that are not a sealed object). */
export function keyIdOf(sealed: Uint8Array): string {
  return sealedKeyId(sealed) ?? 'unsealed';
}
