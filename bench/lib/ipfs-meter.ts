import { resolve } from 'node:path';
import { EmbeddedIpfsStore } from '../../src/objects/embedded.js';
import { PackTier } from '../../src/tiers/packs/pack-tier.js';

/** IpfsCounts is what one embedded IPFS folder received: bytes added (packs and manifests), adds, and uploads. */
export interface IpfsCounts {
  /** bytes is the sum of the byte lengths given to the provider's add(): sealed packs (new and merged) and manifests. */
  bytes: number;
  adds: number;
  /** uploadMs lists the wall time of each PackTier.append: one incremental upload (packs, merges, manifest, pointers). */
  uploadMs: number[];
}

// Keyed by the provider's label, which names its folder; PackTier's label is "IPFS via <provider label>".
const counts = new Map<string, IpfsCounts>();
let installed = false;

function entry(label: string): IpfsCounts {
  let c = counts.get(label);
  if (!c) counts.set(label, (c = { bytes: 0, adds: 0, uploadMs: [] }));
  return c;
}

/**
 * installIpfsMeter wraps EmbeddedIpfsStore.put and PackTier.append at runtime (nothing in src/ changes) to count, per
 * embedded folder, the bytes handed to IPFS and how long each upload took. The Ledger's background upload queue
 * calls them as usual.
 */
export function installIpfsMeter(): void {
  if (installed) return;
  installed = true;
  const put = EmbeddedIpfsStore.prototype.put;
  EmbeddedIpfsStore.prototype.put = async function (
    this: EmbeddedIpfsStore,
    ...args: Parameters<EmbeddedIpfsStore['put']>
  ) {
    const cid = await put.apply(this, args);
    const c = entry(this.label);
    c.bytes += args[0].length;
    c.adds++;
    return cid;
  };
  const append = PackTier.prototype.append;
  PackTier.prototype.append = async function (this: PackTier, ...args: Parameters<PackTier['append']>) {
    const t = performance.now();
    const result = await append.apply(this, args);
    entry(this.label.replace(/^IPFS via /, '')).uploadMs.push(performance.now() - t);
    return result;
  };
}

/** ipfsCounts returns a copy of what the embedded folder `dir` has received so far. */
export function ipfsCounts(dir: string): IpfsCounts {
  const c = counts.get(new EmbeddedIpfsStore({ dir: resolve(dir) }).label) ?? { bytes: 0, adds: 0, uploadMs: [] };
  return { bytes: c.bytes, adds: c.adds, uploadMs: [...c.uploadMs] };
}

/** since is what was received between two readings of ipfsCounts. */
export function since(before: IpfsCounts, after: IpfsCounts): IpfsCounts {
  return {
    bytes: after.bytes - before.bytes,
    adds: after.adds - before.adds,
    uploadMs: after.uploadMs.slice(before.uploadMs.length),
  };
}
