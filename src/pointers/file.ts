import { readFile } from 'node:fs/promises';
import { atomicWrite } from '../store/fsutil.js';
import type { BackupRecord } from '../crypto/records.js';
import type { CidPointer, PointerStore } from './pointer.js';

type RecordJson = Omit<BackupRecord, 'createdAt' | 'seal'> & { createdAt: string; seal: string };

/** FilePointerStore keeps the newest IPFS backup record of each ledger in a small JSON file, written atomically. */
export class FilePointerStore implements PointerStore {
  readonly name = 'file';
  constructor(private readonly path: string) {}

  async #read(): Promise<Record<string, RecordJson>> {
    const text = await readFile(this.path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '{}';
      throw err;
    });
    try {
      const parsed = JSON.parse(text) as Record<string, RecordJson>;
      return typeof parsed === 'object' && parsed !== null ? parsed : {};
    } catch {
      // A damaged pointer file is not fatal: the other pointer stores and the manifests themselves decide.
      return {};
    }
  }

  async latest(ledgerId?: string): Promise<CidPointer | null> {
    const all = Object.values(await this.#read()).filter(
      (r) => typeof r?.id === 'string' && (!ledgerId || r.ledgerId === ledgerId),
    );
    const r = all.sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
    return r
      ? { cid: r.id, record: { ...r, createdAt: new Date(r.createdAt), seal: Buffer.from(r.seal, 'base64') } }
      : null;
  }

  async save(record: BackupRecord, head: boolean): Promise<void> {
    if (!head) return;
    const all = await this.#read();
    all[record.ledgerId] = {
      ...record,
      createdAt: record.createdAt.toISOString(),
      seal: record.seal.toString('base64'),
    };
    await atomicWrite(this.path, Buffer.from(`${JSON.stringify(all)}\n`), 0o600);
  }
}
