import type { FastifyInstance } from 'fastify';
import { policyFrom } from '../engine/retention.js';
import { ValidationError } from '../errors.js';
import type { Ledger } from '../service/ledger.js';
import { BACKUP_ID_TIER, CID_TIER } from '../tiers/registry.js';
import { RESPONSES } from './response-schemas.js';
import { NO_QUERY, SCHEMAS } from './schemas.js';

// The schemas (schemas.ts) have checked every field's type, range and characters, and refused unknown ones, before a
// handler runs; what is left here is turning the body into the Ledger call. A tier is named, never branched on.
interface BackupBody {
  tier?: string;
  name?: string;
  adminId?: number | null;
  protect?: boolean;
}
interface PruneBody {
  tier?: string;
  dryRun?: boolean;
  [rule: string]: unknown;
}
interface ProtectBody {
  tier?: string;
  id: string | number;
  protected?: boolean;
}
interface RestoreBody {
  tier?: string;
  id?: string | number;
  cid?: string;
  backupId?: string | number;
  dryRun?: boolean;
}

const ADMIN = { access: 'admin' } as const;

/**
 * registerAdminRoutes adds the operator's routes (all need the admin token, reads included): list backups,
 * back up by name, restore the newest or a chosen backup (dryRun reports the plan only), prune by a retention policy
 * (dryRun lists what would go and what stays, and why), protect a backup from pruning. Each takes the tier by name
 * (the first in restore order by default); `cid` is the seed's way to name an IPFS backup, `backupId` a database one.
 */
export function registerAdminRoutes(app: FastifyInstance, ledger: Ledger): void {
  app.get<{ Querystring: { tier?: string } }>(
    '/admin/backups',
    { config: ADMIN, schema: { querystring: SCHEMAS.backupsQuery, response: RESPONSES.backups } },
    async (request) => ({
      backups: (await ledger.listBackups({ ...(request.query.tier ? { tier: request.query.tier } : {}) })).map(
        ({ seal: _seal, ...r }) => r,
      ),
    }),
  );

  app.post<{ Body: BackupBody | null }>(
    '/admin/backups',
    { config: ADMIN, schema: { body: SCHEMAS.backup, querystring: NO_QUERY, response: RESPONSES.backup } },
    async (request, reply) => {
      const body = request.body ?? {};
      const name = body.name?.trim() ?? `Manual backup ${new Date().toISOString().slice(0, 19).replace('T', ' ')}`;
      const backup = await ledger.backup({
        ...(body.tier ? { tier: body.tier } : {}),
        name,
        adminId: body.adminId ?? null,
        protect: body.protect ?? false,
      });
      return reply.code(201).send({ backup });
    },
  );

  app.post<{ Body: PruneBody | null }>(
    '/admin/backups/prune',
    { config: ADMIN, schema: { body: SCHEMAS.prune, querystring: NO_QUERY, response: RESPONSES.prune } },
    async (request) => {
      const { tier = 'all', dryRun = false, ...rules } = request.body ?? {};
      const policy = policyFrom(
        rules,
        (rule, message) => new ValidationError(rule ? `${rule} ${message}` : message, rule ?? 'body'),
      );
      return ledger.pruneBackups(policy, { tier, dryRun });
    },
  );

  app.post<{ Body: ProtectBody }>(
    '/admin/backups/protect',
    { config: ADMIN, schema: { body: SCHEMAS.protect, querystring: NO_QUERY, response: RESPONSES.protect } },
    async (request) => {
      const { protected: on = true } = request.body;
      const id = String(request.body.id);
      await ledger.protectBackup(id, { ...(request.body.tier ? { tier: request.body.tier } : {}), on });
      const tier = request.body.tier ?? ledger.tierNames[0]!;
      return { id, tier, protected: on };
    },
  );

  // The operator's override of a degraded ledger (a full replay contradicted a checkpoint): writes are accepted again.
  app.post(
    '/admin/degraded/clear',
    { config: ADMIN, schema: { body: SCHEMAS.empty, querystring: NO_QUERY, response: RESPONSES.cleared } },
    async () => ({ cleared: ledger.clearDegraded() }),
  );

  // A restore drill runs now, one tier or each in turn (one at a time, however many ask): the report says whether each
  // tier's newest backup restored and replayed in full. A failed drill is a verdict, not an error: ok is false.
  app.post<{ Body: { tier?: string } | null }>(
    '/admin/drill',
    { config: ADMIN, schema: { body: SCHEMAS.drill, querystring: NO_QUERY, response: RESPONSES.drill } },
    async (request) => ledger.drill(request.body?.tier ? { tier: request.body.tier } : {}),
  );

  // Key rotation: re-seal everything still under a previous key now, in bounded steps between saves (a rotation
  // already running is joined); the report says each place's objects by key id and which old keys can go.
  app.post(
    '/admin/rotate-key',
    { config: ADMIN, schema: { body: SCHEMAS.empty, querystring: NO_QUERY, response: RESPONSES.keys } },
    async () => ledger.rotateKey(),
  );
  app.get('/admin/keys', { config: ADMIN, schema: { querystring: NO_QUERY, response: RESPONSES.keys } }, async () =>
    ledger.keyCounts(),
  );

  app.post<{ Body: RestoreBody | null }>(
    '/admin/restore',
    { config: ADMIN, schema: { body: SCHEMAS.restore, querystring: NO_QUERY, response: RESPONSES.restore } },
    async (request) => {
      const { tier, id, cid, backupId, dryRun = false } = request.body ?? {};
      const named = cid ?? id ?? backupId;
      const from = cid !== undefined ? CID_TIER : (tier ?? (backupId !== undefined ? BACKUP_ID_TIER : undefined));
      return ledger.restore({
        ...(from ? { tier: from } : {}),
        ...(named !== undefined ? { id: String(named) } : {}),
        dryRun,
      });
    },
  );
}
