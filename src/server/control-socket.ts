/**
 * The control channel's socket file and the rules it must meet, shared by the server that creates it and the CLI
 * that connects to it: `<dataDir>/control.sock`, a Unix domain socket of mode 0600 owned by the server's user, in a
 * data folder of mode 0700 owned by the same user. Those modes are the access decision (the kernel lets only that
 * user, and root, connect), so both sides refuse a socket or folder that no longer meets them.
 */
import { closeSync, openSync, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** CONTROL_SOCKET is the control socket's file name in the data folder. */
export const CONTROL_SOCKET = 'control.sock';

/** CLIENT_PID_HEADER and CLIENT_USER_HEADER carry the CLI's pid and user name, for the server's log of who asked. */
export const CLIENT_PID_HEADER = 'pawledger-client-pid';
export const CLIENT_USER_HEADER = 'pawledger-client-user';

/** SERVER_PID_HEADER names the process that answered, so that the CLI can check it is the one holding the LOCK. */
export const SERVER_PID_HEADER = 'pawledger-server-pid';

/** controlSocketPath is where the control socket of the ledger in `dataDir` (an absolute folder) lives. */
export function controlSocketPath(dataDir: string): string {
  return join(dataDir, CONTROL_SOCKET);
}

const octal = (mode: number) => (mode & 0o777).toString(8).padStart(4, '0');

/**
 * socketProblem checks the control socket and its folder against the channel's rules for the user `uid`: the
 * socket is a socket of mode 0600 owned by uid, and the folder is owned by uid with no access for group or others.
 * It returns what is wrong, in words, or null.
 */
export function socketProblem(path: string, socket: Stats, folder: Stats, uid: number): string | null {
  if (!socket.isSocket()) return `${path} is not a socket`;
  if (socket.uid !== uid) return `${path} is owned by uid ${socket.uid}, not by uid ${uid}`;
  if ((socket.mode & 0o777) !== 0o600) return `${path} has mode ${octal(socket.mode)}, not 0600`;
  const dir = dirname(path);
  if (folder.uid !== uid) return `the folder ${dir} is owned by uid ${folder.uid}, not by uid ${uid}`;
  if ((folder.mode & 0o077) !== 0) return `the folder ${dir} has mode ${octal(folder.mode)}, not 0700`;
  return null;
}

// sun_path holds 108 bytes with the terminating NUL.
const MAX_SOCKET_PATH = 107;

/** ReachablePath is a path by which a socket can be bound or connected to, held until release(). */
export interface ReachablePath {
  path: string;
  release(): void;
}

/**
 * reachablePath gives a path by which `path` can be bound or connected to. A socket path longer than the kernel's
 * limit (107 bytes) is reached through its folder's descriptor (`/proc/self/fd/N/control.sock`, Linux), open until
 * release(): a deep data folder must not leave the server without its channel. A server releases it only after
 * closing, because closing unlinks the socket by the path it was bound with.
 */
export function reachablePath(path: string): ReachablePath {
  if (Buffer.byteLength(path) <= MAX_SOCKET_PATH || process.platform !== 'linux') return { path, release: () => {} };
  const fd = openSync(dirname(path), 'r');
  return { path: `/proc/self/fd/${fd}/${basename(path)}`, release: () => closeSync(fd) };
}
