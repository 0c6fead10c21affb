import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ConfigError } from '../errors.js';
import { apiError } from './errors.js';

// Only these methods are public; every other method needs the admin token, so a route added later is guarded by default.
const PUBLIC_METHODS = new Set(['GET', 'HEAD']);

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

/**
 * requireAdmin returns an onRequest hook that lets GET and HEAD through (except under /admin) and answers anything else with 401 unless
 * it carries `Authorization: Bearer <adminToken>`. It runs before the body is read, so an unauthenticated caller
 * can make the server neither parse a body nor reveal anything about it. An empty adminToken throws ConfigError.
 */
export function requireAdmin(adminToken: string): (request: FastifyRequest, reply: FastifyReply) => Promise<unknown> {
  if (adminToken.length === 0) {
    // Fail closed: an empty token must never become "any request may change the ledger".
    throw new ConfigError('the admin token (ADMIN_TOKEN) is empty; the HTTP API needs one to guard changes', {
      hint: 'Set ADMIN_TOKEN to a long random string (for example `openssl rand -hex 32`)',
    });
  }
  return async (request, reply) => {
    if (PUBLIC_METHODS.has(request.method) && !request.url.startsWith('/admin')) return undefined;
    const token = bearerToken(request.headers.authorization);
    if (token !== null && tokenMatches(token, adminToken)) return undefined;
    request.log.warn(
      { method: request.method, url: request.url, ip: request.ip },
      token === null ? 'Refused a change without an admin token' : 'Refused a change with a wrong admin token',
    );
    const message = token === null ? 'this request needs Authorization: Bearer <admin token>' : 'the bearer token is not the admin token';
    return reply.code(401).header('www-authenticate', 'Bearer').send(apiError('UNAUTHORIZED', message));
  };
}
