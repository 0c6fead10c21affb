/**
 * A Pinata stand-in (docs: /work/shared/EXTERNAL-APIS.md, "Pinata" and "Gateways"): the legacy pinning API on one
 * port and a gateway on another, both on 127.0.0.1. Files become real UnixFS DAGs (ipfs-unixfs-importer, in a
 * memory blockstore) built from the pinataOptions sent, so the CIDs are the ones IPFS would give. Auth, error bodies
 * (`{"error":{"reason","details"}}`), paging and rate-limit headers follow the real service; the gateway serves
 * `/ipfs/{cid}` as the file, `?format=raw` (one block) or `?format=car`, and can fail, stall or lie on demand.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as dagPb from '@ipld/dag-pb';
import { CarWriter } from '@ipld/car/writer';
import { MemoryBlockstore } from 'blockstore-core/memory';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { exporter } from 'ipfs-unixfs-exporter';
import { importer } from 'ipfs-unixfs-importer';
import { fixedSize } from 'ipfs-unixfs-importer/chunker';
import { balanced } from 'ipfs-unixfs-importer/layout';
import { CID } from 'multiformats/cid';

/** StandinPin is one pin the stand-in holds (unpinned ones stay, with dateUnpinned, as Pinata lists them). */
export interface StandinPin {
  id: string;
  cid: string;
  size: number;
  name: string | null;
  keyvalues: Record<string, string>;
  datePinned: string;
  dateUnpinned: string | null;
  /** seq orders pins by pinning time even within one millisecond. */
  seq: number;
}

/** PinataStandinOptions: configure a key pair, a JWT, or both; anything else is rejected as Pinata would. */
export interface PinataStandinOptions {
  jwt?: string;
  apiKey?: string;
  secretKey?: string;
  /** pinningScope false makes the key one without pinning scopes: 403 NO_SCOPES_FOUND on pin and unpin. @default true */
  pinningScope?: boolean;
  /** rateLimit enforces request budgets per window, with x-ratelimit-* headers; off when absent. */
  rateLimit?: { perWindow?: number; dataPerWindow?: number; windowMs?: number };
  /** chunkSize is the stand-in's own chunking, to act as a service that chunks differently. @default 262144 */
  chunkSize?: number;
  /** gatewayToken makes the gateway a dedicated one that needs `?pinataGatewayToken=`. */
  gatewayToken?: string;
  port?: number;
  gatewayPort?: number;
}

/** GatewayBehaviour is read at each gateway request, so tests change it on the fly. */
export interface GatewayBehaviour {
  /** ok serves; fail answers 500; slow waits slowMs first; lie serves content with one byte flipped. */
  mode: 'ok' | 'fail' | 'slow' | 'lie';
  slowMs: number;
  /** formats false makes the gateway ignore `format=` and Accept, serving the plain file (as some gateways do). */
  formats: boolean;
}

/** PinataStandin is a running stand-in. */
export interface PinataStandin {
  url: string;
  gatewayUrl: string;
  gateway: GatewayBehaviour;
  /** pins by CID. */
  pins: Map<string, StandinPin>;
  blocks: MemoryBlockstore;
  /** requests counts requests per endpoint, rejected ones included. */
  requests: {
    total: number;
    testAuthentication: number;
    pinFileToIPFS: number;
    pinJSONToIPFS: number;
    pinList: number;
    unpin: number;
    gateway: number;
  };
  /** failNext makes the next `count` API requests answer `status` (429 with x-ratelimit-* headers, reset now). */
  failNext(status: number, count?: number): void;
  close(): Promise<void>;
}

const pinataError = (reason: string, details: string) => ({ error: { reason, details } });

async function blockOf(store: MemoryBlockstore, cid: CID): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of store.get(cid)) parts.push(p);
  return Buffer.concat(parts);
}

function flipOneByte(bytes: Uint8Array): Buffer {
  const out = Buffer.from(bytes);
  if (out.length > 0) out[out.length >> 1] = (out[out.length >> 1] ?? 0) ^ 0xff;
  return out;
}

/** startPinataStandin starts the API and the gateway on 127.0.0.1 (free ports unless given). */
export async function startPinataStandin(options: PinataStandinOptions = {}): Promise<PinataStandin> {
  const blocks = new MemoryBlockstore();
  const pins = new Map<string, StandinPin>();
  /** blockRoots maps each block to the roots whose DAG holds it: a gateway serves blocks of pinned DAGs only. */
  const blockRoots = new Map<string, Set<string>>();
  const isPinned = (cid: string) => pins.get(cid)?.dateUnpinned === null;
  const requests = {
    total: 0,
    testAuthentication: 0,
    pinFileToIPFS: 0,
    pinJSONToIPFS: 0,
    pinList: 0,
    unpin: 0,
    gateway: 0,
  };
  const gateway: GatewayBehaviour = { mode: 'ok', slowMs: 2000, formats: true };
  const failures: number[] = [];
  const windowMs = options.rateLimit?.windowMs ?? 60_000;
  const budget = { start: 0, all: 0, data: 0 };
  let seq = 0;

  const api = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024, forceCloseConnections: true });
  api.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const endpointOf = (url: string): keyof typeof requests | undefined => {
    const path = url.split('?')[0] ?? '';
    if (path === '/data/testAuthentication') return 'testAuthentication';
    if (path === '/pinning/pinFileToIPFS') return 'pinFileToIPFS';
    if (path === '/pinning/pinJSONToIPFS') return 'pinJSONToIPFS';
    if (path === '/data/pinList') return 'pinList';
    if (path.startsWith('/pinning/unpin/')) return 'unpin';
    return undefined;
  };

  api.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    requests.total++;
    const endpoint = endpointOf(req.url);
    if (endpoint) requests[endpoint]++;
    const failure = failures.shift();
    if (failure !== undefined) {
      if (failure === 429) {
        const now = Math.floor(Date.now() / 1000);
        reply.headers({ 'x-ratelimit-limit': '180', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now) });
        return reply.code(429).send(pinataError('RATE_LIMITED', 'Too many requests, slow down'));
      }
      return reply
        .code(failure)
        .send(pinataError(failure >= 500 ? 'INTERNAL_SERVER_ERROR' : 'INJECTED', `Injected failure ${failure}`));
    }
    // Auth: a Bearer JWT, else both key headers; missing headers are a 400, wrong ones a 401.
    const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const key = req.headers.pinata_api_key;
    const secret = req.headers.pinata_secret_api_key;
    if (bearer !== undefined) {
      if (!options.jwt || bearer !== options.jwt)
        return reply.code(401).send(pinataError('INVALID_CREDENTIALS', 'Invalid/expired credentials'));
    } else if (typeof key !== 'string' || typeof secret !== 'string' || !key || !secret) {
      return reply
        .code(400)
        .send(pinataError('KEYS_MUST_BE_STRINGS', 'pinata_api_key and pinata_secret_api_key must both be strings'));
    } else if (!options.apiKey || key !== options.apiKey || secret !== options.secretKey) {
      return reply.code(401).send(pinataError('INVALID_CREDENTIALS', 'Invalid API key provided'));
    }
    if (options.rateLimit) {
      const now = Date.now();
      if (now - budget.start >= windowMs) Object.assign(budget, { start: now, all: 0, data: 0 });
      const isData = req.url.startsWith('/data/');
      const limit = isData ? (options.rateLimit.dataPerWindow ?? 30) : (options.rateLimit.perWindow ?? 180);
      const used = isData ? ++budget.data : ++budget.all;
      if (isData) budget.all++;
      reply.headers({
        'x-ratelimit-limit': String(limit),
        'x-ratelimit-remaining': String(Math.max(0, limit - used)),
        'x-ratelimit-reset': String(Math.ceil((budget.start + windowMs) / 1000)),
      });
      if (used > limit || budget.all > (options.rateLimit.perWindow ?? 180)) {
        return reply.code(429).send(pinataError('RATE_LIMITED', 'Rate limit exceeded'));
      }
    }
    if (
      (endpoint === 'pinFileToIPFS' || endpoint === 'pinJSONToIPFS' || endpoint === 'unpin') &&
      options.pinningScope === false
    ) {
      return reply
        .code(403)
        .send(pinataError('NO_SCOPES_FOUND', 'This key does not have the required scopes associated with it'));
    }
  });

  api.get('/data/testAuthentication', async () => ({
    message: 'Congratulations! You are communicating with the Pinata API!',
  }));

  const pin = async (
    bytes: Uint8Array,
    filename: string,
    metadataRaw: unknown,
    optionsRaw: unknown,
    reply: FastifyReply,
  ) => {
    let metadata: { name?: unknown; keyvalues?: unknown } = {};
    let pinOptions: { cidVersion?: unknown; wrapWithDirectory?: unknown } = {};
    try {
      if (metadataRaw !== undefined && metadataRaw !== null)
        metadata = typeof metadataRaw === 'string' ? JSON.parse(metadataRaw) : (metadataRaw as object);
      if (optionsRaw !== undefined && optionsRaw !== null)
        pinOptions = typeof optionsRaw === 'string' ? JSON.parse(optionsRaw) : (optionsRaw as object);
    } catch {
      return reply.code(400).send(pinataError('INVALID_JSON', 'pinataMetadata and pinataOptions must be JSON'));
    }
    const keyvalues = (metadata.keyvalues ?? {}) as Record<string, unknown>;
    if (typeof keyvalues !== 'object' || Object.keys(keyvalues).length > 10) {
      return reply.code(400).send(pinataError('KEYVALUES_LIMIT_EXCEEDED', 'No more than 10 keyvalues are allowed'));
    }
    const cidVersion = pinOptions.cidVersion === 1 ? 1 : 0; // Pinata's default is 0
    const wrap = pinOptions.wrapWithDirectory === true;
    let size = 0;
    const added: string[] = [];
    const sink = {
      put: async (cid: CID, block: Uint8Array) => {
        size += block.length;
        added.push(cid.toString());
        return blocks.put(cid, block);
      },
    };
    let root: CID | undefined;
    for await (const entry of importer([{ path: filename, content: bytes }], sink as never, {
      cidVersion,
      rawLeaves: cidVersion === 1,
      wrapWithDirectory: wrap,
      reduceSingleLeafToSelf: true,
      chunker: fixedSize({ chunkSize: options.chunkSize ?? 262_144 }),
      layout: balanced({ maxChildrenPerNode: 174 }),
    }))
      root = entry.cid;
    if (!root) return reply.code(500).send(pinataError('INTERNAL_SERVER_ERROR', 'import failed'));
    const cid = root.toString();
    for (const b of added) blockRoots.set(b, (blockRoots.get(b) ?? new Set()).add(cid));
    const existing = pins.get(cid);
    const isDuplicate = existing !== undefined && existing.dateUnpinned === null;
    if (!isDuplicate) {
      pins.set(cid, {
        id: randomUUID(),
        cid,
        size,
        seq: ++seq,
        name: typeof metadata.name === 'string' ? metadata.name : filename,
        keyvalues: Object.fromEntries(Object.entries(keyvalues).map(([k, v]) => [k, String(v)])),
        datePinned: new Date().toISOString(),
        dateUnpinned: null,
      });
    }
    return { IpfsHash: cid, PinSize: size, Timestamp: new Date().toISOString(), isDuplicate };
  };

  api.post('/pinning/pinFileToIPFS', async (req, reply) => {
    const contentType = req.headers['content-type'] ?? '';
    if (!contentType.startsWith('multipart/form-data'))
      return reply.code(400).send(pinataError('INVALID_REQUEST', 'Expected multipart/form-data'));
    const form = await new Request('http://standin/', {
      method: 'POST',
      headers: { 'content-type': contentType },
      body: req.body as Buffer,
    }).formData();
    const file = form.get('file');
    if (!(file instanceof Blob)) return reply.code(400).send(pinataError('FILE_REQUIRED', 'A file is required'));
    const filename = (file as File).name || 'file';
    return pin(
      new Uint8Array(await file.arrayBuffer()),
      filename,
      form.get('pinataMetadata'),
      form.get('pinataOptions'),
      reply,
    );
  });

  api.post('/pinning/pinJSONToIPFS', async (req, reply) => {
    const body = req.body as { pinataContent?: unknown; pinataMetadata?: unknown; pinataOptions?: unknown } | undefined;
    if (!body || body.pinataContent === undefined)
      return reply.code(400).send(pinataError('INVALID_REQUEST', 'pinataContent is required'));
    return pin(
      Buffer.from(JSON.stringify(body.pinataContent)),
      'pinJSONToIPFS.json',
      body.pinataMetadata,
      body.pinataOptions,
      reply,
    );
  });

  api.get('/data/pinList', async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const status = q.status ?? 'all';
    const pageLimit = Number(q.pageLimit ?? 10);
    const pageOffset = Number(q.pageOffset ?? 0);
    if (!['all', 'pinned', 'unpinned'].includes(status))
      return reply.code(400).send(pinataError('INVALID_STATUS', 'status must be all, pinned or unpinned'));
    if (!Number.isInteger(pageLimit) || pageLimit < 1 || pageLimit > 1000)
      return reply.code(400).send(pinataError('INVALID_PAGE_LIMIT', 'pageLimit must be 1..1000'));
    if (!Number.isInteger(pageOffset) || pageOffset < 0)
      return reply.code(400).send(pinataError('INVALID_PAGE_OFFSET', 'pageOffset must be >= 0'));
    let kvFilter: Record<string, { value?: unknown; op?: unknown }> = {};
    try {
      if (q['metadata[keyvalues]']) kvFilter = JSON.parse(q['metadata[keyvalues]']);
    } catch {
      return reply.code(400).send(pinataError('INVALID_KEYVALUES', 'metadata[keyvalues] must be JSON'));
    }
    for (const f of Object.values(kvFilter)) {
      if (f.op !== 'eq' && f.op !== 'ne')
        return reply.code(400).send(pinataError('INVALID_KEYVALUES', 'Only eq and ne are supported here'));
    }
    const name = q['metadata[name]'];
    const hashContains = q.hashContains;
    const rows = [...pins.values()]
      .filter((p) => hashContains === undefined || p.cid.includes(hashContains))
      .filter((p) => status === 'all' || (status === 'pinned') === (p.dateUnpinned === null))
      .filter((p) => name === undefined || p.name === name)
      .filter((p) =>
        Object.entries(kvFilter).every(([k, f]) => (p.keyvalues[k] === String(f.value)) === (f.op === 'eq')),
      )
      .sort((a, b) => b.seq - a.seq);
    const page = rows.slice(pageOffset, pageOffset + pageLimit).map((p) => ({
      id: p.id,
      ipfs_pin_hash: p.cid,
      size: p.size,
      user_id: 'standin-user',
      date_pinned: p.datePinned,
      date_unpinned: p.dateUnpinned,
      metadata: { name: p.name, keyvalues: p.keyvalues },
      regions: [{ regionId: 'FRA1', currentReplicationCount: 1, desiredReplicationCount: 1 }],
    }));
    return q.includeCount === 'true' ? { count: rows.length, rows: page } : { rows: page };
  });

  api.delete('/pinning/unpin/:cid', async (req, reply) => {
    const raw = (req.params as { cid: string }).cid;
    let key = raw;
    try {
      key = CID.parse(raw).toString();
    } catch {
      return reply.code(400).send(pinataError('INVALID_CID', `${raw} is not a valid CID`));
    }
    const p = pins.get(key);
    if (!p || p.dateUnpinned !== null)
      return reply
        .code(400)
        .send(pinataError('CURRENT_USER_HAS_NOT_PINNED_CID', `The current user has not pinned the cid: ${raw}`));
    p.dateUnpinned = new Date().toISOString();
    return reply.code(200).type('text/plain').send('OK');
  });

  const gw = Fastify({ logger: false, forceCloseConnections: true });
  gw.get('/ipfs/:cid', async (req, reply) => {
    requests.gateway++;
    const q = req.query as Record<string, string | undefined>;
    if (options.gatewayToken && q.pinataGatewayToken !== options.gatewayToken) {
      return reply
        .code(401)
        .type('text/plain')
        .send('ERR_ID:00006 Unauthorized: a valid pinataGatewayToken is required');
    }
    if (gateway.mode === 'fail') return reply.code(500).type('text/plain').send('Internal Server Error');
    if (gateway.mode === 'slow') await new Promise((r) => setTimeout(r, gateway.slowMs));
    let cid: CID;
    try {
      cid = CID.parse((req.params as { cid: string }).cid);
    } catch {
      return reply.code(400).type('text/plain').send('invalid CID');
    }
    const accept = req.headers.accept ?? '';
    const format = !gateway.formats
      ? undefined
      : (q.format ??
        (accept.includes('application/vnd.ipld.car')
          ? 'car'
          : accept.includes('application/vnd.ipld.raw')
            ? 'raw'
            : undefined));
    const servable =
      isPinned(cid.toString()) || (format === 'raw' && [...(blockRoots.get(cid.toString()) ?? [])].some(isPinned));
    if (!servable) return reply.code(404).type('text/plain').send(`could not find ${cid}`);
    const lie = gateway.mode === 'lie';
    if (format === 'raw') {
      const block = await blockOf(blocks, cid);
      return reply.type('application/vnd.ipld.raw').send(lie ? flipOneByte(block) : Buffer.from(block));
    }
    if (format === 'car') {
      const { writer, out } = CarWriter.create([cid]);
      const collected = (async () => {
        const parts: Uint8Array[] = [];
        for await (const part of out) parts.push(part);
        return Buffer.concat(parts);
      })();
      const order: CID[] = [];
      const seen = new Set<string>();
      const walk = async (c: CID): Promise<void> => {
        if (seen.has(c.toString())) return;
        seen.add(c.toString());
        order.push(c);
        if (c.code === dagPb.code)
          for (const link of dagPb.decode(await blockOf(blocks, c)).Links) await walk(link.Hash);
      };
      await walk(cid);
      for (const [i, c] of order.entries()) {
        const bytes = await blockOf(blocks, c);
        await writer.put({ cid: c, bytes: lie && i === order.length - 1 ? flipOneByte(bytes) : bytes });
      }
      await writer.close();
      return reply.type('application/vnd.ipld.car; version=1').send(await collected);
    }
    if (format !== undefined && format !== 'raw' && format !== 'car')
      return reply.code(400).type('text/plain').send(`unsupported format ${format}`);
    const entry = await exporter(cid, blocks);
    if (entry.type !== 'file' && entry.type !== 'raw')
      return reply.code(501).type('text/plain').send('directory listings are not served here');
    const parts: Uint8Array[] = [];
    for await (const part of entry.content()) parts.push(part);
    const content = Buffer.concat(parts);
    return reply.type('application/octet-stream').send(lie ? flipOneByte(content) : content);
  });

  await api.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  await gw.listen({ host: '127.0.0.1', port: options.gatewayPort ?? 0 });
  const portOf = (a: typeof api) => (a.server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${portOf(api)}`,
    gatewayUrl: `http://127.0.0.1:${portOf(gw)}`,
    gateway,
    pins,
    blocks,
    requests,
    failNext(status: number, count = 1) {
      for (let i = 0; i < count; i++) failures.push(status);
    },
    async close() {
      await Promise.all([api.close(), gw.close()]);
    },
  };
}
