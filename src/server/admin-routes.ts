import type { FastifyInstance } from 'fastify';
import { policyFrom } from '../engine/retention.js';
import { ValidationError } from '../errors.js';
import type { Ledger } from '../service/ledger.js';

type Body = Record<string, unknown> | undefined;

function object(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new ValidationError('the body must be a JSON object', 'body');
  return body as Record<string, unknown>;
}

function optionalString(body: Record<string, unknown>, field: string, pattern?: RegExp): string | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  if (typeof v !== 'string' || v.trim() === '' || v.length > 200 || (pattern && !pattern.test(v))) {
    throw new ValidationError(`${field} must be ${pattern ? `a valid ${field}` : 'a non-empty string of at most 200 characters'}`, field);
  }
  return v.trim();
}

function flag(body: Record<string, unknown>, field: string): boolean {
  const v = body[field];
  if (v !== undefined && typeof v !== 'boolean') throw new ValidationError(`${field} must be true or false`, field);
  return v === true;
}

function tierOf(input: Record<string, unknown>): 'db' | 'ipfs' {
  const t = input.tier;
  if (t === undefined || t === 'db' || t === 'ipfs') return t ?? 'db';
  throw new ValidationError('tier must be db or ipfs', 'tier');
}

/**
 * registerAdminRoutes adds the operator's routes (all need the admin token, reads included): list backups,
 * back up by name, restore the newest or a chosen backup (dryRun reports the plan only), prune by a retention policy
 * (dryRun lists what would go and what stays, and why), protect a backup from pruning.
 */
export function registerAdminRoutes(app: FastifyInstance, ledger: Ledger): void {
  app.get<{ Querystring: Record<string, unknown> }>('/admin/backups', async (request) => ({
    backups: (await ledger.listBackups({ tier: tierOf(request.query) })).map(({ seal: _seal, ...r }) => r),
  }));

  app.post<{ Body: Body }>('/admin/backups', async (request, reply) => {
    const body = object(request.body);
    const name = optionalString(body, 'name') ?? `Manual backup ${new Date().toISOString().slice(0, 19).replace('T', ' ')}`;
    const adminId = body.adminId;
    if (adminId !== undefined && adminId !== null && !Number.isSafeInteger(adminId)) throw new ValidationError('adminId must be an integer', 'adminId');
    const by = (adminId as number | null | undefined) ?? null;
    const protect = flag(body, 'protect');
    if (tierOf(body) === 'ipfs') {
      const cid = await ledger.backupToIpfs({ name, adminId: by, protect });
      return reply.code(201).send({ backup: { id: cid, tier: 'ipfs', name, height: ledger.head.index, headHash: ledger.head.hash, protected: protect } });
    }
    return reply.code(201).send({ backup: { ...(await ledger.backupToDatabase({ name, adminId: by, protect })), protected: protect } });
  });

  app.post<{ Body: Body }>('/admin/backups/prune', async (request) => {
    const body = object(request.body);
    if (body.tier !== undefined && !['db', 'ipfs', 'all'].includes(body.tier as string)) throw new ValidationError('tier must be db, ipfs or all', 'tier');
    const tier = body.tier === undefined || body.tier === 'all' ? 'all' : tierOf(body);
    const policy = policyFrom(body, (rule, message) => new ValidationError(rule ? `${rule} ${message}` : message, rule ?? 'body'));
    return ledger.pruneBackups(policy, { tier, dryRun: flag(body, 'dryRun') });
  });

  app.post<{ Body: Body }>('/admin/backups/protect', async (request) => {
    const body = object(request.body);
    const tier = tierOf(body);
    const id = optionalString(body, 'id', /^[A-Za-z0-9]{1,120}$/);
    if (!id) throw new ValidationError('id is required', 'id');
    const on = body.protected === undefined ? true : flag(body, 'protected');
    await ledger.protectBackup(id, { tier, on });
    return { id, tier, protected: on };
  });

  app.post<{ Body: Body }>('/admin/restore', async (request) => {
    const body = object(request.body);
    if (body.dryRun !== undefined && typeof body.dryRun !== 'boolean') throw new ValidationError('dryRun must be true or false', 'dryRun');
    const cid = optionalString(body, 'cid', /^[A-Za-z0-9]{10,120}$/);
    if (cid || tierOf(body) === 'ipfs') {
      if (!cid) throw new ValidationError('restoring from IPFS needs cid', 'cid');
      return ledger.restoreFromIpfs(cid, { dryRun: body.dryRun === true });
    }
    const backupId = optionalString(body, 'backupId', /^\d{1,18}$/);
    return ledger.restoreFromDatabase({ ...(backupId ? { backupId } : {}), dryRun: body.dryRun === true });
  });
}
