import { constants } from 'node:fs';
import { chmod, link, lstat, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ConflictError, ValidationError } from '../errors.js';

/** fsyncDir makes a directory's entries (a new, renamed or removed file) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** syncFiles makes files of `dir` written without fsync durable, a few at a time, then the folder. */
export async function syncFiles(dir: string, names: readonly string[]): Promise<void> {
  for (let i = 0; i < names.length; i += 16) {
    await Promise.all(
      names.slice(i, i + 16).map(async (n) => {
        const fh = await open(join(dir, n), 'r');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
      }),
    );
  }
  if (names.length > 0) await fsyncDir(dir);
}

/**
 * atomicWrite replaces `path` with `data` so that a crash leaves either the old file or the new one, never a mix:
 * write a temp file beside it, fsync it, rename it over, fsync the directory.
 */
export async function atomicWrite(
  path: string,
  data: Uint8Array | AsyncIterable<Uint8Array>,
  mode = 0o600,
): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fh = await open(tmp, 'wx', mode);
  try {
    if (data instanceof Uint8Array) await fh.writeFile(data);
    else for await (const chunk of data) await fh.write(chunk);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await rename(tmp, path);
  await fsyncDir(dirname(path));
}

/**
 * createFile writes `data` to a new file at `path` as atomicWrite does (temp file, fsync, then into place, fsync
 * the directory), but never over something that is not a regular file (a device, a FIFO, a folder, a link), and
 * over an existing file only with `replace`; without it the file appears atomically or not at all (a hard link
 * that fails if the name exists). The temp file is removed whatever fails. It throws ConflictError when the name is
 * taken and ValidationError when it names something other than a regular file.
 */
export async function createFile(
  path: string,
  data: Uint8Array | AsyncIterable<Uint8Array>,
  options: { mode: number; replace: boolean },
): Promise<void> {
  await checkTarget(path, options.replace);
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Date.now()}`);
  const fh = await open(tmp, 'wx', options.mode);
  try {
    try {
      if (data instanceof Uint8Array) await fh.writeFile(data);
      else for await (const chunk of data) await fh.write(chunk);
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (options.replace) {
      await checkTarget(path, true);
      await rename(tmp, path);
    } else {
      await link(tmp, path).catch((err: NodeJS.ErrnoException) => {
        throw err.code === 'EEXIST'
          ? new ConflictError(`${path} already exists; use --force to replace it`, 'out')
          : err;
      });
      await rm(tmp);
    }
    await fsyncDir(dirname(path));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

async function checkTarget(path: string, replace: boolean): Promise<void> {
  const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (!st) return;
  if (!st.isFile()) {
    const what = st.isDirectory()
      ? 'a folder'
      : st.isSymbolicLink()
        ? 'a symbolic link'
        : st.isFIFO()
          ? 'a FIFO'
          : st.isSocket()
            ? 'a socket'
            : 'a device';
    throw new ValidationError(`${path} is ${what}, not a regular file: refusing to write over it`, 'out');
  }
  if (!replace) throw new ConflictError(`${path} already exists; use --force to replace it`, 'out');
}

/** makePrivate sets every folder under `dir` (and `dir`) to 0700 and every file to 0600: readable by this user only. */
export async function makePrivate(dir: string): Promise<void> {
  await chmod(dir, 0o700);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await makePrivate(p);
    else if (e.isFile()) await chmod(p, 0o600);
  }
}
