import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { describeError } from '../errors.js';
import type { Ledger } from '../service/ledger.js';
import { publicStatus } from './public-status.js';
import { RESPONSES } from './response-schemas.js';
import { NO_QUERY } from './schemas.js';
import { renderProofCheckPage, renderStatusPage, type StatusView } from './status-html.js';

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

// The proof checker runs the server's own scripts (its module and the verifier it imports) and nothing else: no
// inline script, nothing from elsewhere, nothing fetched, no form sent.
const PROOF_CHECK_HEADERS = {
  ...PAGE_HEADERS,
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

// The checker's module, built beside this file into dist/ (package.json's build copies it).
const PROOF_CHECK_SCRIPT = readFileSync(new URL('./proof-check.js', import.meta.url));

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
 * in-memory status, and only with the token a few backups of each tier. It also adds GET /proof-check, a page of its
 * own that checks a pasted proof in the browser (its module GET /proof-check.js imports GET /proof-verifier.js).
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

  // The proof checker: public, like the proofs themselves; it shows the public root at the head and nothing else.
  app.get(
    '/proof-check',
    { config: { access: 'public' }, schema: { querystring: NO_QUERY, response: RESPONSES.proofCheck } },
    async (_request, reply) => {
      const s = ledger.status();
      const html = renderProofCheckPage({ ledgerId: s.ledgerId, height: s.height, root: s.proofs.root });
      return reply.headers(PROOF_CHECK_HEADERS).type('text/html; charset=utf-8').send(html);
    },
  );

  app.get(
    '/proof-check.js',
    { config: { access: 'public' }, schema: { querystring: NO_QUERY, response: RESPONSES.proofCheckScript } },
    async (_request, reply) =>
      reply
        .type('text/javascript; charset=utf-8')
        .header('x-content-type-options', 'nosniff')
        .header('cache-control', 'public, max-age=300')
        .send(PROOF_CHECK_SCRIPT),
  );
}
