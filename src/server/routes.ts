import type { FastifyInstance } from 'fastify';
import { ValidationError } from '../errors.js';
import type { Ledger, SaveResult } from '../service/ledger.js';

/** MAX_CHAIN_LIMIT is the largest page GET /chain serves; the Ledger caps its pages at the same size. */
export const MAX_CHAIN_LIMIT = 1000;

/** DEFAULT_CHAIN_LIMIT is GET /chain's page size when the caller gives none. */
export const DEFAULT_CHAIN_LIMIT = 100;

interface IdParams {
  id: string;
}

// A mutation answers with the new block's coordinates, not the whole block: the caller can fetch it from /chain.
function saved(result: SaveResult): { block: { index: number; hash: string }; property: SaveResult['property'] } {
  return { block: { index: result.block.index, hash: result.block.hash }, property: result.property };
}

// Query values arrive as strings (or arrays when repeated); only plain decimal digits count, so "1e3", "0x10",
// " 5" and "1.0" are refused rather than guessed at.
function queryInt(query: Record<string, unknown>, field: string, fallback: number, min: number, max: number): number {
  const raw = query[field];
  if (raw === undefined) return fallback;
  const n = typeof raw === 'string' && /^\d{1,16}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) throw new ValidationError(`${field} must be an integer from ${min} to ${max}`, field);
  return n;
}

/**
 * registerRoutes adds the ledger's routes to `app`. Each route only reads its input and calls one Ledger method;
 * the Ledger validates bodies (ValidationError names the field) and the error handler turns errors into responses.
 */
export function registerRoutes(app: FastifyInstance, ledger: Ledger): void {
  app.get('/healthz', async () => ({ ok: true }));

  app.get('/status', async () => ledger.status());

  app.get('/properties', async () => ({ properties: ledger.properties() }));

  app.get<{ Params: IdParams }>('/properties/:id', async (request) => ledger.property(request.params.id));

  app.post('/properties', async (request, reply) => reply.code(201).send(saved(await ledger.register(request.body))));

  app.patch<{ Params: IdParams }>('/properties/:id', async (request) => saved(await ledger.update(request.params.id, request.body)));

  app.post<{ Params: IdParams }>('/properties/:id/transfer', async (request) =>
    saved(await ledger.transfer(request.params.id, request.body)),
  );

  app.get<{ Querystring: Record<string, unknown> }>('/chain', async (request) => {
    const from = queryInt(request.query, 'from', 0, 0, Number.MAX_SAFE_INTEGER);
    const limit = queryInt(request.query, 'limit', DEFAULT_CHAIN_LIMIT, 1, MAX_CHAIN_LIMIT);
    return { blocks: await ledger.chain(from, limit) };
  });

  // A chain that fails verification answers 500 {ok:false, reason}: monitors that only look at the status code then
  // see the ledger as broken, and the body keeps the verify report's own shape rather than the error envelope.
  app.get('/chain/verify', async (_request, reply) => {
    const report = await ledger.verify();
    return reply.code(report.ok ? 200 : 500).send(report);
  });
}
