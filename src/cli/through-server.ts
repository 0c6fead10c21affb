import type { Stats } from 'node:fs';
import { lstat, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigError, LockedError } from '../errors.js';
import { controlSocketPath, socketProblem } from '../server/control-socket.js';
import type { Ledger } from '../service/ledger.js';
import { lockHolder } from '../store/lock.js';
import { withLedger, type CliContext } from './context.js';
import { callServer, type ControlTarget, type ServerRequest } from './control-client.js';

function refused(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EACCES' || code === 'EPERM';
}

/**
 * runningServer finds the server that holds the ledger of ctx's data folder and answers on its control socket, or
 * returns null when no live process holds the ledger (a socket left by a killed server is then ignored: the next
 * serve replaces it). It refuses, with a message saying why and what to do, a socket or folder this user may not use
 * or that does not meet the channel's rules (owned by another user, modes looser than 0600 and 0700), and a ledger
 * held by a process that offers no channel (another command, or a server still starting): it never takes the ledger
 * from a live holder.
 */
export async function runningServer(ctx: CliContext): Promise<ControlTarget | null> {
  const uid = process.getuid?.();
  if (uid === undefined) return null;
  const dir = resolve(ctx.config.dataDir);
  const path = controlSocketPath(dir);
  let socket: Stats | null = null;
  try {
    socket = await lstat(path);
  } catch (err) {
    if (refused(err)) {
      const owner = await stat(dir).then(
        (s) => `uid ${s.uid}`,
        () => 'another user',
      );
      throw new ConfigError(
        `you (uid ${uid}) may not reach the ledger in ${dir}: it belongs to ${owner}, and its server's control channel answers only that user`,
        { hint: 'Run the command as the user the server runs as (e.g. `runuser -u <user> -- pawledger ...`)' },
      );
    }
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ENOTDIR')
      throw err;
  }
  if (socket) {
    const problem = socketProblem(path, socket, await stat(dir), uid);
    if (problem)
      throw new ConfigError(`refusing the control socket of the ledger in ${dir}: ${problem}`, {
        hint:
          socket.uid !== uid
            ? 'Run the command as the user the server runs as'
            : 'Someone changed it: restart pawledger serve to make it anew (0600, in a 0700 folder), and check who else can reach the data folder',
      });
  }
  const holder = await lockHolder(dir);
  if (!holder) return null;
  if (!socket)
    throw new LockedError(
      `the ledger in ${dir} is in use by process ${holder.pid}, which offers no control channel (no ${path}): it is another pawledger command, or a server still starting or without the channel`,
      {
        hint: 'Wait for it and retry, or stop that process; a server without the channel takes changes through its HTTP API',
      },
    );
  return { dir, socketPath: path, pid: holder.pid, timeoutMs: ctx.config.controlTimeoutMs };
}

/**
 * changeLedger makes one change to the ledger: through the running server when one holds it (`request`, sent over
 * the control channel to the same route the HTTP API has), else on the ledger this process opens and locks (`local`,
 * on `open()`'s ledger, by default the plain one). Either way the result is the same, so the command prints it the
 * same. A command that changes the ledger calls it once.
 */
export function changeLedger<T>(
  ctx: CliContext,
  request: ServerRequest<T>,
  local: (ledger: Ledger) => Promise<T>,
  open?: () => Promise<Ledger>,
): Promise<T> {
  return throughServerOr(ctx, request, () => withLedger(open ? { ...ctx, openLedger: open } : ctx, false, local));
}

/** throughServerOr is changeLedger for a change that, without a server, needs no ledger (only a tier, say). */
export async function throughServerOr<T>(
  ctx: CliContext,
  request: ServerRequest<T>,
  otherwise: () => Promise<T>,
): Promise<T> {
  const server = await runningServer(ctx);
  return server ? callServer(server, request) : otherwise();
}
