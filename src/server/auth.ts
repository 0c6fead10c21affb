import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ConfigError } from '../errors.js';
import { apiError } from './errors.js';

/**
 * Access is who may call a route, declared in its config (`config: { access: 'public' }`): 'public' routes answer
 * anyone, 'admin' routes only a request bearing the admin token, 'local' routes only the control channel (the same
 * OS user on this machine, control-server.ts), never the HTTP API; 'metrics' routes a request bearing the metrics
 * token (METRICS_TOKEN) when one is set, or the admin token. A route that declares nothing is 'admin'.
 */
export type Access = 'public' | 'admin' | 'local' | 'metrics';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** access is who may call the route; a route without it needs the admin token (see requireAdmin). */
    access?: Access;
  }
  interface FastifyRequest {
    /** admin is true once requireAdmin has seen the admin token on this request. */
    admin: boolean;
  }
}

// Comparing fixed-length digests keeps timingSafeEqual usable (it needs equal lengths) and hides the token's length.
function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** tokenMatches compares a presented token with the expected one by their SHA-256 digests, in constant time. */
export function tokenMatches(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

/** bearerToken extracts the token from an `Authorization: Bearer <token>` header, or returns null. */
export function bearerToken(header: string | undefined): string | null {
  // RFC 7235: the scheme name is case-insensitive.
  const match = /^Bearer +(\S+) *$/i.exec(header ?? '');
  return match ? match[1]! : null;
}

// Who may reach the request's route. The decision rests on the route the router matched (the URL as the router
// decoded it, whatever its spelling: percent-encoding, an absolute-form target), never on the URL string. A request
// that matched no route is answered 404 to reads and treated as admin otherwise, so that an unauthenticated caller
// can neither make the server read a body nor learn which change routes exist.
function accessOf(request: FastifyRequest): Access {
  if (request.is404) return request.method === 'GET' || request.method === 'HEAD' ? 'public' : 'admin';
  const access = request.routeOptions.config.access;
  return access === 'public' || access === 'local' || access === 'metrics' ? access : 'admin';
}

/**
 * requireAdmin returns an onRequest hook that lets requests for public routes through and answers requests for any
 * other route (admin routes, and routes that declare no access: fail closed) with 401 unless they carry
 * `Authorization: Bearer <adminToken>`; it marks requests that do as `request.admin`. It runs before the body is
 * read, so an unauthenticated caller can make the server neither parse a body nor reveal anything about it. An empty
 * adminToken throws ConfigError.
 */
export function requireAdmin(
  adminToken: string,
  metricsToken: string | null = null,
): (request: FastifyRequest, reply: FastifyReply) => Promise<unknown> {
  if (adminToken.length === 0) {
    // Fail closed: an empty token must never become "any request may change the ledger".
    throw new ConfigError('the admin token (ADMIN_TOKEN) is empty; the HTTP API needs one to guard changes', {
      hint: 'Set ADMIN_TOKEN to a long random string (for example `openssl rand -hex 32`)',
    });
  }
  return async (request, reply) => {
    const token = bearerToken(request.headers.authorization);
    request.admin = token !== null && tokenMatches(token, adminToken);
    const access = accessOf(request);
    // Fail closed: a route meant for the control channel answers nobody here, whatever the token.
    if (access === 'local')
      return reply.code(403).send(apiError('FORBIDDEN', 'this route answers only on the control channel'));
    if (request.admin || access === 'public') return undefined;
    if (access === 'metrics' && token !== null && metricsToken && tokenMatches(token, metricsToken)) return undefined;
    request.log.warn(
      { method: request.method, url: request.url, ip: request.ip },
      token === null ? 'Refused a request without an admin token' : 'Refused a request with a wrong admin token',
    );
    const message =
      token === null
        ? 'this request needs Authorization: Bearer <admin token>'
        : 'the bearer token is not the admin token';
    return reply.code(401).header('www-authenticate', 'Bearer').send(apiError('UNAUTHORIZED', message));
  };
}
