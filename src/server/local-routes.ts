import type { FastifyInstance } from 'fastify';
import type { Ledger } from '../service/ledger.js';
import { NO_QUERY, SCHEMAS } from './schemas.js';

const LOCAL = { access: 'local' } as const;

/**
 * registerLocalRoutes adds the routes only the control channel serves: those that name a file on this machine, which
 * means something only to a caller on it, as the server's own user. POST /admin/import `{path, force?}` verifies an
 * export file in full and makes it the ledger (Ledger.importFrom), as `pawledger import` does without a server.
 */
export function registerLocalRoutes(app: FastifyInstance, ledger: Ledger): void {
  app.post<{ Body: { path: string; force?: boolean } }>(
    '/admin/import',
    { config: LOCAL, schema: { body: SCHEMAS.import, querystring: NO_QUERY } },
    async (request) => ledger.importFrom(request.body.path, { force: request.body.force ?? false }),
  );
}
