import { mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GENERATION } from './chain-load.js';
import { fsyncDir } from './fsutil.js';

/**
 * moveAside moves every chain folder of the store `dir` but the live one into damaged-<time>/, with a note saying
 * why: nothing is deleted. It returns the folder, or null when there is nothing to keep (the chain folder itself
 * was gone).
 */
export async function moveAside(dir: string, live: string, why: string): Promise<string | null> {
  const damaged = (await readdir(dir)).filter((n) => GENERATION.test(n) && n !== live);
  if (damaged.length === 0) return null;
  const folder = join(dir, `damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  await mkdir(folder, { mode: 0o700 });
  await writeFile(join(folder, 'REASON.txt'), `Moved aside by pawledger on ${new Date().toISOString()}:\n${why}\n`, {
    mode: 0o600,
  });
  for (const n of damaged) await rename(join(dir, n), join(folder, n));
  await fsyncDir(dir);
  return folder;
}
