import { readFile, lstat, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { apiError } from './errors.js';
import { CLIENT_PID_HEADER, CLIENT_USER_HEADER, SERVER_PID_HEADER, socketProblem } from './control-socket.js';

/** ControlClient is who asked over the control channel, as the CLI names itself (its pid and user). */
export interface ControlClient {
  pid: number | null;
  user: string | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** controlClient is set on requests that came over the control channel. */
    controlClient?: ControlClient;
  }
}

/** describeClient renders a ControlClient for a log line: "alice (pid 4242)". */
export function describeClient(c: ControlClient): string {
  return `${c.user ?? 'an unnamed user'} (pid ${c.pid ?? 'not given'})`;
}

// Header values are the client's words: keep them short and plain before they reach a log line.
function clientOf(request: FastifyRequest): ControlClient {
  const pid = String(request.headers[CLIENT_PID_HEADER] ?? '');
  const user = String(request.headers[CLIENT_USER_HEADER] ?? '').replace(/[^\w.@+-]/g, '');
  return { pid: /^\d{1,10}$/.test(pid) ? Number(pid) : null, user: user ? user.slice(0, 64) : null };
}

// The effective uid a process runs as, from /proc (Linux); null where that cannot be read.
async function processUid(pid: number): Promise<number | null> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => null);
  const m = status ? /^Uid:\s+\d+\s+(\d+)/m.exec(status) : null;
  return m ? Number(m[1]) : null;
}

function refuse(request: FastifyRequest, reply: FastifyReply, message: string): FastifyReply {
  request.log.warn({ method: request.method, url: request.url }, `Control channel refused a request: ${message}`);
  return reply.code(403).send(apiError('FORBIDDEN', message));
}

/**
 * requireLocalPeer returns the control channel's access hook: the peer is this same OS user. Node cannot read a
 * Unix socket peer's credentials (SO_PEERCRED), so the guarantee is the kernel's: only the socket's owner (and root)
 * may connect to a socket of mode 0600 in a folder of mode 0700. The hook refuses, with 403, a request that did not
 * come in on a Unix socket (the channel accepts only local connections), every request while the socket or its
 * folder no longer meet those modes (someone loosened or replaced them: the kernel no longer decides), and a client
 * that names a process of another user (the log must not blame someone else). Everything else is the operator: it
 * may call every route, `local` ones included, and is named in the log by the pid and user it sends.
 */
export function requireLocalPeer(options: {
  socketPath: string;
  uid: number;
  /** ino is the inode of the socket this server bound, null until it listens. */
  ino: () => number | null;
}): (request: FastifyRequest, reply: FastifyReply) => Promise<unknown> {
  const { socketPath, uid } = options;
  return async (request, reply) => {
    reply.header(SERVER_PID_HEADER, String(process.pid));
    // A Unix socket connection has no remote address; a TCP one (a misconfigured listen) does.
    if (request.socket.remoteAddress !== undefined)
      return refuse(request, reply, 'the control channel answers only on its Unix socket');
    const found = await Promise.all([lstat(socketPath), stat(dirname(socketPath))]).catch(() => null);
    const problem = !found
      ? `${socketPath} is gone`
      : found[0].ino !== options.ino()
        ? `${socketPath} is not the socket this server made`
        : socketProblem(socketPath, found[0], found[1], uid);
    if (problem)
      return refuse(
        request,
        reply,
        `the control socket no longer guards access (${problem}); restart pawledger serve to recreate it`,
      );
    const client = clientOf(request);
    const owner = client.pid === null ? null : await processUid(client.pid);
    if (owner !== null && owner !== uid)
      return refuse(request, reply, `process ${client.pid} runs as uid ${owner}, not as this server's uid ${uid}`);
    request.admin = true;
    request.controlClient = client;
    return undefined;
  };
}
