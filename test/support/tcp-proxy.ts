/**
 * A TCP proxy for outage tests: it pipes 127.0.0.1:<random port> to a target (PostgreSQL), and can cut the link the
 * way a network or a server failure does, then bring it back on the same port.
 */
import net from 'node:net';

/** CutMode is how a cut link treats new connections: 'refuse' closes the port (ECONNREFUSED), 'blackhole' accepts and never answers. */
export type CutMode = 'refuse' | 'blackhole';

/** TcpProxy is a running proxy; `port` stays the same across cut() and restore(). */
export interface TcpProxy {
  readonly port: number;
  /** connections counts the client connections accepted so far (piped or blackholed). */
  readonly connections: number;
  /** cut destroys every open connection and treats new ones by `mode`. */
  cut(mode?: CutMode): Promise<void>;
  /** restore pipes new connections to the target again (blackholed sockets are destroyed). */
  restore(): Promise<void>;
  close(): Promise<void>;
}

/** startTcpProxy listens on 127.0.0.1 (a free port) and forwards to targetHost:targetPort. */
export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let state: 'up' | CutMode = 'up';
  let connections = 0;
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  };
  const server = net.createServer((client) => {
    connections++;
    track(client);
    if (state !== 'up') return; // blackhole: accepted, never answered
    const upstream = net.connect(targetPort, targetHost);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  const stopListening = () => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
  const destroyAll = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  const port = await listen(0);
  return {
    port,
    get connections() {
      return connections;
    },
    async cut(mode: CutMode = 'refuse') {
      state = mode;
      destroyAll();
      if (mode === 'refuse') await stopListening();
    },
    async restore() {
      destroyAll();
      state = 'up';
      if (!server.listening) await listen(port);
    },
    async close() {
      state = 'refuse';
      destroyAll();
      await stopListening();
    },
  };
}
