import type { FastifyInstance } from 'fastify';
import type { Ledger } from '../service/ledger.js';
import { metricsOf } from '../service/metrics.js';
import { RESPONSES } from './response-schemas.js';
import { NO_QUERY } from './schemas.js';

/**
 * registerMetricsRoute adds GET /metrics, the Prometheus text exposition of service/metrics.ts. Its access is
 * 'metrics': METRICS_TOKEN when set, else the admin token (auth.ts). A scrape reads what the process already knows
 * (no disk, no network): its cost is bounded by the number of tiers.
 */
export function registerMetricsRoute(app: FastifyInstance, ledger: Ledger): void {
  app.get(
    '/metrics',
    // A scraper calls every few seconds: its requests are logged at debug.
    {
      config: { access: 'metrics', rateLimit: false },
      logLevel: 'debug',
      schema: { querystring: NO_QUERY, response: RESPONSES.metrics },
    },
    async (_request, reply) => {
      const registry = metricsOf(ledger);
      return reply.header('content-type', registry.contentType).send(await registry.metrics());
    },
  );
}
