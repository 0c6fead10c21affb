import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { NO_QUERY } from './schemas.js';

/** OPENAPI_PATH is where the OpenAPI 3.1 document is served; DOCS_PREFIX where its browsable UI is. */
export const OPENAPI_PATH = '/openapi.json';
export const DOCS_PREFIX = '/docs';

// The same file from src/server and dist/server.
const pkgVersion = (): string =>
  (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/**
 * registerOpenApi makes the OpenAPI 3.1 document of every route added after it, from the routes' own schemas (input:
 * schemas.ts, responses: response-schemas.ts), and serves it at OPENAPI_PATH, with Swagger UI at DOCS_PREFIX (its
 * assets from the @fastify/swagger-ui package, nothing from a CDN). Call it before the routes are registered: the
 * document is built from what fastify registers. A route whose access is not 'public' is marked as needing the bearer
 * token. The document and the UI are public reads (they describe the API, no secret or infrastructure), rate limited
 * like every other, and take no query string.
 */
export function registerOpenApi(app: FastifyInstance, version = pkgVersion()): void {
  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'pawledger',
        version,
        description:
          'An encrypted property ledger that restores itself. Reads are public; changes and /admin need the admin ' +
          'token. Errors are {"error":{"code","message","field"?}}.',
      },
      components: { securitySchemes: { adminToken: { type: 'http', scheme: 'bearer' } } },
    },
    transform: ({ schema, url, route }) => {
      const access = route.config?.access;
      const secured = access === 'public' ? schema : { ...schema, security: [{ adminToken: [] }] };
      return { schema: secured, url };
    },
  });
  void app.register(async (scope) => {
    // The UI's own routes and its static assets declare nothing; they are public reads with no query string.
    scope.addHook('onRoute', (route) => {
      route.config = { ...route.config, access: 'public' };
      route.schema = { ...route.schema, querystring: NO_QUERY };
    });
    await scope.register(swaggerUi, { routePrefix: DOCS_PREFIX });
    scope.get(OPENAPI_PATH, { schema: { hide: true } }, async () => app.swagger());
  });
}
