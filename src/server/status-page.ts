import type { FastifyInstance, FastifyRequest } from 'fastify';
import { describeError } from '../errors.js';
import type { Ledger } from '../service/ledger.js';
import { publicStatus } from './public-status.js';
import { RESPONSES } from './response-schemas.js';
import { NO_QUERY } from './schemas.js';
import { renderStatusPage, type StatusView } from './status-html.js';

/** STATUS_PAGE_REFRESH_SECONDS is how often the status page reloads itself. */
export const STATUS_PAGE_REFRESH_SECONDS = 10;

/** STATUS_PAGE_BACKUPS is how many of each tier's newest backups the page lists (with the token). */
export const STATUS_PAGE_BACKUPS = 5;

// The page is a document of its own: nothing runs, nothing loads from elsewhere, no one frames it.
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

function wantsHtml(request: FastifyRequest): boolean {
  return /\btext\/html\b/i.test(request.headers.accept ?? '');
}

async function recentBackups(ledger: Ledger): Promise<NonNullable<StatusView['backups']>> {
  return Promise.all(
    ledger.tierNames.map(async (tier) => {
      try {
        const records = await ledger.listBackups({ tier, limit: STATUS_PAGE_BACKUPS, allLedgers: false });
        return { tier, rows: records.slice(0, STATUS_PAGE_BACKUPS) };
      } catch (err) {
        return { tier, rows: [], error: `could not list: ${describeError(err)}` };
      }
    }),
  );
}

/**
 * registerStatusPage adds GET /: for a browser (Accept: text/html) the status page (status-html.ts), otherwise the
 * same JSON as GET /status. It follows /status's rule: without the admin token the public view only (publicStatus:
 * no infrastructure), with it the full status and each tier's newest backups. A public read of bounded cost: the
 * in-memory status, and only with the token a few backups of each tier.
 */
export function registerStatusPage(app: FastifyInstance, ledger: Ledger): void {
  app.get(
    '/',
    { config: { access: 'public' }, schema: { querystring: NO_QUERY, response: RESPONSES.page } },
    async (request, reply) => {
      const full = ledger.status();
      const status = request.admin ? full : publicStatus(full);
      if (!wantsHtml(request)) return status;
      const view: StatusView = {
        status,
        backups: request.admin ? await recentBackups(ledger) : null,
        refreshSeconds: STATUS_PAGE_REFRESH_SECONDS,
        now: new Date(),
      };
      return reply.headers(PAGE_HEADERS).type('text/html; charset=utf-8').send(renderStatusPage(view));
    },
  );
}
