/**
 * A Render API stand-in (docs: /work/shared/EXTERNAL-APIS.md, "Render API"): one service's environment variables
 * under `/v1/services/{id}/env-vars`, on 127.0.0.1. Bearer auth (401 `{"id":"unauthorized","message":...}`), 404 for
 * an unknown service or variable, a writes-per-window limit answering 429 with Retry-After, and the replace-all PUT,
 * implemented (it deletes the keys left out) and counted, so tests can prove a client never uses it.
 */
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';

/** RenderStandinOptions configure the one service the stand-in knows. */
export interface RenderStandinOptions {
  apiKey: string;
  serviceId: string;
  /** vars are the service's variables at start. */
  vars?: Record<string, string>;
  /** writeLimit caps writes (PUT, DELETE) per window; over it, 429 with Retry-After. @default 30 per 60000 ms */
  writeLimit?: { count: number; windowMs?: number };
  port?: number;
}

/** RenderStandin is a running stand-in. */
export interface RenderStandin {
  url: string;
  vars: Map<string, string>;
  /** writes counts accepted writes; writeValues lists each single-var PUT as [key, value], oldest first. */
  readonly writes: number;
  writeValues: Array<[string, string]>;
  requests: {
    total: number;
    get: number;
    list: number;
    put: number;
    replaceAll: number;
    delete: number;
    rateLimited: number;
  };
  /** failNext makes the next `count` requests answer `status` (429 with `Retry-After: retryAfterSec`). */
  failNext(status: number, count?: number, retryAfterSec?: number): void;
  close(): Promise<void>;
}

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** startRenderStandin starts the stand-in on 127.0.0.1 (a free port unless given). */
export async function startRenderStandin(options: RenderStandinOptions): Promise<RenderStandin> {
  const vars = new Map<string, string>(Object.entries(options.vars ?? {}));
  const writeValues: Array<[string, string]> = [];
  const requests = { total: 0, get: 0, list: 0, put: 0, replaceAll: 0, delete: 0, rateLimited: 0 };
  const failures: Array<{ status: number; retryAfterSec: number }> = [];
  const writeTimes: number[] = [];
  const limit = options.writeLimit ?? { count: 30 };
  const windowMs = limit.windowMs ?? 60_000;
  let writes = 0;

  const app = Fastify({ logger: false, forceCloseConnections: true });
  const notFound = (reply: FastifyReply, what: string) =>
    reply.code(404).send({ id: 'not-found', message: `${what} not found` });

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    requests.total++;
    const failure = failures.shift();
    if (failure) {
      if (failure.status === 429) {
        requests.rateLimited++;
        reply.header('retry-after', String(failure.retryAfterSec));
        return reply.code(429).send({ id: 'too-many-requests', message: 'Rate limit exceeded' });
      }
      return reply.code(failure.status).send({ id: 'internal', message: `Injected failure ${failure.status}` });
    }
    if (req.headers.authorization !== `Bearer ${options.apiKey}`) {
      return reply.code(401).send({ id: 'unauthorized', message: 'Authorization information is missing or invalid.' });
    }
    const serviceId = /^\/v1\/services\/([^/?]+)/.exec(req.url)?.[1];
    if (serviceId !== undefined && decodeURIComponent(serviceId) !== options.serviceId)
      return notFound(reply, 'service');
    if (req.method === 'PUT' || req.method === 'DELETE') {
      const now = Date.now();
      while (writeTimes.length > 0 && now - (writeTimes[0] ?? 0) >= windowMs) writeTimes.shift();
      if (writeTimes.length >= limit.count) {
        requests.rateLimited++;
        const waitMs = (writeTimes[0] ?? now) + windowMs - now;
        reply.header('retry-after', String(Math.max(1, Math.ceil(waitMs / 1000))));
        return reply.code(429).send({ id: 'too-many-requests', message: 'Rate limit exceeded' });
      }
      writeTimes.push(now);
    }
  });

  app.get('/v1/services/:serviceId/env-vars', async (req, reply) => {
    requests.list++;
    const q = req.query as { limit?: string; cursor?: string };
    const pageLimit = Number(q.limit ?? 20);
    if (!Number.isInteger(pageLimit) || pageLimit < 1 || pageLimit > 100)
      return reply.code(400).send({ id: 'invalid', message: 'limit must be between 1 and 100' });
    const after = q.cursor ? Buffer.from(q.cursor, 'base64url').toString('utf8') : '';
    const keys = [...vars.keys()]
      .sort()
      .filter((k) => k > after)
      .slice(0, pageLimit);
    return keys.map((key) => ({
      envVar: { key, value: vars.get(key) },
      cursor: Buffer.from(key).toString('base64url'),
    }));
  });

  app.put('/v1/services/:serviceId/env-vars', async (req, reply) => {
    requests.replaceAll++;
    const body = req.body as Array<{ key?: unknown; value?: unknown }>;
    if (!Array.isArray(body) || !body.every((v) => typeof v.key === 'string' && typeof v.value === 'string')) {
      return reply.code(400).send({ id: 'invalid', message: 'body must be an array of {key, value}' });
    }
    vars.clear();
    for (const v of body) vars.set(v.key as string, v.value as string);
    writes++;
    return body.map((v) => ({
      envVar: { key: v.key, value: v.value },
      cursor: Buffer.from(String(v.key)).toString('base64url'),
    }));
  });

  app.get('/v1/services/:serviceId/env-vars/:key', async (req, reply) => {
    requests.get++;
    const { key } = req.params as { key: string };
    const value = vars.get(key);
    return value === undefined ? notFound(reply, 'env var') : { key, value };
  });

  app.put('/v1/services/:serviceId/env-vars/:key', async (req, reply) => {
    requests.put++;
    const { key } = req.params as { key: string };
    const body = req.body as { value?: unknown } | undefined;
    if (!KEY.test(key)) return reply.code(400).send({ id: 'invalid', message: 'invalid env var key' });
    if (!body || typeof body.value !== 'string')
      return reply.code(400).send({ id: 'invalid', message: 'value must be a string' });
    vars.set(key, body.value);
    writeValues.push([key, body.value]);
    writes++;
    return { key, value: body.value };
  });

  app.delete('/v1/services/:serviceId/env-vars/:key', async (req, reply) => {
    requests.delete++;
    const { key } = req.params as { key: string };
    if (!vars.delete(key)) return notFound(reply, 'env var');
    writes++;
    return reply.code(204).send();
  });

  await app.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  return {
    url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/v1`,
    vars,
    get writes() {
      return writes;
    },
    writeValues,
    requests,
    failNext(status: number, count = 1, retryAfterSec = 1) {
      for (let i = 0; i < count; i++) failures.push({ status, retryAfterSec });
    },
    async close() {
      await app.close();
    },
  };
}
