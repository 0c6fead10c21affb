import { readFile } from 'node:fs/promises';
import { atomicWrite } from '../store/fsutil.js';
import type { BackupRecord } from '../tiers/tier.js';
import type { CidPointer, PointerStore } from './pointer.js';

type RecordJson = Omit<BackupRecord, 'createdAt' | 'seal'> & { createdAt: string; seal: string };

/** FilePointerStore keeps the newest IPFS backup record in a small JSON file, written atomically. */
export class FilePointerStore implements PointerStore {
  readonly name = 'file';
  constructor(private readonly path: string) {}

  async latest(ledgerId?: string): Promise<CidPointer | null> {
    const text = await readFile(this.path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (text === null) return null;
    try {
      const r = JSON.parse(text) as RecordJson;
      if (typeof r.id !== 'string' || (ledgerId && r.ledgerId !== ledgerId)) return null;
      return { cid: r.id, record: { ...r, createdAt: new Date(r.createdAt), seal: Buffer.from(r.seal, 'base64') } };
    } catch {
      // A damaged pointer file is not fatal: the other pointer stores and the manifests themselves decide.
      return null;
    }
  }

  async save(record: BackupRecord): Promise<void> {
    const json: RecordJson = { ...record, createdAt: record.createdAt.toISOString(), seal: record.seal.toString('base64') };
    await atomicWrite(this.path, Buffer.from(`${JSON.stringify(json)}\n`), 0o600);
  }
}
