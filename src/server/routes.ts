import type { FastifyInstance } from 'fastify';
import { ValidationError } from '../errors.js';
import type { Ledger, SaveResult, VerifyReport } from '../service/ledger.js';
import { DEFAULT_CHAIN_LIMIT, MAX_CHAIN_LIMIT } from '../util/http-limits.js';
import { publicStatus } from './public-status.js';
import { RESPONSES } from './response-schemas.js';
import { ID_PARAMS, NO_QUERY, SCHEMAS } from './schemas.js';
import { VerifyCache } from './verify-cache.js';

export { DEFAULT_CHAIN_LIMIT, MAX_CHAIN_LIMIT } from '../util/http-limits.js';

interface IdParams {
  id: string;
}

// A mutation answers with the new block's coordinates, not the whole block: the caller can fetch it from /chain.
function saved(result: SaveResult): { block: { index: number; hash: string }; property: SaveResult['property'] } {
  return { block: { index: result.block.index, hash: result.block.hash }, property: result.property };
}

// The schema lets through only one run of decimal digits per parameter, so "1e3", "0x10", " 5" and "1.0" are refused
// rather than guessed at; the range is checked here, with the message naming it.
export function queryInt(
  query: Record<string, string | undefined>,
  field: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = query[field];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!(n >= min && n <= max)) throw new ValidationError(`${field} must be an integer from ${min} to ${max}`, field);
  return n;
}

const PUBLIC = { access: 'public' } as const;
const ADMIN = { access: 'admin' } as const;

/**
 * registerRoutes adds the ledger's routes to `app`, each with its access (public reads; changes need the admin token)
 * and a closed schema for every input. With fullSaves a change answers the whole SaveResult (the control channel). Each route only reads its input and calls one Ledger method; the Ledger checks
 * the rules of a transaction (ValidationError names the field) and the error handler turns errors into responses.
 */
export function registerRoutes(
  app: FastifyInstance,
  ledger: Ledger,
  options: { verify: () => Promise<VerifyReport>; verifyMaxAgeMs: number; fullSaves?: boolean },
): void {
  const answer = options.fullSaves ? (r: SaveResult) => r : saved;
  const verified = new VerifyCache(
    { verify: options.verify, headHash: () => ledger.head.hash },
    options.verifyMaxAgeMs,
  );

  // Exempt from the rate limit: it costs nothing, and a platform's health checker polls it from shared addresses.
  // Logged at debug: a platform's health checker would otherwise fill the log at info.
  app.get(
    '/healthz',
    {
      config: { ...PUBLIC, rateLimit: false },
      logLevel: 'debug',
      schema: { querystring: NO_QUERY, response: RESPONSES.health },
    },
    async () => ({ ok: true }),
  );

  // Anyone sees the ledger's shape and health; infrastructure (hosts, folders, CIDs, instance names) needs the token.
  app.get(
    '/status',
    { config: PUBLIC, schema: { querystring: NO_QUERY, response: RESPONSES.status } },
    async (request) => {
      const status = ledger.status();
      return request.admin ? status : publicStatus(status);
    },
  );

  app.get(
    '/properties',
    { config: PUBLIC, schema: { querystring: NO_QUERY, response: RESPONSES.properties } },
    async () => ({
      properties: ledger.properties(),
    }),
  );

  app.get<{ Params: IdParams }>(
    '/properties/:id',
    { config: PUBLIC, schema: { params: ID_PARAMS, querystring: NO_QUERY, response: RESPONSES.property } },
    async (request) => ledger.property(request.params.id),
  );

  app.post(
    '/properties',
    { config: ADMIN, schema: { body: SCHEMAS.register, querystring: NO_QUERY, response: RESPONSES.created } },
    async (request, reply) => reply.code(201).send(answer(await ledger.register(request.body))),
  );

  app.patch<{ Params: IdParams }>(
    '/properties/:id',
    {
      config: ADMIN,
      schema: { params: ID_PARAMS, body: SCHEMAS.update, querystring: NO_QUERY, response: RESPONSES.saved },
    },
    async (request) => answer(await ledger.update(request.params.id, request.body)),
  );

  app.post<{ Params: IdParams }>(
    '/properties/:id/transfer',
    {
      config: ADMIN,
      schema: { params: ID_PARAMS, body: SCHEMAS.transfer, querystring: NO_QUERY, response: RESPONSES.saved },
    },
    async (request) => answer(await ledger.transfer(request.params.id, request.body)),
  );

  app.get<{ Querystring: Record<string, string | undefined> }>(
    '/chain',
    { config: PUBLIC, schema: { querystring: SCHEMAS.chainQuery, response: RESPONSES.chain } },
    async (request) => {
      const from = queryInt(request.query, 'from', 0, 0, Number.MAX_SAFE_INTEGER);
      const limit = queryInt(request.query, 'limit', DEFAULT_CHAIN_LIMIT, 1, MAX_CHAIN_LIMIT);
      return { blocks: await ledger.chain(from, limit) };
    },
  );

  // A chain that fails verification answers 500 {ok:false, reason}: monitors that only look at the status code then
  // see the ledger as broken, and the body keeps the verify report's own shape rather than the error envelope.
  // Callers share one verification, reused while the head is unchanged (verify-cache.ts): its cost does not grow
  // with how many ask.
  app.get(
    '/chain/verify',
    { config: PUBLIC, schema: { querystring: NO_QUERY, response: RESPONSES.verify } },
    async (_request, reply) => {
      const report = await verified.report();
      return reply.code(report.ok ? 200 : 500).send(report);
    },
  );
}
