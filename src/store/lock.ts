import { open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LockedError } from '../errors.js';

/** DirLock is an exclusive claim on a folder by one process, held in a LOCK file that names the holder's pid. */
export interface DirLock {
  readonly path: string;
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * lockDir takes the folder's LOCK file, or throws LockedError naming the live process that holds it. A LOCK left by a
 * process that died (kill -9, a crash) is taken over: the pid it names is no longer running.
 */
export async function lockDir(dir: string, what: string): Promise<DirLock> {
  return lockFile(join(dir, 'LOCK'), what);
}

/** lockFile is lockDir's claim held in the file `path` itself (for a folder that must hold nothing else, such as PGlite's). */
export async function lockFile(path: string, what: string): Promise<DirLock> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return { path, release: () => rm(path, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
      throw new LockedError(`${what} is in use by process ${pid}${pid === process.pid ? ' (this one)' : ''}`, {
        hint: 'Stop that process, or send changes through its HTTP API',
      });
    }
    await rm(path, { force: true });
  }
  throw new LockedError(`could not take ${path}`);
}

/** lockHolder reads a folder's LOCK: the live process that holds it and since when, or null when none does. */
export async function lockHolder(dir: string): Promise<{ pid: number; since: Date } | null> {
  const path = join(dir, 'LOCK');
  const pid = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return null;
  const since = await stat(path).then(
    (s) => s.mtime,
    () => null,
  );
  return since ? { pid, since } : null;
}
