/**
 * A Kubo RPC stand-in (docs: /work/shared/EXTERNAL-APIS.md, "Kubo RPC"). It listens on 127.0.0.1 (a free port) and
 * keeps real UnixFS DAGs in a memory blockstore, built by ipfs-unixfs-importer from the flags the client sends, so
 * the CIDs it returns are the ones a real node would. It speaks the RPC's wire format: every call is POST (405 on
 * GET), `/add` answers newline-delimited JSON, errors are 500 `{"Message","Code","Type":"error"}` (400 with Code 1
 * for a missing argument), and `/cat` of a CID it lacks hangs, as a node searching the network does, unless the
 * client sent `offline=true`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as dagPb from '@ipld/dag-pb';
import { CarWriter } from '@ipld/car/writer';
import { MemoryBlockstore } from 'blockstore-core/memory';
import { exporter } from 'ipfs-unixfs-exporter';
import { importFile } from 'ipfs-unixfs-importer';
import { fixedSize } from 'ipfs-unixfs-importer/chunker';
import { balanced } from 'ipfs-unixfs-importer/layout';
import { CID } from 'multiformats/cid';

/** KuboRequest is one request the stand-in received; `path` is relative to /api/v0 (e.g. `/add`). */
export interface KuboRequest {
  method: string;
  path: string;
  query: Record<string, string>;
}

/** KuboStandin is a running stand-in. */
export interface KuboStandin {
  /** url is the RPC base, `http://127.0.0.1:<port>/api/v0`. */
  readonly url: string;
  /** pins holds the recursively pinned roots (CIDv1 base32, as Kubo prints them). */
  readonly pins: Set<string>;
  /** blocks is the node's blockstore; tests may damage a block in it, as a failing disk would. */
  readonly blocks: MemoryBlockstore;
  /** requests lists what was asked, oldest first. */
  readonly requests: KuboRequest[];
  /** alterCat, while true, makes `/cat` answer with one byte flipped (a lying node). */
  alterCat: boolean;
  /**
   * failNext makes the next `count` requests fail: with `status` and Kubo's error body (405 gets Kubo's plain text),
   * or, for 'reset', by destroying the connection before any answer.
   */
  failNext(status: number | 'reset', count?: number): void;
  close(): Promise<void>;
}

const MAX_LINKS = 174; // Kubo's default for balanced file DAGs

/** startKuboStandin starts a stand-in on 127.0.0.1 and a free port. */
export async function startKuboStandin(options: { alterCat?: boolean } = {}): Promise<KuboStandin> {
  const blocks = new MemoryBlockstore();
  const pins = new Set<string>();
  const requests: KuboRequest[] = [];
  const failures: Array<number | 'reset'> = [];

  const state: KuboStandin = {
    url: '',
    pins,
    blocks,
    requests,
    alterCat: options.alterCat ?? false,
    failNext(status, count = 1) {
      for (let i = 0; i < count; i++) failures.push(status);
    },
    close: async () => {},
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname.replace(/^\/api\/v0/, '');
    requests.push({ method: req.method ?? '', path, query: Object.fromEntries(url.searchParams) });
    const body = await readBody(req);

    const failure = failures.shift();
    if (failure === 'reset') {
      req.socket.destroy();
      return;
    }
    if (failure === 405 || req.method !== 'POST') return text(res, 405, '405 - Method Not Allowed');
    if (failure !== undefined) return kuboError(res, 'stand-in failure', 0, failure);
    if (!url.pathname.startsWith('/api/v0/')) return text(res, 404, '404 page not found');

    const q = url.searchParams;
    switch (path) {
      case '/version':
        return json(res, {
          Version: '0.36.0',
          Commit: 'standin',
          Repo: '16',
          System: 'amd64/linux',
          Golang: 'go1.24.4',
        });
      case '/id':
        return json(res, {
          ID: '12D3KooWStandin',
          PublicKey: '',
          Addresses: [],
          AgentVersion: 'kubo/0.36.0/standin',
          Protocols: [],
        });
      case '/add':
        return add(req, res, body, q);
      case '/cat':
      case '/block/get':
      case '/dag/export':
      case '/pin/rm':
      case '/pin/ls': {
        const arg = q.get('arg');
        if (!arg) return kuboError(res, 'argument "ipfs-path" is required', 1, 400);
        let cid: CID;
        try {
          cid = CID.parse(arg.replace(/^\/ipfs\//, ''));
        } catch (err) {
          return kuboError(res, `invalid path ${JSON.stringify(arg)}: ${(err as Error).message}`, 0);
        }
        if (path === '/pin/rm') return pinRm(res, cid);
        if (path === '/pin/ls') return pinLs(res, cid);
        if (!(await blocks.has(cid))) {
          if (q.get('offline') === 'true')
            return kuboError(res, `block was not found locally (offline): ipld: could not find ${cid}`, 0);
          return; // a node online keeps searching the network; the client's timeout ends this
        }
        if (path === '/cat') return cat(res, cid);
        if (path === '/block/get') return bytes(res, await collect(blocks.get(cid)));
        return dagExport(res, cid);
      }
      default:
        return text(res, 404, '404 page not found');
    }
  };

  const add = async (req: IncomingMessage, res: ServerResponse, body: Buffer, q: URLSearchParams): Promise<void> => {
    let file: File | null = null;
    try {
      const form = await new Response(body, {
        headers: { 'content-type': req.headers['content-type'] ?? '' },
      }).formData();
      const part = form.get('file');
      if (part instanceof File) file = part;
    } catch {
      // not multipart: answered below as a missing file
    }
    if (!file) return kuboError(res, "file argument 'path' is required", 1, 400);
    const cidVersion = q.get('cid-version') === '1' ? 1 : 0;
    const rawLeaves = (q.get('raw-leaves') ?? String(cidVersion === 1)) === 'true';
    const chunker = /^size-(\d+)$/.exec(q.get('chunker') ?? 'size-262144');
    if (!chunker) return kuboError(res, `unrecognized chunker option: ${q.get('chunker')}`, 0);
    const onlyHash = q.get('only-hash') === 'true';
    const target = onlyHash ? new MemoryBlockstore() : blocks;
    const result = await importFile({ content: new Uint8Array(await file.arrayBuffer()) }, target, {
      cidVersion,
      rawLeaves,
      chunker: fixedSize({ chunkSize: Number(chunker[1]) }),
      layout: balanced({ maxChildrenPerNode: MAX_LINKS }),
    });
    if (!onlyHash && q.get('pin') !== 'false') pins.add(result.cid.toString());
    res.writeHead(200, { 'content-type': 'application/json', 'x-chunked-output': '1' });
    res.end(`${JSON.stringify({ Name: file.name, Hash: result.cid.toString(), Size: String(result.size) })}\n`);
  };

  const cat = async (res: ServerResponse, cid: CID): Promise<void> => {
    const entry = await exporter(cid, blocks);
    if (entry.type === 'directory') return kuboError(res, 'this dag node is a directory', 0);
    if (entry.type !== 'file' && entry.type !== 'raw' && entry.type !== 'identity') {
      return kuboError(res, `unsupported node type: ${entry.type}`, 0);
    }
    const out = Buffer.from(await collect(entry.content()));
    if (state.alterCat && out.length > 0) out[Math.floor(out.length / 2)]! ^= 0x01;
    bytes(res, out);
  };

  const pinRm = (res: ServerResponse, cid: CID): void => {
    const key = cid.toV1().toString();
    if (!pins.delete(key)) {
      kuboError(res, 'not pinned or pinned indirectly', 0);
      return;
    }
    json(res, { Pins: [key] });
  };

  // Kubo answers /pin/ls for a CID it does not pin with an error (500), as /pin/rm does.
  const pinLs = (res: ServerResponse, cid: CID): void => {
    const key = cid.toV1().toString();
    if (!pins.has(key)) {
      kuboError(res, `path '${key}' is not pinned`, 0);
      return;
    }
    json(res, { Keys: { [key]: { Type: 'recursive' } } });
  };

  const dagExport = async (res: ServerResponse, root: CID): Promise<void> => {
    const { writer, out } = CarWriter.create([root]);
    const chunks = collect(out);
    const queue = [root];
    for (let cid = queue.shift(); cid; cid = queue.shift()) {
      const block = await collect(blocks.get(cid));
      await writer.put({ cid, bytes: block });
      if (cid.code === dagPb.code) for (const link of dagPb.decode(block).Links) queue.push(link.Hash);
    }
    await writer.close();
    bytes(res, await chunks, 'application/vnd.ipld.car');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) kuboError(res, (err as Error).message ?? String(err), 0);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  Object.assign(state, {
    url: `http://127.0.0.1:${port}/api/v0`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
  return state;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function collect(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of source) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function kuboError(res: ServerResponse, message: string, code: number, status = 500): void {
  json(res, { Message: message, Code: code, Type: 'error' }, status);
}

function json(res: ServerResponse, value: unknown, status = 200): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(value)}\n`);
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`${body}\n`);
}

function bytes(res: ServerResponse, body: Uint8Array, type = 'text/plain'): void {
  // Kubo streams file bytes as text/plain with X-Stream-Output, so browsers never render them
  res.writeHead(200, { 'content-type': type, 'x-stream-output': '1', 'content-length': body.length });
  res.end(body);
}
