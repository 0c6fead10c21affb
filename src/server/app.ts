import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Ledger } from '../service/ledger.js';
import { requireAdmin } from './auth.js';
import { handleError, handleNotFound } from './errors.js';
import { registerAdminRoutes } from './admin-routes.js';
import { registerRoutes } from './routes.js';

/** DEFAULT_BODY_LIMIT is the largest request body accepted: well above the ledger's own limits on a transaction. */
export const DEFAULT_BODY_LIMIT = 64 * 1024;

// Property ids may be 128 characters (LIMITS.idPattern); fastify's default of 100 would turn longer ones into 404s.
const MAX_PARAM_LENGTH = 256;

/** ServerOptions configure buildServer. */
export interface ServerOptions {
  /** adminToken is the bearer token every change must carry (ADMIN_TOKEN); an empty one throws ConfigError. */
  adminToken: string;
  /** logger receives request logs and failures. @default no logging */
  logger?: Logger;
  /** bodyLimit is the largest request body in bytes; larger ones get 413. @default 64 KiB */
  bodyLimit?: number;
}

/**
 * buildServer makes the HTTP API over `ledger`: public reads (GET), changes guarded by the admin token, and every
 * error answered as JSON `{"error":{"code","message"}}`. It does not listen; the caller calls `listen` (or `inject`
 * in tests) and closes the ledger after closing the server.
 */
export function buildServer(ledger: Ledger, options: ServerOptions): FastifyInstance {
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  if (!Number.isSafeInteger(bodyLimit) || bodyLimit < 1) {
    throw new ConfigError(`the body limit must be a positive integer number of bytes, got ${bodyLimit}`);
  }
  const auth = requireAdmin(options.adminToken);
  // Typed as fastify's base logger so the instance has the plain FastifyInstance type callers expect.
  const logger: FastifyBaseLogger | undefined = options.logger;
  const app = Fastify({
    ...(logger ? { loggerInstance: logger } : { logger: false }),
    bodyLimit,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Errors the router raises before a route is found (a malformed URL, an over-long parameter) skip the error
    // handler unless routed here, and would otherwise answer in fastify's own shape.
    frameworkErrors: (err, request, reply) => handleError(err, request, reply),
  });
  // The API speaks JSON only; fastify's text/plain parser would hand routes a string body.
  app.removeContentTypeParser('text/plain');
  app.addHook('onRequest', auth);
  app.setErrorHandler(handleError);
  app.setNotFoundHandler(handleNotFound);
  registerRoutes(app, ledger);
  registerAdminRoutes(app, ledger);
  return app;
}
