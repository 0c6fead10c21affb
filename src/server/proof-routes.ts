import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { RESPONSES } from './response-schemas.js';
import { canonicalJson } from '../ledger/canonical.js';
import { MAX_PROOF_BLOCKS } from '../service/chain-proofs.js';
import type { Ledger } from '../service/ledger.js';
import { queryInt } from './routes.js';
import { ID_PARAMS, NO_QUERY, SCHEMAS } from './schemas.js';

/** NEXT_FROM_HEADER names where the next page of a property's proof starts, when its history has more blocks. */
export const NEXT_FROM_HEADER = 'pawledger-next-from';

// The verifier module is served as the very file the Node verifier imports (built beside this one into dist/).
const VERIFIER = readFileSync(new URL('../ledger/proof-verifier.js', import.meta.url));

const PUBLIC = { access: 'public' } as const;
const JSON_TYPE = 'application/json; charset=utf-8';
type Query = Record<string, string | undefined>;

/**
 * registerProofRoutes adds the public proof routes (docs/FORMAT.md, "Proofs"): a property's inclusion proof, a
 * consistency proof between two heights, and the browser verifier. Proofs are sent as their canonical JSON, byte for
 * byte what `pawledger proof verify` checks. Each costs O(log n) node reads per block, at most MAX_PROOF_BLOCKS
 * blocks; while the accumulator is rebuilt after a restore they answer 503 with Retry-After.
 */
export function registerProofRoutes(app: FastifyInstance, ledger: Ledger): void {
  app.get<{ Params: { id: string }; Querystring: Query }>(
    '/properties/:id/proof',
    { config: PUBLIC, schema: { params: ID_PARAMS, querystring: SCHEMAS.proofQuery, response: RESPONSES.proof } },
    async (request, reply) => {
      const from = queryInt(request.query, 'from', 0, 0, Number.MAX_SAFE_INTEGER);
      const limit = queryInt(request.query, 'limit', MAX_PROOF_BLOCKS, 1, MAX_PROOF_BLOCKS);
      const { proof, next } = await ledger.proof(request.params.id, { from, limit });
      if (next !== null) reply.header(NEXT_FROM_HEADER, String(next));
      return reply.type(JSON_TYPE).send(`${canonicalJson(proof)}\n`);
    },
  );

  app.get<{ Querystring: Query }>(
    '/chain/consistency',
    { config: PUBLIC, schema: { querystring: SCHEMAS.consistencyQuery, response: RESPONSES.consistency } },
    async (request, reply) => {
      // By default, from the genesis block to the head: the whole chain as it stands.
      const from = queryInt(request.query, 'from', 0, 0, Number.MAX_SAFE_INTEGER);
      const to = queryInt(request.query, 'to', ledger.head.index, 0, Number.MAX_SAFE_INTEGER);
      return reply.type(JSON_TYPE).send(`${canonicalJson(await ledger.consistency(from, to))}\n`);
    },
  );

  app.get(
    '/proof-verifier.js',
    { config: PUBLIC, schema: { querystring: NO_QUERY, response: RESPONSES.verifier } },
    async (_request, reply) =>
      reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=300').send(VERIFIER),
  );
}
