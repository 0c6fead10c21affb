import { ConfigError, PawledgerError, UnavailableError } from '../errors.js';

/** FS_CONFIG_CODES are file-system errors that only a change to the machine (owner, mode, mount) can fix. */
const FS_CONFIG_CODES = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EISDIR', 'ELOOP', 'ENAMETOOLONG']);
/** FS_TRANSIENT_CODES are file-system errors that may pass (space freed, a busy file, a flaky mount). */
const FS_TRANSIENT_CODES = new Set(['ENOSPC', 'EDQUOT', 'EMFILE', 'ENFILE', 'EBUSY', 'EIO', 'EAGAIN']);

/**
 * fsError turns a Node file-system error met while working on `path` into a pawledger error that names the path and
 * says what to do: ConfigError for permissions and the like, UnavailableError for a full disk or an I/O error.
 * PawledgerErrors and anything else pass through unchanged.
 */
export function fsError(err: unknown, path: string): unknown {
  if (err instanceof PawledgerError) return err;
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : '';
  const where = e.path ?? path;
  if (FS_CONFIG_CODES.has(code)) {
    return new ConfigError(`cannot use ${where}: ${code} (${e.message})`, {
      hint: `Check that ${path} is a folder owned and writable by the user running pawledger (${process.getuid?.() ?? '?'}), or set LEDGER_DATA_DIR elsewhere`,
      cause: err,
    });
  }
  if (FS_TRANSIENT_CODES.has(code)) {
    return new UnavailableError(`cannot use ${where}: ${code} (${e.message})`, {
      hint:
        code === 'ENOSPC' || code === 'EDQUOT'
          ? `Free disk space on the file system of ${path}`
          : 'Retry; if it persists, check the disk and its mount',
      cause: err,
    });
  }
  return err;
}

/** isFsError tells an operating-system error (it has an errno code such as ENOENT) from a bug. */
export function isFsError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code);
}
