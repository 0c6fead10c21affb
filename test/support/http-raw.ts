/**
 * Helpers for tests of the HTTP layer as a hostile client sees it: the routes a server really has (from the router,
 * through an onRoute hook, never a hand-written list), and raw HTTP/1.1 over a TCP socket, for what inject and fetch
 * normalize away (absolute-form targets, odd spellings) or cannot do at all (stall half-way through a body).
 */
import net from 'node:net';
import type { FastifyInstance } from 'fastify';

/** RouteInfo is one route the router has: a single method, the route's path pattern (":id" for parameters), its schemas. */
export interface RouteInfo {
  method: string;
  url: string;
  /** schema is the route's JSON schemas (body, querystring, params), as declared. */
  schema?: { body?: unknown; querystring?: unknown; params?: unknown };
}

/**
 * collectRoutes records every route added to `app` from now on (call it right after buildServer, before ready: the
 * server registers its routes in a plugin that loads at ready). The list fills in once `app.ready()` resolves.
 */
export function collectRoutes(app: FastifyInstance): RouteInfo[] {
  const routes: RouteInfo[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat())
      routes.push({ method, url: r.url, ...(r.schema ? { schema: r.schema as RouteInfo['schema'] } : {}) });
  });
  return routes;
}

/** RawResponse is what came back on a raw socket: the status (0 when none), headers, body, and when the server closed. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** closedAfterMs is how long after the first write the server closed the connection, or null if it did not in time. */
  closedAfterMs: number | null;
}

/**
 * rawRequest writes `text` (a whole request, or the start of one) to 127.0.0.1:`port` and collects everything the
 * server sends until it closes the connection or `waitMs` passes. It never sends more than `text`.
 */
export function rawRequest(port: number, text: string | Buffer, waitMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let started = 0;
    const finish = (closedAfterMs: number | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(parseResponse(Buffer.concat(chunks).toString('latin1'), closedAfterMs));
    };
    const timer = setTimeout(() => finish(null), waitMs);
    socket.on('connect', () => {
      started = performance.now();
      socket.write(text);
    });
    socket.on('data', (c) => chunks.push(c));
    socket.on('close', () => finish(performance.now() - started));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // The server may reset a connection it gave up on; that is a close, not a test failure.
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return;
      clearTimeout(timer);
      reject(err);
    });
  });
}

function parseResponse(raw: string, closedAfterMs: number | null): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  const head = end === -1 ? raw : raw.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = end === -1 ? '' : raw.slice(end + 4);
  if (headers['transfer-encoding'] === 'chunked') body = unchunk(body);
  return { status, headers, body: Buffer.from(body, 'latin1').toString('utf8'), closedAfterMs };
}

function unchunk(text: string): string {
  let out = '';
  let rest = text;
  for (;;) {
    const nl = rest.indexOf('\r\n');
    if (nl === -1) return out;
    const size = parseInt(rest.slice(0, nl), 16);
    if (!(size > 0)) return out;
    out += rest.slice(nl + 2, nl + 2 + size);
    rest = rest.slice(nl + 2 + size + 2);
  }
}

/** requestText builds one HTTP/1.1 request that asks the server to close the connection after answering. */
export function requestText(
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body?: string,
): string {
  const all: Record<string, string> = { host: '127.0.0.1', connection: 'close', ...headers };
  if (body !== undefined) all['content-length'] = String(Buffer.byteLength(body));
  const lines = Object.entries(all).map(([k, v]) => `${k}: ${v}`);
  return `${method} ${target} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n${body ?? ''}`;
}
