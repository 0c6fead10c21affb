import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import { RateLimitedError } from './errors.js';

/**
 * registerRateLimit limits each client (by address; IPv6 by /64) to `perMinute` requests a minute to public routes,
 * all public routes counting together; over it they are answered 429 RATE_LIMITED with Retry-After. Requests bearing
 * the admin token, routes that are not public, and routes that opt out (`config: { rateLimit: false }`, /healthz)
 * are not counted. `perMinute` 0 turns the limit off. Counters live in memory (an LRU of 5000 clients): a limit per
 * instance, reset by a restart.
 */
export function registerRateLimit(app: FastifyInstance, perMinute: number): void {
  if (perMinute === 0) return;
  void app.register(rateLimit, {
    global: true,
    max: perMinute,
    timeWindow: 60_000,
    // Runs after requireAdmin (an instance hook runs before route hooks), so request.admin is known here.
    allowList: (request) => request.admin || request.routeOptions.config.access !== 'public',
    errorResponseBuilder: (_request, context) =>
      new RateLimitedError(context.max, Math.max(1, Math.ceil(context.ttl / 1000))),
  });
}
