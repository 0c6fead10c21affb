/**
 * S3 for the tests: s3rver (a real server speaking the S3 protocol over a folder) on 127.0.0.1, and a fault proxy in
 * front of it that the test controls, for what s3rver cannot do: answer bursts of 503 SlowDown, a 403 for a revoked or
 * wrong key (s3rver checks only the access key id of a SigV4 request, never its signature), or a 501 to a header.
 * Faults are answered in S3's own XML error format, with no body to a HEAD, as S3 does.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** S3RVER_CREDENTIALS are the one key pair s3rver knows; any other access key id is 403 InvalidAccessKeyId. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** S3rverProcess is a running s3rver: its URL, the folder it keeps buckets in, and how to stop it. */
export interface S3rverProcess {
  endpoint: string;
  dir: string;
  /** tamper flips one byte of the stored object `bucket`/`name` behind the server's back (a bad disk). */
  tamper(bucket: string, name: string): Promise<void>;
  stop(): Promise<void>;
}

const MAIN = fileURLToPath(new URL('./s3rver-main.mjs', import.meta.url));

/** startS3rver runs s3rver on a free 127.0.0.1 port over a new temp folder, with `buckets` created. */
export async function startS3rver(buckets: string[]): Promise<S3rverProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'pl-s3rver-'));
  const child = spawn(process.execPath, ['--openssl-legacy-provider', MAIN, dir, ...buckets], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let said = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`s3rver did not start:\n${said}`)), 20_000);
    const onData = (chunk: Buffer) => {
      said += chunk.toString('utf8');
      const m = /\{"port":(\d+)\}/.exec(said);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(() => reject(new Error(`s3rver exited before listening:\n${said}`)));
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    dir,
    tamper: async (bucket, name) => {
      // s3rver's file store keeps `a/b/c` as <dir>/<bucket>/a/b/c._S3rver_object.
      const parts = name.split('/');
      const file = join(dir, bucket, ...parts.slice(0, -1), `${parts.at(-1)}._S3rver_object`);
      const bytes = await readFile(file);
      bytes[bytes.length >> 1]! ^= 0x01;
      await writeFile(file, bytes);
    },
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** S3Fault is an error answer in S3's format. */
export interface S3Fault {
  status: number;
  code: string;
  message: string;
  /** retryAfterS adds a Retry-After header (seconds). */
  retryAfterS?: number;
}

/** SLOW_DOWN is S3's throttle: 503 SlowDown. */
export const SLOW_DOWN: S3Fault = { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' };
/** BAD_SIGNATURE is S3's answer to a wrong secret key. */
export const BAD_SIGNATURE: S3Fault = {
  status: 403,
  code: 'SignatureDoesNotMatch',
  message:
    'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
};

/** S3FaultProxy forwards to s3rver unless told to fail; it counts what it passed and what it answered itself. */
export interface S3FaultProxy {
  url: string;
  /** failNext answers the next `count` requests that `match` (all by default) with `fault`, forwarding the rest. */
  failNext(count: number, fault?: S3Fault, match?: (req: IncomingMessage) => boolean): void;
  /** cutNext passes on the next `count` GET answers cut after half their body, the connection then broken. */
  cutNext(count: number): void;
  /** always, while set, answers every request with it (a revoked key, an outage). */
  always: S3Fault | null;
  /** requests counts every request seen; faulted those answered with a fault. */
  requests: number;
  faulted: number;
  /** seen records each request as `METHOD path` (with `If-None-Match` when sent), for tests of what a client asks. */
  seen: string[];
  close(): Promise<void>;
}

function answer(req: IncomingMessage, res: http.ServerResponse, fault: S3Fault): void {
  const id = randomBytes(8).toString('hex').toUpperCase();
  const body =
    req.method === 'HEAD'
      ? ''
      : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${fault.code}</Code><Message>${fault.message}</Message>` +
        `<RequestId>${id}</RequestId><HostId>pawledger-test</HostId></Error>`;
  req.resume();
  req.on('end', () => {
    res.writeHead(fault.status, {
      'content-type': 'application/xml',
      'x-amz-request-id': id,
      ...(fault.retryAfterS !== undefined ? { 'retry-after': String(fault.retryAfterS) } : {}),
      ...(req.method === 'HEAD' ? {} : { 'content-length': Buffer.byteLength(body) }),
    });
    res.end(body);
  });
}

/** startS3FaultProxy listens on a free 127.0.0.1 port and forwards to `target` (s3rver's URL). */
export async function startS3FaultProxy(target: string): Promise<S3FaultProxy> {
  const to = new URL(target);
  const pending: Array<{ left: number; fault: S3Fault; match: (req: IncomingMessage) => boolean }> = [];
  let cuts = 0;
  const proxy: S3FaultProxy = {
    url: '',
    always: null,
    requests: 0,
    faulted: 0,
    seen: [],
    failNext(count, fault = SLOW_DOWN, match = () => true) {
      pending.push({ left: count, fault, match });
    },
    cutNext(count) {
      cuts += count;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    proxy.requests++;
    const inm = req.headers['if-none-match'];
    proxy.seen.push(`${req.method} ${(req.url ?? '').split('?')[0]}${inm ? ` If-None-Match: ${inm}` : ''}`);
    const armed = pending.find((p) => p.left > 0 && p.match(req));
    const fault = proxy.always ?? (armed ? armed.fault : null);
    if (fault) {
      if (armed && !proxy.always) armed.left--;
      proxy.faulted++;
      answer(req, res, fault);
      return;
    }
    const upstream = http.request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        const length = Number(up.headers['content-length'] ?? 0);
        if (!(req.method === 'GET' && up.statusCode === 200 && length > 1 && cuts > 0)) {
          up.pipe(res);
          return;
        }
        cuts--;
        proxy.faulted++;
        const body: Buffer[] = [];
        up.on('data', (c: Buffer) => body.push(c));
        up.on('end', () => res.write(Buffer.concat(body).subarray(0, length >> 1), () => res.destroy()));
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
