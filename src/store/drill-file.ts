import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DrillJournal, DrillRecord } from '../engine/drill.js';
import { atomicWrite } from './fsutil.js';

/** DRILL_FILE is the file, in the data folder, that keeps drill records when there is no database. */
export const DRILL_FILE = 'drills.json';

/**
 * FileDrillJournal keeps drill records in `<dataDir>/drills.json`, newest first, the newest `keep` only, written
 * atomically (temp file, fsync, rename). A file that is missing or unreadable counts as empty: it holds only verdicts,
 * which the next drill makes again.
 */
export class FileDrillJournal implements DrillJournal {
  readonly #path: string;

  constructor(dataDir: string) {
    this.#path = join(dataDir, DRILL_FILE);
  }

  async #read(): Promise<DrillRecord[]> {
    try {
      const parsed: unknown = JSON.parse(await readFile(this.#path, 'utf8'));
      return Array.isArray(parsed) ? (parsed as DrillRecord[]) : [];
    } catch {
      return [];
    }
  }

  async add(record: DrillRecord, keep: number): Promise<void> {
    const all = [record, ...(await this.#read())].slice(0, keep);
    await atomicWrite(this.#path, Buffer.from(`${JSON.stringify(all, null, 1)}\n`));
  }

  async list(ledgerId: string, limit: number, tier?: string): Promise<DrillRecord[]> {
    return (await this.#read()).filter((r) => r.ledgerId === ledgerId && (!tier || r.tier === tier)).slice(0, limit);
  }
}
