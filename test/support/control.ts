/**
 * Helpers for the control channel's tests: requests sent straight to a control socket (as a client that is not the
 * CLI would), the command run as another user, and outputs with their hashes, times and ids made comparable.
 */
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { BIN } from './serve-process.js';

/** NOBODY is the uid (and gid) the tests run the command as when they need another user. */
export const NOBODY = 65534;

/** rawRequest sends one HTTP request over a Unix socket and returns the status and parsed body. */
export function rawRequest(
  socketPath: string,
  method: string,
  url: string,
  options: { headers?: Record<string, string>; body?: unknown } = {},
): Promise<{ status: number; body: { error?: { code: string; message: string } } & Record<string, unknown> }> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const r = request(
      {
        socketPath,
        method,
        path: url,
        headers: { ...(payload ? { 'content-type': 'application/json' } : {}), ...options.headers },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }));
      },
    );
    r.on('error', reject);
    r.end(payload);
  });
}

/** runAs runs `node args...` as the user `uid` (setpriv; the tests run as root), with `env` only. */
export function runAs(
  uid: number,
  cwd: string,
  env: Record<string, string>,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'setpriv',
      [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, ...args],
      { cwd, env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

/** runCliAs runs the built `pawledger` as the user `uid`. */
export function runCliAs(uid: number, cwd: string, env: Record<string, string>, args: string[]) {
  return runAs(uid, cwd, env, [BIN, ...args]);
}

/**
 * comparable replaces what differs between two ledgers that went through the same steps at other moments: hashes,
 * times, and the data folder's and database's names.
 */
export function comparable(text: string, names: Record<string, string> = {}): string {
  let out = text;
  for (const [name, placeholder] of Object.entries(names)) out = out.split(name).join(placeholder);
  return out
    .replace(/\b[0-9a-f]{64}\b/g, '<hash>')
    .replace(/\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+Z?)?/g, '<time>')
    .replace(/ +$/gm, '');
}
