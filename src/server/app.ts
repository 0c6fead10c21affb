import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Ledger, VerifyReport } from '../service/ledger.js';
import { registerAdminRoutes } from './admin-routes.js';
import { registerMetricsRoute } from './metrics-route.js';
import { requireAdmin } from './auth.js';
import { handleClientError, handleError, handleNotFound } from './errors.js';
import {
  DEFAULT_BODY_LIMIT,
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  DEFAULT_RATE_LIMIT,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_VERIFY_MAX_AGE_MS,
  MAX_PARAM_LENGTH,
} from '../util/http-limits.js';
import { registerOpenApi } from './openapi.js';
import { registerRateLimit } from './rate-limit.js';
import { registerProofRoutes } from './proof-routes.js';
import { registerRoutes } from './routes.js';
import { registerStatusPage } from './status-page.js';
import { AJV_OPTIONS } from './validation.js';

export { DEFAULT_BODY_LIMIT } from '../util/http-limits.js';

/** ServerOptions configure buildServer. Limits are documented in docs/SECURITY.md with the env vars serve reads them from. */
export interface ServerOptions extends AppOptions {
  /** adminToken is the bearer token every change must carry (ADMIN_TOKEN); an empty one throws ConfigError. */
  adminToken: string;
  /** metricsToken also opens GET /metrics (METRICS_TOKEN), for a scraper that must not hold the admin token. */
  metricsToken?: string | null;
}

/** AppOptions are what every channel's server takes: logging, limits and the verification of GET /chain/verify. */
export interface AppOptions {
  /** logger receives request logs and failures. @default no logging */
  logger?: Logger;
  /** bodyLimit is the largest request body in bytes; larger ones get 413. @default 64 KiB */
  bodyLimit?: number;
  /** rateLimit is how many public reads one client may make a minute; 0 is no limit (LEDGER_RATE_LIMIT). @default 300 */
  rateLimit?: number;
  /** requestTimeoutMs bounds receiving a whole request, headers and body (LEDGER_REQUEST_TIMEOUT_MS). @default 30 s */
  requestTimeoutMs?: number;
  /** headersTimeoutMs bounds receiving the headers; at most requestTimeoutMs (LEDGER_HEADERS_TIMEOUT_MS). @default 10 s */
  headersTimeoutMs?: number;
  /** keepAliveTimeoutMs is how long an idle keep-alive connection stays open (LEDGER_KEEP_ALIVE_TIMEOUT_MS). @default 72 s */
  keepAliveTimeoutMs?: number;
  /**
   * trustProxy is how many reverse proxies stand in front (LEDGER_TRUST_PROXY): the client's address, which the rate
   * limit counts by, is then read from X-Forwarded-For that many hops back. 0 uses the socket's address. @default 0
   * (serve: 1 when RENDER=true)
   */
  trustProxy?: number;
  /**
   * verify runs one full verification for GET /chain/verify. @default `ledger.verify()` on this thread, which stalls
   * the event loop for the whole verification (about 65 ms per 1000 blocks); serve passes verifyInWorker(config).
   */
  verify?: () => Promise<VerifyReport>;
  /** verifyMaxAgeMs is how long GET /chain/verify reuses a result while the head is unchanged. @default 10 min */
  verifyMaxAgeMs?: number;
}

// One debug line per request to a route whose request logging is off (see disableRequestLogging above).
function quietRequests(app: FastifyInstance): void {
  app.addHook('onResponse', async (request, reply) => {
    if (request.routeOptions?.logLevel === 'debug')
      request.log.debug(
        { url: request.url, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime) },
        'request completed',
      );
  });
}

function positive(name: string, value: number, min = 1): number {
  if (!Number.isSafeInteger(value) || value < min)
    throw new ConfigError(`the ${name} must be an integer of at least ${min}, got ${value}`);
  return value;
}

/**
 * buildServer makes the HTTP API over `ledger`: public reads, everything else guarded by the admin token (decided by
 * the route matched, see auth.ts), closed schemas on every input, bounded cost and time per request, and every error
 * answered as JSON `{"error":{"code","message"}}`. It does not listen; the caller calls `listen` (or `inject` in
 * tests) and closes the ledger after closing the server. Routes are added when the server loads (`ready`, `listen`
 * or the first `inject`), so an onRoute hook added right after buildServer sees them all.
 */
export function buildServer(ledger: Ledger, options: ServerOptions): FastifyInstance {
  return assembleServer(ledger, options, {
    access: requireAdmin(options.adminToken, options.metricsToken ?? null),
    fullSaves: false,
    openapi: true,
  });
}

/**
 * Channel is what differs between the ways the same routes are reached: the HTTP API (the admin token) and the
 * control channel (the same OS user, control-server.ts).
 */
export interface Channel {
  /** access is the one onRequest hook that decides who may call the matched route, and marks `request.admin`. */
  access: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  /**
   * fullSaves makes the property changes answer the whole SaveResult (the new block with its transaction) rather
   * than its coordinates: the CLI prints what it would have printed had it saved itself.
   */
  fullSaves: boolean;
  /** routes adds the channel's own routes, beside the shared ones. */
  routes?: (app: FastifyInstance, ledger: Ledger) => void;
  /** openapi serves the OpenAPI document of the routes and its UI (openapi.ts). */
  openapi?: boolean;
}

/**
 * assembleServer builds the server buildServer describes, with `channel` deciding access: every channel serves the
 * same routes over the same Ledger calls, so a change means the same whichever way it arrives.
 */
export function assembleServer(ledger: Ledger, options: AppOptions, channel: Channel): FastifyInstance {
  const bodyLimit = positive('body limit (bytes)', options.bodyLimit ?? DEFAULT_BODY_LIMIT);
  const rateLimit = positive('rate limit (requests a minute)', options.rateLimit ?? DEFAULT_RATE_LIMIT, 0);
  const requestTimeout = positive('request timeout (ms)', options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
  // Node refuses a headers timeout longer than the request timeout; the headers are part of the request anyway.
  const headersTimeout = Math.min(
    positive('headers timeout (ms)', options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS),
    requestTimeout,
  );
  const keepAliveTimeout = positive(
    'keep-alive timeout (ms)',
    options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  );
  const trustProxy = positive('number of trusted proxies', options.trustProxy ?? 0, 0);
  const verifyMaxAgeMs = positive('verify cache age (ms)', options.verifyMaxAgeMs ?? DEFAULT_VERIFY_MAX_AGE_MS, 0);
  // Typed as fastify's base logger so the instance has the plain FastifyInstance type callers expect.
  const logger: FastifyBaseLogger | undefined = options.logger;
  const app = Fastify({
    ...(logger ? { loggerInstance: logger } : { logger: false }),
    bodyLimit,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    ajv: AJV_OPTIONS,
    // A hop count, as a function: trust the addresses of the nearest `trustProxy` proxies and no further.
    trustProxy: trustProxy === 0 ? false : (_address: string, hop: number) => hop < trustProxy,
    // Slow clients: Node closes a connection whose headers or whole request have not arrived in time (408). Node
    // checks only every connectionsCheckingInterval (30 s by default), so check often enough for the bound to hold.
    // No idle socket timeout (connectionTimeout): it would also cut a long admin restore while its handler works.
    requestTimeout,
    keepAliveTimeout,
    http: {
      requestTimeout,
      headersTimeout,
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(headersTimeout / 4))),
    },
    // Errors the router raises before a route is found (a malformed URL, an over-long parameter) skip the error
    // handler unless routed here, and would otherwise answer in fastify's own shape.
    frameworkErrors: (err, request, reply) => handleError(err, request, reply),
    // What Node refuses before there is a request (timeouts, oversized headers, bytes that are not HTTP).
    clientErrorHandler: handleClientError,
    // Routes polled by machines (GET /healthz, GET /metrics) declare `logLevel: 'debug'`: their requests are logged
    // at debug (quietRequests), not at info for every poll.
    logController: new LogController({
      disableRequestLogging: (request) => request.routeOptions?.logLevel === 'debug',
    }),
  });
  quietRequests(app);
  // The API speaks JSON only; fastify's text/plain parser would hand routes a string body.
  app.removeContentTypeParser('text/plain');
  app.decorateRequest('admin', false);
  app.addHook('onRequest', channel.access);
  app.setErrorHandler(handleError);
  app.setNotFoundHandler(handleNotFound);
  registerRateLimit(app, rateLimit);
  // Before the routes: the document is built from the routes fastify registers after it.
  if (channel.openapi) registerOpenApi(app);
  // In a plugin, so that they are added after the rate limiter's onRoute hook is in place (plugins load in order).
  void app.register(async (scope) => {
    registerRoutes(scope, ledger, {
      verifyMaxAgeMs,
      verify: options.verify ?? (() => ledger.verify()),
      fullSaves: channel.fullSaves,
    });
    registerProofRoutes(scope, ledger);
    registerAdminRoutes(scope, ledger);
    registerStatusPage(scope, ledger);
    registerMetricsRoute(scope, ledger);
    channel.routes?.(scope, ledger);
  });
  return app;
}
