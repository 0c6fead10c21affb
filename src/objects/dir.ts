import { constants } from 'node:fs';
import { access, link, lstat, mkdir, open, readdir, readFile, rm, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, ConflictError, IntegrityError, NotFoundError } from '../errors.js';
import { fsError } from '../store/fs-errors.js';
import { fsyncDir } from '../store/fsutil.js';
import { OBJECT_KEY, type ObjectStore, type PutRequest, validKey, validPrefix } from './object-store.js';
import { sha256Hex } from './digest.js';

/** DirStoreOptions configure the folder store. */
export interface DirStoreOptions {
  /**
   * root is the folder that holds the objects. It must exist: DirStore never creates it, so a volume that is not
   * mounted is a ConfigError rather than an empty store filling the disk underneath.
   */
  root: string;
}

/** TMP is the root's folder of temp files; keys never start with a dot, so it can never be an object. */
const TMP = '.tmp';
/** STALE_TMP_MS is the age past which a temp file is a crash's leftover, removed by the next put. */
export const STALE_TMP_MS = 60 * 60 * 1000;
/** NOT_THERE are the errors that mean "no object by that name" once the root is known to be fine. */
const NOT_THERE = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'ELOOP']);
/** LINKLESS are link() failures of a file system (or a mount inside the root) without hard links across it. */
const LINKLESS = new Set(['EXDEV', 'ENOTSUP', 'EOPNOTSUPP']);

/**
 * DirStore keeps each object as a file `<root>/<key>` (folders 0700, files 0600): a named store that never
 * overwrites. Bytes are opaque; get checks them only against a `sha256` the caller recorded, as a folder keeps no
 * hash of its own.
 *
 * Durability: put writes the bytes to a temp file in `<root>/.tmp/`, fsyncs it, then hard-links it to its key, which
 * fails if the name exists (so no put ever replaces an object, even two racing ones), and fsyncs every folder from
 * the key's own up to the root, created or not (a crashed earlier put may have made one without syncing it). It
 * answers only then. Same bytes already under the key are a success; other bytes are ConflictError, the file
 * untouched. delete unlinks the file and fsyncs its folder; it leaves empty folders, which a racing put may need.
 *
 * A crash leaves at most: a temp file in `.tmp/` (never listed, as it is no key; removed by the next put once older
 * than STALE_TMP_MS), a second name of a complete object in `.tmp/` (same), an empty folder (never listed), or, before
 * the folder fsync, a new object that power loss may undo, for a put that never answered and so is retried. Hard
 * links need one file system under the root that has them (no mount inside it; not exFAT, not most SMB shares).
 */
export class DirStore implements ObjectStore {
  readonly name = 'dir';
  readonly contentAddressed = false;
  readonly label: string;
  readonly #root: string;
  readonly #tmp: string;

  constructor(options: DirStoreOptions) {
    if (typeof options?.root !== 'string' || options.root.trim() === '') {
      throw new ConfigError('The folder store needs a root folder', { hint: 'Set the folder where objects are kept' });
    }
    this.#root = resolve(options.root);
    this.#tmp = join(this.#root, TMP);
    this.label = `folder ${this.#root}`;
  }

  async put(bytes: Uint8Array, request: PutRequest): Promise<string> {
    const key = validKey(request?.key);
    const path = join(this.#root, key);
    await this.#tmpDir();
    if (await this.#holds(key, bytes)) return this.#syncFolders(key).then(() => key); // a put retried after a crash
    const tmp = join(this.#tmp, `${process.pid}-${randomBytes(8).toString('hex')}.tmp`);
    try {
      await mkdir(dirname(path), { recursive: true, mode: 0o700 }).catch((err: unknown) => {
        if (codeOf(err) !== 'ENOTDIR' && codeOf(err) !== 'EEXIST') throw err;
        throw new ConflictError(`${this.label} cannot keep ${key}: one of its folders is an object`, 'key');
      });
      const fh = await open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await link(tmp, path).catch(async (err: unknown) => {
        if (LINKLESS.has(codeOf(err))) {
          throw new ConfigError(`${this.label} cannot hard-link a temp file to its key (${codeOf(err)})`, {
            hint: `Keep ${this.#root} on one local file system with hard links (ext4, xfs, btrfs, apfs), no mount inside`,
          });
        }
        if (codeOf(err) !== 'EEXIST' || !(await this.#holds(key, bytes))) throw err; // a racing put of the same bytes won
      });
      await this.#syncFolders(key);
      return key;
    } catch (err) {
      throw fsError(err, this.#root);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async get(id: string, options: { sha256?: string } = {}): Promise<Buffer> {
    const key = validKey(id);
    let bytes: Buffer;
    try {
      // Objects are regular files; a link someone put here is none (has() and list() agree).
      bytes = await readFile(join(this.#root, key), { flag: constants.O_RDONLY | constants.O_NOFOLLOW });
    } catch (err) {
      if (!NOT_THERE.has(codeOf(err))) throw fsError(err, this.#root);
      await this.#rootOk();
      throw new NotFoundError(`${key} is not in ${this.label}`, { hint: 'Restore from another tier' });
    }
    if (options.sha256 !== undefined && sha256Hex(bytes) !== options.sha256.toLowerCase()) {
      throw new IntegrityError(`${key} in ${this.label} does not match its recorded SHA-256`, {
        hint: 'Restore from another tier',
      });
    }
    return bytes;
  }

  async has(id: string): Promise<boolean> {
    const key = validKey(id);
    try {
      return (await lstat(join(this.#root, key))).isFile();
    } catch (err) {
      if (!NOT_THERE.has(codeOf(err))) throw fsError(err, this.#root);
      await this.#rootOk();
      return false;
    }
  }

  async delete(id: string): Promise<void> {
    const key = validKey(id);
    const path = join(this.#root, key);
    try {
      await unlink(path);
      await fsyncDir(dirname(path));
    } catch (err) {
      if (!NOT_THERE.has(codeOf(err))) throw fsError(err, this.#root);
      await this.#rootOk(); // already gone, or a folder (no object): nothing to delete
    }
  }

  /**
   * list yields the keys that start with `prefix` in key order (string order, as S3 lists): a folder `a` sorts as
   * `a/`, after `a-b` and `a.b`. Temp files, folders and names that are not keys are never yielded.
   */
  async *list(prefix: string): AsyncIterable<string> {
    validPrefix(prefix);
    const cut = prefix.lastIndexOf('/') + 1;
    await this.#rootOk();
    yield* this.#walk(prefix.slice(0, cut), prefix.slice(cut));
  }

  async *#walk(folderKey: string, start: string): AsyncGenerator<string> {
    const entries = await readdir(join(this.#root, folderKey), { withFileTypes: true }).catch((err: unknown) => {
      if (NOT_THERE.has(codeOf(err))) return [];
      throw fsError(err, this.#root);
    });
    const named = entries
      .filter((e) => e.name.startsWith(start) && OBJECT_KEY.test(e.name) && (e.isFile() || e.isDirectory()))
      .map((e) => ({ name: e.name, dir: e.isDirectory(), order: e.isDirectory() ? `${e.name}/` : e.name }))
      .sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
    for (const e of named) {
      if (e.dir) yield* this.#walk(`${folderKey}${e.name}/`, '');
      else yield `${folderKey}${e.name}`;
    }
  }

  /** check proves the root is a folder this process can write into, without writing. */
  async check(): Promise<void> {
    await this.#rootOk();
    try {
      await access(this.#root, constants.W_OK | constants.X_OK);
    } catch (err) {
      throw new ConfigError(`${this.label} is not writable by this process (${codeOf(err)})`, {
        hint: `Make ${this.#root} owned and writable by uid ${process.getuid?.() ?? '?'} (chmod 700), or use another folder`,
        cause: err,
      });
    }
  }

  async close(): Promise<void> {}

  /** #rootOk throws ConfigError unless the root is an existing folder: without it "not found" would be a lie. */
  async #rootOk(): Promise<void> {
    const st = await stat(this.#root).catch((err: unknown) => {
      if (codeOf(err) === 'ENOENT') return null;
      throw fsError(err, this.#root);
    });
    if (st?.isDirectory()) return;
    throw new ConfigError(`${this.label} ${st ? 'is not a folder' : 'does not exist'}`, {
      hint: `Create it (mkdir -m 700 ${this.#root}) or mount the volume it lives on, or point the folder store elsewhere`,
    });
  }

  /** #tmpDir makes `.tmp/` (never the root) and removes temp files a crash left more than STALE_TMP_MS ago. */
  async #tmpDir(): Promise<void> {
    try {
      await mkdir(this.#tmp, { mode: 0o700 }).catch((err: unknown) => {
        if (codeOf(err) !== 'EEXIST') throw err;
      });
      const cutoff = Date.now() - STALE_TMP_MS;
      for (const name of await readdir(this.#tmp)) {
        const p = join(this.#tmp, name);
        const st = await lstat(p).catch(() => null); // a racing put may have removed it
        if (st && st.mtimeMs < cutoff) await rm(p, { recursive: true, force: true });
      }
    } catch (err) {
      if (NOT_THERE.has(codeOf(err))) await this.#rootOk();
      throw fsError(err, this.#root);
    }
  }

  /** #holds tells whether `key` already holds exactly `bytes`; other bytes (or a folder) there are ConflictError. */
  async #holds(key: string, bytes: Uint8Array): Promise<boolean> {
    const path = join(this.#root, key);
    const st = await lstat(path).catch((err: unknown) => {
      if (codeOf(err) === 'ENOENT' || codeOf(err) === 'ENOTDIR') return null;
      throw fsError(err, this.#root);
    });
    if (!st) return false;
    const conflict = (what: string) =>
      new ConflictError(`${this.label} already holds ${what} under ${key}; objects are never overwritten`, 'key');
    if (!st.isFile()) throw conflict(st.isDirectory() ? 'a folder of other objects' : 'something other than a file');
    if (st.size !== bytes.length || !(await readFile(path)).equals(bytes)) throw conflict('other bytes');
    return true;
  }

  /** #syncFolders fsyncs each folder from the key's own up to the root, so the object's name survives power loss. */
  async #syncFolders(key: string): Promise<void> {
    const segments = key.split('/').slice(0, -1);
    for (let n = segments.length; n >= 0; n--) await fsyncDir(join(this.#root, ...segments.slice(0, n)));
  }
}

const codeOf = (err: unknown): string => String((err as NodeJS.ErrnoException | undefined)?.code ?? '');
