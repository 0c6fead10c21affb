import type { FastifyInstance } from 'fastify';
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
    throw new ValidationError(`${field} must be ${pattern ? 'a backup id' : 'a non-empty string of at most 200 characters'}`, field);
  }
  return v.trim();
}

/**
 * registerAdminRoutes adds the operator's routes (all need the admin token, reads included): list backups,
 * back up by name, restore the newest or a chosen backup (dryRun reports the plan only).
 */
export function registerAdminRoutes(app: FastifyInstance, ledger: Ledger): void {
  app.get('/admin/backups', async () => ({ backups: (await ledger.listBackups()).map(({ seal: _seal, ...r }) => r) }));

  app.post<{ Body: Body }>('/admin/backups', async (request, reply) => {
    const body = object(request.body);
    const name = optionalString(body, 'name') ?? `Manual backup ${new Date().toISOString().slice(0, 19).replace('T', ' ')}`;
    const adminId = body.adminId;
    if (adminId !== undefined && adminId !== null && !Number.isSafeInteger(adminId)) throw new ValidationError('adminId must be an integer', 'adminId');
    return reply.code(201).send({ backup: await ledger.backupToDatabase({ name, adminId: (adminId as number | null | undefined) ?? null }) });
  });

  app.post<{ Body: Body }>('/admin/restore', async (request) => {
    const body = object(request.body);
    const backupId = optionalString(body, 'backupId', /^\d{1,18}$/);
    if (body.dryRun !== undefined && typeof body.dryRun !== 'boolean') throw new ValidationError('dryRun must be true or false', 'dryRun');
    return ledger.restoreFromDatabase({ ...(backupId ? { backupId } : {}), dryRun: body.dryRun === true });
  });
}
