import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import {
  ConfigError,
  ConflictError,
  IntegrityError,
  LockedError,
  NotFoundError,
  type PawledgerError,
  UnavailableError,
  ValidationError,
} from '../errors.js';
import { CLIENT_PID_HEADER, CLIENT_USER_HEADER, reachablePath, SERVER_PID_HEADER } from '../server/control-socket.js';

/** ControlTarget is a running server found through the data folder: its socket and the pid holding the LOCK. */
export interface ControlTarget {
  dir: string;
  socketPath: string;
  pid: number;
  /** timeoutMs bounds the wait for an answer to a ping (LEDGER_CONTROL_TIMEOUT_MS). */
  timeoutMs: number;
}

/** ServerRequest is one change as a request to the server's routes; unwrap picks the result out of the reply. */
export interface ServerRequest<T> {
  method: 'GET' | 'POST' | 'PATCH';
  url: string;
  body?: unknown;
  unwrap?: (body: unknown) => T;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

class NoAnswer extends Error {}

function clientUser(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid-${process.getuid?.() ?? 'unknown'}`;
  }
}

// One request on its own connection. A timeout (null: none) or an abort ends it with NoAnswer; a refused or missing
// socket with the system error.
function send(
  socketPath: string,
  req: { method: string; url: string; body?: unknown },
  timeoutMs: number | null,
  signal?: AbortSignal,
): Promise<Reply> {
  const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
  return new Promise((resolve, reject) => {
    const r = httpRequest(
      {
        socketPath,
        path: req.url,
        method: req.method,
        agent: false,
        headers: {
          [CLIENT_PID_HEADER]: String(process.pid),
          [CLIENT_USER_HEADER]: clientUser(),
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
        ...(signal ? { signal } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    const timer = timeoutMs === null ? null : setTimeout(() => r.destroy(new NoAnswer()), timeoutMs);
    r.on('close', () => timer && clearTimeout(timer));
    r.on('error', (err) => reject(err instanceof NoAnswer || signal?.aborted ? new NoAnswer() : err));
    r.end(payload);
  });
}

// What /proc says the process is doing: 'T' stopped, 'D' waiting on the disk...; null where it cannot be read.
async function processState(pid: number): Promise<string | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  return stat ? (/\)\s+(\S)/.exec(stat)?.[1] ?? null) : null;
}

async function unresponsive(t: ControlTarget, during: string | null): Promise<PawledgerError> {
  const state = await processState(t.pid);
  const why =
    state === 'T' || state === 't'
      ? 'it is stopped (SIGSTOP, or a debugger)'
      : state === 'D'
        ? 'it is waiting on the disk'
        : 'it may be overloaded or hung; its log may say why';
  const resume = state === 'T' || state === 't' ? `Resume it (kill -CONT ${t.pid}), or stop it` : 'Stop it';
  const what = during
    ? `stopped answering while it ran ${during}: whether that change was made is unknown until it answers again (check with \`pawledger status\` and \`pawledger backups list\`)`
    : `did not answer within ${t.timeoutMs} ms, so nothing was sent`;
  return new UnavailableError(`the server holding the ledger in ${t.dir} (process ${t.pid}) ${what}: ${why}`, {
    hint: `${resume} (kill ${t.pid}) and retry. The ledger stays locked by it meanwhile: do not remove ${t.dir}/LOCK`,
  });
}

// The server's error reply as the error the command would have raised running the ledger itself: same message, same
// exit code (2 for a bad input, 1 otherwise).
function errorOf(reply: Reply): PawledgerError {
  let e: { code?: string; message?: string; field?: string; hint?: string } = {};
  try {
    e = (JSON.parse(reply.body) as { error?: typeof e }).error ?? {};
  } catch {}
  const message = e.message ?? `the server answered ${reply.status}`;
  const hint = e.hint === undefined ? {} : { hint: e.hint };
  switch (e.code) {
    case 'VALIDATION':
    case 'BAD_REQUEST':
    case 'PAYLOAD_TOO_LARGE':
      return new ValidationError(message, e.field);
    case 'CONFLICT':
      return new ConflictError(message, e.field);
    case 'NOT_FOUND':
      return new NotFoundError(message, hint);
    case 'LOCKED':
      return new LockedError(message, hint);
    case 'INTEGRITY':
      return new IntegrityError(message, hint);
    case 'CONFIG':
      return new ConfigError(message, hint);
    case 'UNAVAILABLE':
      return new UnavailableError(message, hint);
    case 'FORBIDDEN':
      return new ConfigError(`the server refused the control channel: ${message}`, hint);
    default:
      return new UnavailableError(`the server failed the request (${reply.status}): ${message}`, {
        hint: "The server's log has the details",
      });
  }
}

/**
 * callServer sends one change to the server and returns its result, or throws the error it answered. It first pings
 * the server (GET /healthz, at most timeoutMs): a server that does not answer (stopped, hung) gets nothing, and the
 * error says so and what to do. While the change runs (a restore may take minutes) it pings every timeoutMs, and gives
 * up when the server is found stopped or misses three pings in a row: the wait is bounded, and the LOCK is never
 * touched. A socket answered by another process than the LOCK's holder is refused.
 */
export async function callServer<T>(t: ControlTarget, req: ServerRequest<T>): Promise<T> {
  const reachable = reachablePath(t.socketPath);
  try {
    const ping = (signal?: AbortSignal) =>
      send(reachable.path, { method: 'GET', url: '/healthz' }, t.timeoutMs, signal);
    const first = await ping().catch(async (err: NodeJS.ErrnoException) => {
      if (err instanceof NoAnswer) throw await unresponsive(t, null);
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT')
        throw new LockedError(
          `the ledger in ${t.dir} is in use by process ${t.pid}, which does not answer on its control socket (${err.code}): it is another pawledger command, or a server still starting`,
          { hint: 'Wait for it and retry, or stop that process' },
        );
      throw err;
    });
    const answeredBy = Number(first.headers[SERVER_PID_HEADER]);
    if (answeredBy !== t.pid)
      throw new ConfigError(
        `${t.socketPath} is answered by process ${Number.isInteger(answeredBy) ? answeredBy : 'unknown'}, but process ${t.pid} holds the ledger`,
        { hint: 'Stop the server and start it again, so that it makes its socket anew' },
      );
    const what = `${req.method} ${req.url}`;
    return await withHeartbeat(t, ping, what, async (signal) => {
      const reply = await send(reachable.path, req, null, signal).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ECONNRESET') throw err;
        throw new UnavailableError(
          `the server holding the ledger in ${t.dir} (process ${t.pid}) closed the connection while it ran ${what}: whether that change was made is unknown`,
          { hint: 'Check its log, `pawledger status` and `pawledger backups list` before retrying' },
        );
      });
      if (reply.status >= 400) throw errorOf(reply);
      const body: unknown = JSON.parse(reply.body);
      return req.unwrap ? req.unwrap(body) : (body as T);
    });
  } finally {
    reachable.release();
  }
}

// Runs fn while pinging the server every timeoutMs; aborts fn (and throws why) once the server is unresponsive: found
// stopped, or three pings in a row unanswered (a busy server answers pings between the steps of a long change).
async function withHeartbeat<T>(
  t: ControlTarget,
  ping: (signal: AbortSignal) => Promise<Reply>,
  what: string,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const abort = new AbortController();
  let missed = 0;
  let failure: PawledgerError | null = null;
  let timer: NodeJS.Timeout | null = null;
  const beat = () => {
    timer = setTimeout(async () => {
      const ok = await ping(abort.signal).then(
        () => true,
        () => false,
      );
      if (abort.signal.aborted) return;
      missed = ok ? 0 : missed + 1;
      const state = ok ? null : await processState(t.pid);
      if (missed >= 3 || state === 'T' || state === 't') {
        failure = await unresponsive(t, what);
        abort.abort();
      } else beat();
    }, t.timeoutMs);
  };
  beat();
  try {
    return await fn(abort.signal);
  } catch (err) {
    throw failure ?? err;
  } finally {
    if (timer) clearTimeout(timer);
    if (!abort.signal.aborted) abort.abort();
  }
}
