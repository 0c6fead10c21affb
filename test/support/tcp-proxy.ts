/**
 * A TCP proxy for outage tests: it pipes 127.0.0.1:<random port> to a target (PostgreSQL), and can cut the link the
 * way a network or a server failure does, then bring it back on the same port. It can also hold back the server's
 * bytes on one connection, so that a server-side event (a terminated backend) reaches the client at a chosen moment.
 */
import net from 'node:net';

/** CutMode is how a cut link treats new connections: 'refuse' closes the port (ECONNREFUSED), 'blackhole' accepts and never answers. */
export type CutMode = 'refuse' | 'blackhole';

/** Held is a server reply held back on one connection; release() sends it, and all the server sent since, in one write. */
export interface Held {
  /** bytes is how much the server has sent on this connection since the hold began (the held reply included). */
  readonly bytes: number;
  /** serverClosed is true once the server closed this connection. */
  readonly serverClosed: boolean;
  release(): void;
}

/** TcpProxy is a running proxy; `port` stays the same across cut() and restore(). */
export interface TcpProxy {
  readonly port: number;
  /** cut destroys every open connection and treats new ones by `mode`. */
  cut(mode?: CutMode): Promise<void>;
  /**
   * hang stops forwarding on every open connection, both ways, without closing it, and accepts new connections
   * without ever answering them: a network partition or a server that stopped answering, as the client sees it.
   */
  hang(): void;
  /** restore pipes new connections to the target again (blackholed and hung sockets are destroyed). */
  restore(): Promise<void>;
  /**
   * holdInTransaction holds the next server reply that ends with the connection inside a transaction (a PostgreSQL
   * ReadyForQuery with status 'T', as after BEGIN), and everything after it on that connection, until release().
   */
  holdInTransaction(): Promise<Held>;
  close(): Promise<void>;
}

// ReadyForQuery, status 'T' (idle in transaction): 'Z', int32 length 5, 'T'.
const READY_IN_TRANSACTION = Buffer.from([0x5a, 0, 0, 0, 5, 0x54]);

/** startTcpProxy listens on 127.0.0.1 (a free port) and forwards to targetHost:targetPort. */
export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let state: 'up' | CutMode = 'up';
  // While hung, bytes in either direction are dropped on the floor: open sockets stay open and silent.
  let hung = false;
  let armed: ((held: Held) => void) | null = null;
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  };
  const server = net.createServer((client) => {
    track(client);
    if (state !== 'up') return; // blackhole: accepted, never answered
    const upstream = net.connect(targetPort, targetHost);
    track(upstream);
    client.on('data', (chunk: Buffer) => {
      if (!hung) upstream.write(chunk);
    });
    let held: Buffer[] | null = null;
    let serverClosed = false;
    upstream.on('data', (chunk: Buffer) => {
      if (hung) return;
      if (held) {
        held.push(chunk);
      } else if (armed && chunk.includes(READY_IN_TRANSACTION)) {
        const resolve = armed;
        armed = null;
        held = [chunk];
        const buffers = held;
        resolve({
          get bytes() {
            return buffers.reduce((n, b) => n + b.length, 0);
          },
          get serverClosed() {
            return serverClosed;
          },
          release() {
            held = null;
            if (client.destroyed) return;
            client.write(Buffer.concat(buffers));
            if (serverClosed) client.end();
          },
        });
      } else {
        client.write(chunk);
      }
    });
    client.on('end', () => upstream.end());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => {
      serverClosed = true;
      if (held === null) client.end();
    });
  });
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  const stopListening = () =>
    new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
  const destroyAll = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  const port = await listen(0);
  return {
    port,
    async cut(mode: CutMode = 'refuse') {
      hung = false;
      state = mode;
      destroyAll();
      if (mode === 'refuse') await stopListening();
    },
    hang() {
      hung = true;
      state = 'blackhole';
    },
    async restore() {
      destroyAll();
      hung = false;
      state = 'up';
      if (!server.listening) await listen(port);
    },
    holdInTransaction() {
      return new Promise<Held>((resolve) => {
        armed = resolve;
      });
    },
    async close() {
      state = 'refuse';
      armed = null;
      destroyAll();
      await stopListening();
    },
  };
}
