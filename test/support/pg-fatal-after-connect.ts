/**
 * Child-process fixture for test/durability/campaign-known-bugs.test.ts (KNOWN BUG 3). Run as
 *   node --import tsx test/support/pg-fatal-after-connect.ts query|transaction
 * It puts a proxy in front of the local PostgreSQL that lets each connection's startup through, then appends to the
 * server's first ReadyForQuery, in the same write, the FATAL 57P01 message PostgreSQL sends when pg_terminate_backend
 * (or a shutdown) ends a backend, and closes the link: a backend terminated just after it authenticated. Then it runs
 * one statement on pawledger's SqlClient (src/db/postgres.ts), by `query` or in a `transaction`, and prints
 * `resolved` or `rejected: <message>`. A crash (an unhandled 'error' event) shows as a non-zero exit instead.
 */
import net from 'node:net';
import { connectPostgres } from '../../src/db/postgres.js';
import { PG_PORT } from './pg.js';

const how = process.argv[2];
if (how !== 'query' && how !== 'transaction') {
  process.stderr.write('usage: pg-fatal-after-connect.ts query|transaction\n');
  process.exit(2);
}

// ReadyForQuery, idle: 'Z', int32 length 5, 'I'.
const READY_IDLE = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);
const fields = Buffer.from('SFATAL\0VFATAL\0C57P01\0Mterminating connection due to administrator command\0\0');
const FATAL = Buffer.concat([Buffer.from('E'), Buffer.alloc(4), fields]);
FATAL.writeUInt32BE(fields.length + 4, 1);

const proxy = net.createServer((client) => {
  const upstream = net.connect(PG_PORT, '127.0.0.1');
  client.pipe(upstream);
  let started = false;
  upstream.on('data', (chunk: Buffer) => {
    if (!started && chunk.includes(READY_IDLE)) {
      started = true;
      client.end(Buffer.concat([chunk, FATAL]));
      upstream.destroy();
    } else client.write(chunk);
  });
  for (const s of [client, upstream]) s.on('error', () => {});
  client.on('close', () => upstream.destroy());
});
await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', () => resolve()));
const { port } = proxy.address() as net.AddressInfo;
const sql = connectPostgres(`postgresql://postgres@127.0.0.1:${port}/postgres`, { timeoutMs: 5000 });
try {
  if (how === 'query') await sql.query('SELECT 1');
  else await sql.transaction((tx) => tx.query('SELECT 1'));
  process.stdout.write('resolved\n');
} catch (err) {
  process.stdout.write(`rejected: ${(err as Error).message}\n`);
}
await sql.close().catch(() => {});
proxy.close();
