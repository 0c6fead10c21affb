import { encodePack, type SealedPack } from '../../crypto/packs.js';
import type { SealedCheckpoint } from '../../crypto/checkpoints.js';
import type { Sealer } from '../../crypto/seal.js';
import type { StoredBlock } from '../../crypto/stored-block.js';
import { sha256Hex } from '../../ledger/block.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { objectKey, packKey, planMerge, sealPack } from './format.js';
import type { CheckpointRef, ObjectRef, Span } from './manifest.js';
import type { PackObjects } from './pack-objects.js';

const whole = (ref: ObjectRef): Span => ({ ref, from: ref.from, to: ref.to, hash: ref.lastHash });

/**
 * Uploads puts a pack tier's objects in its store: packs of loose blocks (sealed here, merged like a binary counter
 * so a chain keeps O(log n) of them), the ledger's packs (stored as they are: sealed once, by the ledger) and
 * checkpoint parts. Each returns what a manifest needs to name it, and counts the bytes it uploaded.
 */
export class Uploads {
  bytes = 0;

  constructor(
    private readonly store: ObjectStore,
    private readonly sealer: Sealer,
    private readonly objects: PackObjects,
    private readonly capBytes: number,
  ) {}

  /** looseBlocks appends `blocks` to `spans` as packs of at most capBytes, merging the tail's small packs. */
  async looseBlocks(ledgerId: string, spans: Span[], blocks: readonly StoredBlock[]): Promise<void> {
    for (let i = 0; i < blocks.length; ) {
      const chunk: StoredBlock[] = [];
      let size = 0;
      while (i < blocks.length && (chunk.length === 0 || size + blocks[i]!.sealed.length <= this.capBytes)) {
        size += blocks[i]!.sealed.length;
        chunk.push(blocks[i++]!);
      }
      spans.push(await this.#sealed(ledgerId, chunk));
      // Only whole packs of loose blocks merge: a ledger's pack, or a slice of a pack, ends the run.
      let tail = 0;
      while (tail < spans.length) {
        const s = spans[spans.length - 1 - tail]!;
        if (s.ref.form !== 'blocks' || s.from !== s.ref.from || s.to !== s.ref.to) break;
        tail++;
      }
      const n = planMerge(
        spans.slice(spans.length - tail).map((s) => s.ref),
        this.capBytes,
      );
      if (n > 1) {
        const merged: StoredBlock[] = [];
        for (const s of spans.slice(-n)) merged.push(...(await this.objects.blocks(ledgerId, s)));
        spans.splice(-n, n, await this.#sealed(ledgerId, merged));
      }
    }
  }

  async #sealed(ledgerId: string, blocks: StoredBlock[]): Promise<Span> {
    const { sealed, ref } = sealPack(this.sealer, ledgerId, blocks);
    const cid = await this.store.put(sealed, {
      key: packKey(ledgerId, ref),
      label: `pawledger pack ${ledgerId.slice(0, 12)} ${ref.from}-${ref.to}`,
      keyvalues: { ledger: ledgerId.slice(0, 16), kind: 'pack', from: String(ref.from), to: String(ref.to) },
    });
    this.bytes += sealed.length;
    this.objects.remember(cid, { form: 'blocks', blocks });
    return whole({ form: 'blocks', cid, ...ref });
  }

  /** ledgerPack stores the ledger's pack byte for byte as crypto/packs.ts encodes it. */
  async ledgerPack(ledgerId: string, pack: SealedPack): Promise<Span> {
    const file = encodePack(pack);
    const sha256 = sha256Hex(file);
    const cid = await this.store.put(file, {
      key: objectKey(ledgerId, 'pwpk', pack.from, pack.to, sha256),
      label: `pawledger ledger pack ${ledgerId.slice(0, 12)} ${pack.from}-${pack.to}`,
      keyvalues: { ledger: ledgerId.slice(0, 16), kind: 'ledger-pack', from: String(pack.from), to: String(pack.to) },
    });
    this.bytes += file.length;
    this.objects.remember(cid, { form: 'pack', pack });
    const lastHash = pack.hashes.at(-1)!;
    return whole({ form: 'pack', cid, sha256, bytes: file.length, from: pack.from, to: pack.to, lastHash });
  }

  /** checkpoint stores a checkpoint's parts, one object each, in order. */
  async checkpoint(ledgerId: string, cp: SealedCheckpoint): Promise<CheckpointRef> {
    const parts: CheckpointRef['parts'] = [];
    for (const [index, part] of cp.parts.entries()) {
      const sha256 = sha256Hex(part);
      const cid = await this.store.put(part, {
        key: objectKey(ledgerId, 'part', cp.height, index, sha256),
        label: `pawledger checkpoint ${ledgerId.slice(0, 12)} @${cp.height} part ${index}`,
        keyvalues: { ledger: ledgerId.slice(0, 16), kind: 'checkpoint', height: String(cp.height) },
      });
      this.bytes += part.length;
      parts.push({ cid, sha256, bytes: part.length });
    }
    return { height: cp.height, hash: cp.hash, parts };
  }
}
