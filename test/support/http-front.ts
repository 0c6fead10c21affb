/**
 * An HTTP front for a stand-in (the Pinata API, say): it forwards every request to the target unchanged and counts
 * the request body bytes it passes on per path, so a test can measure what a client uploads. Set `down` and it answers
 * every request with 503 and Pinata's error body, as the service does during an outage, without reaching the target;
 * set `delayMs` and every answer comes that much later, as from a slow service.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** HttpFront is a running front; `bytesIn` and `requests` are keyed by path without the query string. */
export interface HttpFront {
  url: string;
  /** down makes every request answer 503 (read at each request, so tests flip it on the fly). */
  down: boolean;
  bytesIn: Record<string, number>;
  requests: Record<string, number>;
  /** refused counts the requests answered 503 while down. */
  refused: number;
  /** delayMs holds each upstream answer that long before passing it on (a slow service; read at each request). */
  delayMs: number;
  close(): Promise<void>;
}

/** startHttpFront listens on 127.0.0.1 (a free port) and forwards to `target` (an http://host:port URL). */
export async function startHttpFront(target: string): Promise<HttpFront> {
  const to = new URL(target);
  const front: HttpFront = {
    url: '',
    down: false,
    bytesIn: {},
    requests: {},
    refused: 0,
    delayMs: 0,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    front.requests[path] = (front.requests[path] ?? 0) + 1;
    if (front.down) {
      front.refused++;
      req.resume();
      req.on('end', () => {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            error: { reason: 'SERVICE_UNAVAILABLE', details: 'The service is temporarily unavailable' },
          }),
        );
      });
      return;
    }
    const upstream = http.request(
      {
        host: to.hostname,
        port: to.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: to.host },
      },
      (up) => {
        const pass = () => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        };
        if (front.delayMs > 0) setTimeout(pass, front.delayMs);
        else pass();
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.on('data', (chunk: Buffer) => {
      front.bytesIn[path] = (front.bytesIn[path] ?? 0) + chunk.length;
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  front.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return front;
}
