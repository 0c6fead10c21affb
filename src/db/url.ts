import type { ConnectionOptions } from 'node:tls';
import { ConfigError } from '../errors.js';

/** redactUrl hides a connection URL's password (and any password or key in its query string). */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = '***';
    for (const k of [...u.searchParams.keys()]) {
      if (/pass|secret|key|token/i.test(k)) u.searchParams.set(k, '***');
    }
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** PgTarget is a parsed DATABASE_URL: what node-postgres needs, and a redacted label for logs. */
export interface PgTarget {
  connectionString: string;
  ssl: false | ConnectionOptions;
  label: string;
}

/**
 * parseDatabaseUrl checks DATABASE_URL and maps its sslmode as libpq does: disable (or none) means plain TCP,
 * require/prefer/no-verify encrypt without checking the certificate (Render's external URLs), verify-ca and
 * verify-full check it.
 */
export function parseDatabaseUrl(raw: string): PgTarget {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError('DATABASE_URL is not a URL', { hint: 'Use postgresql://USER:PASSWORD@HOST:PORT/DATABASE' });
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new ConfigError(`DATABASE_URL has scheme ${u.protocol}, expected postgresql:`, {
      hint: 'Use postgresql://USER:PASSWORD@HOST:PORT/DATABASE',
    });
  }
  if (!u.hostname) throw new ConfigError('DATABASE_URL names no host');
  const mode = u.searchParams.get('sslmode') ?? (u.searchParams.get('ssl') === 'true' ? 'require' : 'disable');
  u.searchParams.delete('sslmode');
  u.searchParams.delete('ssl');
  let ssl: false | ConnectionOptions;
  if (mode === 'disable' || mode === 'allow') ssl = false;
  else if (mode === 'require' || mode === 'prefer' || mode === 'no-verify') ssl = { rejectUnauthorized: false };
  else if (mode === 'verify-ca' || mode === 'verify-full') ssl = { rejectUnauthorized: true };
  else throw new ConfigError(`DATABASE_URL has unknown sslmode ${JSON.stringify(mode)}`);
  return { connectionString: u.toString(), ssl, label: redactUrl(raw) };
}
