import { chmod, lstat, rm, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Ledger } from '../service/ledger.js';
import { assembleServer, type AppOptions } from './app.js';
import { controlSocketPath, reachablePath } from './control-socket.js';
import { describeClient, requireLocalPeer } from './local-peer.js';
import { registerLocalRoutes } from './local-routes.js';

/** ControlChannel is a running server's control socket; close() stops it and removes the socket file. */
export interface ControlChannel {
  readonly path: string;
  close(): Promise<void>;
}

// The socket's 0600 is only as good as the folder around it: make the data folder this user's alone, as Ledger.open
// creates it. A folder owned by someone else cannot be made so, and gets no channel.
async function guardFolder(dir: string, uid: number, log: Logger): Promise<void> {
  const s = await stat(dir);
  if (s.uid !== uid)
    throw new ConfigError(`the data folder ${dir} is owned by uid ${s.uid}, not by this process's uid ${uid}`);
  if ((s.mode & 0o077) === 0) return;
  await chmod(dir, s.mode & 0o700);
  log.info(
    { dir, mode: (s.mode & 0o777).toString(8) },
    `Data folder ${dir} was open to other users (mode ${(s.mode & 0o777).toString(8)}): set to 0700 for the control socket`,
  );
}

// This process holds the ledger's LOCK, so a socket already there was left by a server that did not stop cleanly.
async function removeStale(path: string, log: Logger): Promise<void> {
  const s = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (!s) return;
  if (!s.isSocket())
    throw new ConfigError(`${path} exists and is not a socket; move it away to open the control channel`);
  await rm(path, { force: true });
  log.info({ path }, `Removed the control socket ${path} left by a server that did not stop cleanly`);
}

/**
 * openControlChannel serves the ledger's routes on `<dataDir>/control.sock` for commands run on this machine as this
 * user (the CLI beside a running server): the same routes and Ledger calls as the HTTP API, with access decided by
 * requireLocalPeer instead of the admin token, no rate limit, and the routes that name local files. Call it while
 * holding the ledger (its LOCK): a socket left by a killed server is replaced. Every change is logged with the pid
 * and user the client names. The socket is made 0600 in a data folder made 0700.
 */
export async function openControlChannel(
  ledger: Ledger,
  dataDir: string,
  options: AppOptions & { logger: Logger },
): Promise<ControlChannel> {
  if (!process.getuid) throw new ConfigError('the control channel needs Unix domain sockets and file owners (POSIX)');
  const uid = process.getuid();
  const dir = resolve(dataDir);
  const path = controlSocketPath(dir);
  await guardFolder(dir, uid, options.logger);
  await removeStale(path, options.logger);
  let ino: number | null = null;
  const app = assembleServer(
    ledger,
    { ...options, rateLimit: 0, trustProxy: 0 },
    {
      access: requireLocalPeer({ socketPath: path, uid, ino: () => ino }),
      fullSaves: true,
      routes: registerLocalRoutes,
    },
  );
  const change = (method: string) => method !== 'GET' && method !== 'HEAD';
  // Named on arrival too: if the server dies during a long restore, the log still says who started it.
  app.addHook('onRequest', async (request) => {
    if (request.controlClient && change(request.method))
      request.log.info(
        { client: request.controlClient, method: request.method, url: request.url },
        `Control channel: ${describeClient(request.controlClient)} asks ${request.method} ${request.url}`,
      );
  });
  app.addHook('onResponse', async (request, reply) => {
    if (request.controlClient && change(request.method))
      request.log.info(
        { client: request.controlClient, method: request.method, url: request.url, statusCode: reply.statusCode },
        `Control channel: ${request.method} ${request.url} by ${describeClient(request.controlClient)} answered ${reply.statusCode}`,
      );
  });
  const reachable = reachablePath(path);
  try {
    await app.listen({ path: reachable.path });
    await chmod(path, 0o600);
    ino = (await lstat(path)).ino;
  } catch (err) {
    await app.close().catch(() => {});
    reachable.release();
    throw err;
  }
  return {
    path,
    close: async () => {
      // Closing unlinks the socket by the path it was bound with, so the folder's descriptor stays open until then.
      await app.close();
      reachable.release();
      const left = await lstat(path).catch(() => null);
      if (left && left.ino === ino) await rm(path, { force: true });
    },
  };
}
