import { IntegrityError, NotFoundError } from '../../errors.js';
import type { ObjectStore } from '../../objects/object-store.js';
import type { Catalog } from './catalog.js';
import type { Manifest } from './manifest.js';
import type { ManifestStore } from './manifests.js';

/** GcInput is what collection needs from the tier: its store, catalog, manifests, and the ids it must keep. */
export interface GcInput {
  store: ObjectStore;
  catalog: Catalog;
  manifests: ManifestStore;
  /** alsoKept are manifests this process knows are live (its newest head and newest manifest). */
  alsoKept: (string | undefined)[];
  /** dropped is told of every object deleted, so caches forget it. */
  dropped: (id: string) => void;
}

// Every object a manifest names, objects first, its lists next: deleted in that order, a crash never hides an object
// behind a list already gone.
function named(m: Manifest): { objects: [string, number][]; lists: [string, number][] } {
  const objects: [string, number][] = m.spans.map((s) => [s.ref.cid, s.ref.bytes]);
  for (const c of m.checkpoints) for (const p of c.parts) objects.push([p.cid, p.bytes]);
  return { objects, lists: m.lists.flatMap((l): [string, number][] => (l.ref ? [[l.ref.cid, l.ref.bytes]] : [])) };
}

/**
 * collectPackGarbage deletes, for each backup the catalog marks pruned, the objects (packs, checkpoint parts, pack
 * lists) no remaining manifest names, then its manifest, then forgets it. Remaining manifests are the live backups
 * and the ones the catalog must keep (the newest each pointer names); if one cannot be read (other than already
 * gone) nothing is deleted. A pruned manifest that cannot be read names objects nobody can know: those stay.
 */
export async function collectPackGarbage(ledgerId: string, gc: GcInput): Promise<{ blocks: number; bytes: number }> {
  const { catalog, manifests } = gc;
  const pruned = new Set(await catalog.pruned(ledgerId));
  if (pruned.size === 0) return { blocks: 0, bytes: 0 };
  const kept = new Set(((await catalog.list(ledgerId, 1_000_000)) ?? []).map((r) => r.id));
  for (const id of [...gc.alsoKept, ...(await catalog.anchors(ledgerId))]) if (id) kept.add(id);
  const keep = new Set<string>();
  for (const id of kept) {
    if (pruned.has(id)) continue;
    const m = await manifests.read(id).catch((err: unknown) => {
      if (err instanceof NotFoundError) return null;
      throw err;
    });
    keep.add(id);
    if (!m) continue;
    const { objects, lists } = named(m);
    for (const [cid] of [...objects, ...lists]) keep.add(cid);
  }
  let blocks = 0;
  let bytes = 0;
  const remove = async (id: string, size: number) => {
    if (keep.has(id)) return;
    keep.add(id);
    await gc.store.delete(id);
    gc.dropped(id);
    manifests.forget(id);
    blocks++;
    bytes += size;
  };
  for (const id of pruned) {
    const m = await manifests.read(id).catch((err: unknown) => {
      if (err instanceof NotFoundError || err instanceof IntegrityError) return null;
      throw err;
    });
    if (m) {
      const { objects, lists } = named(m);
      for (const [cid, size] of objects) await remove(cid, size);
      for (const [cid, size] of lists) await remove(cid, size);
    }
    await remove(id, 0);
  }
  await catalog.forget([...pruned]);
  return { blocks, bytes };
}

/**
 * freeManifests deletes the manifests `retired` (the old copies key rotation replaced, reseal.ts) and, before each,
 * the objects and lists of it that no manifest of `kept` names, in the order collectPackGarbage deletes them. A kept
 * manifest that cannot be read (other than already gone) stops it before anything is deleted; a retired one already
 * gone, or that does not open, is skipped (its own id is still deleted). It returns how many objects it deleted.
 */
export async function freeManifests(
  gc: Pick<GcInput, 'store' | 'manifests' | 'dropped'>,
  retired: readonly string[],
  kept: readonly string[],
): Promise<number> {
  const { manifests } = gc;
  const keep = new Set<string>(kept);
  for (const id of kept) {
    const m = await manifests.read(id).catch((err: unknown) => {
      if (err instanceof NotFoundError) return null;
      throw err;
    });
    if (!m) continue;
    const { objects, lists } = named(m);
    for (const [cid] of [...objects, ...lists]) keep.add(cid);
  }
  let freed = 0;
  const remove = async (id: string) => {
    if (keep.has(id)) return;
    keep.add(id);
    await gc.store.delete(id);
    gc.dropped(id);
    manifests.forget(id);
    freed++;
  };
  for (const id of retired) {
    if (keep.has(id)) continue;
    const m = await manifests.read(id).catch((err: unknown) => {
      if (err instanceof NotFoundError || err instanceof IntegrityError) return null;
      throw err;
    });
    if (m) {
      const { objects, lists } = named(m);
      for (const [cid] of objects) await remove(cid);
      for (const [cid] of lists) await remove(cid);
    }
    await remove(id);
  }
  return freed;
}
