import type { FastifyInstance } from 'fastify';
import { policyFrom } from '../backup/retention.js';
import { ValidationError } from '../errors.js';
import type { Ledger } from '../service/ledger.js';
import { NO_QUERY, SCHEMAS } from './schemas.js';

// The schemas (schemas.ts) have checked every field's type, range and characters, and refused unknown ones, before a
// handler runs; what is left here is turning the body into the Ledger call.
interface BackupBody { tier?: 'db' | 'ipfs'; name?: string; adminId?: number | null; protect?: boolean }
interface PruneBody { tier?: 'db' | 'ipfs' | 'all'; dryRun?: boolean; [rule: string]: unknown }
interface ProtectBody { tier?: 'db' | 'ipfs'; id: string | number; protected?: boolean }
interface RestoreBody { tier?: 'db' | 'ipfs'; cid?: string; backupId?: string | number; dryRun?: boolean }

const ADMIN = { access: 'admin' } as const;

/**
 * registerAdminRoutes adds the operator's routes (all need the admin token, reads included): list backups,
 * back up by name, restore the newest or a chosen backup (dryRun reports the plan only), prune by a retention policy
 * (dryRun lists what would go and what stays, and why), protect a backup from pruning.
 */
export function registerAdminRoutes(app: FastifyInstance, ledger: Ledger): void {
  app.get<{ Querystring: { tier?: 'db' | 'ipfs' } }>('/admin/backups', { config: ADMIN, schema: { querystring: SCHEMAS.backupsQuery } }, async (request) => ({
    backups: (await ledger.listBackups({ tier: request.query.tier ?? 'db' })).map(({ seal: _seal, ...r }) => r),
  }));

  app.post<{ Body: BackupBody | null }>('/admin/backups', { config: ADMIN, schema: { body: SCHEMAS.backup, querystring: NO_QUERY } }, async (request, reply) => {
    const body = request.body ?? {};
    const name = body.name?.trim() ?? `Manual backup ${new Date().toISOString().slice(0, 19).replace('T', ' ')}`;
    const adminId = body.adminId ?? null;
    const protect = body.protect ?? false;
    if (body.tier === 'ipfs') {
      const cid = await ledger.backupToIpfs({ name, adminId, protect });
      return reply.code(201).send({ backup: { id: cid, tier: 'ipfs', name, height: ledger.head.index, headHash: ledger.head.hash, protected: protect } });
    }
    return reply.code(201).send({ backup: { ...(await ledger.backupToDatabase({ name, adminId, protect })), protected: protect } });
  });

  app.post<{ Body: PruneBody | null }>('/admin/backups/prune', { config: ADMIN, schema: { body: SCHEMAS.prune, querystring: NO_QUERY } }, async (request) => {
    const { tier = 'all', dryRun = false, ...rules } = request.body ?? {};
    const policy = policyFrom(rules, (rule, message) => new ValidationError(rule ? `${rule} ${message}` : message, rule ?? 'body'));
    return ledger.pruneBackups(policy, { tier, dryRun });
  });

  app.post<{ Body: ProtectBody }>('/admin/backups/protect', { config: ADMIN, schema: { body: SCHEMAS.protect, querystring: NO_QUERY } }, async (request) => {
    const { tier = 'db', protected: on = true } = request.body;
    const id = String(request.body.id);
    await ledger.protectBackup(id, { tier, on });
    return { id, tier, protected: on };
  });

  app.post<{ Body: RestoreBody | null }>('/admin/restore', { config: ADMIN, schema: { body: SCHEMAS.restore, querystring: NO_QUERY } }, async (request) => {
    const { tier, cid, backupId, dryRun = false } = request.body ?? {};
    if (cid !== undefined) return ledger.restoreFromIpfs(cid, { dryRun });
    if (tier === 'ipfs') throw new ValidationError('restoring from IPFS needs cid', 'cid');
    return ledger.restoreFromDatabase({ ...(backupId !== undefined ? { backupId: String(backupId) } : {}), dryRun });
  });
}
