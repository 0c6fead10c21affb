/**
 * The HTTP server's defaults and the env vars that override them, in one place so that buildServer, the
 * configuration (config.ts calls httpLimits) and docs/SECURITY.md agree. This file imports nothing: config.ts may
 * import it without pulling in fastify.
 */

/** DEFAULT_BODY_LIMIT is the largest request body accepted: well above the ledger's own limits on a transaction. */
export const DEFAULT_BODY_LIMIT = 64 * 1024;

/**
 * DEFAULT_RATE_LIMIT is how many public reads one client may make a minute (LEDGER_RATE_LIMIT; 0 turns the limit
 * off). A dashboard polling every second uses 60; a client paging the whole chain 1000 blocks at a time stays under
 * it up to 300,000 blocks a minute.
 */
export const DEFAULT_RATE_LIMIT = 300;

/**
 * DEFAULT_REQUEST_TIMEOUT_MS bounds receiving one whole request, headers and body (LEDGER_REQUEST_TIMEOUT_MS): a
 * client that stops sending half-way (slowloris) loses the connection then. 64 KiB at dial-up speed takes 10 s.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** DEFAULT_HEADERS_TIMEOUT_MS bounds receiving a request's headers (LEDGER_HEADERS_TIMEOUT_MS); at most the request timeout. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;

/**
 * DEFAULT_KEEP_ALIVE_TIMEOUT_MS is how long an idle keep-alive connection stays open (LEDGER_KEEP_ALIVE_TIMEOUT_MS):
 * fastify's default, longer than the 60 s idle timeout of common load balancers so that they, not we, close first.
 */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 72_000;

/**
 * DEFAULT_VERIFY_MAX_AGE_MS is how long GET /chain/verify reuses a result for an unchanged head before verifying
 * again: damage to stored blocks at rest shows within this long, and no caller can make verifications more frequent.
 */
export const DEFAULT_VERIFY_MAX_AGE_MS = 10 * 60_000;

/** MAX_PARAM_LENGTH is the longest path parameter the router accepts (longer answers 414); property ids may be 128. */
export const MAX_PARAM_LENGTH = 256;

/** MAX_CHAIN_LIMIT is the largest page GET /chain serves; the Ledger caps its pages at the same size. */
export const MAX_CHAIN_LIMIT = 1000;

/** DEFAULT_CHAIN_LIMIT is GET /chain's page size when the caller gives none. */
export const DEFAULT_CHAIN_LIMIT = 100;

/** HttpLimits are the server limits an operator sets through the environment (ServerOptions has the same names). */
export interface HttpLimits {
  rateLimit: number;
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  trustProxy: number;
}

/**
 * httpLimits reads the HTTP server's env vars through `int` (config.ts's reader: a bad value throws ConfigError
 * naming the variable, an unset one takes the default): LEDGER_RATE_LIMIT, LEDGER_REQUEST_TIMEOUT_MS,
 * LEDGER_HEADERS_TIMEOUT_MS, LEDGER_KEEP_ALIVE_TIMEOUT_MS and LEDGER_TRUST_PROXY. On Render (`onRender`) every
 * request comes through Render's proxy, which appends the client's address to X-Forwarded-For: trusting that one
 * hop by default keeps the rate limit per client instead of one limit shared by everyone.
 */
export function httpLimits(
  int: (name: string, fallback: number, min: number, max: number) => number,
  onRender = false,
): HttpLimits {
  return {
    rateLimit: int('LEDGER_RATE_LIMIT', DEFAULT_RATE_LIMIT, 0, 1_000_000),
    requestTimeoutMs: int('LEDGER_REQUEST_TIMEOUT_MS', DEFAULT_REQUEST_TIMEOUT_MS, 1000, 3_600_000),
    headersTimeoutMs: int('LEDGER_HEADERS_TIMEOUT_MS', DEFAULT_HEADERS_TIMEOUT_MS, 1000, 3_600_000),
    keepAliveTimeoutMs: int('LEDGER_KEEP_ALIVE_TIMEOUT_MS', DEFAULT_KEEP_ALIVE_TIMEOUT_MS, 1000, 3_600_000),
    trustProxy: int('LEDGER_TRUST_PROXY', onRender ? 1 : 0, 0, 10),
  };
}
