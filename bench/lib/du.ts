import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** dirBytes is the sum of the sizes of the regular files under `dir` (apparent sizes, as `du -b` counts them). */
export async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await dirBytes(path);
    else if (entry.isFile()) total += (await stat(path)).size;
  }
  return total;
}
