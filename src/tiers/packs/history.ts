import type { BackupRecord } from '../../crypto/records.js';
import { NotFoundError } from '../../errors.js';

/**
 * walkBack lists backups from the manifest `from` back through each one's `previous`, newest first, until `stop`
 * says an id is known, `limit` are listed, or the chain of manifests ends. Retention deletes old manifests, so one
 * that is gone ends the walk (after the first); with `lenient`, any manifest that cannot be read ends it too (healing
 * a list is best effort: what was found is still worth adding).
 */
export async function walkBack(
  from: string | null,
  stop: (id: string) => boolean,
  limit: number,
  lenient: boolean,
  read: (id: string) => Promise<BackupRecord & { previous?: string | null }>,
): Promise<BackupRecord[]> {
  const out: BackupRecord[] = [];
  for (let id = from; id && !stop(id) && out.length < limit; ) {
    const r = await read(id).catch((err: unknown) => {
      if (lenient || (err instanceof NotFoundError && out.length > 0)) return null;
      throw err;
    });
    if (!r) break;
    const { previous, ...record } = r;
    out.push(record);
    id = previous ?? null;
  }
  return out;
}
