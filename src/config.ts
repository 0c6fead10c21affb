import { ConfigError } from './errors.js';

/** DatabaseConfig selects the PostgreSQL tier: a real server, the embedded PGlite, or none. */
export type DatabaseConfig = { kind: 'postgres'; url: string } | { kind: 'pglite'; dir: string } | { kind: 'off' };

/** Config is pawledger's configuration, read once from the environment. */
export interface Config {
  /** dataDir is the local store's folder (LEDGER_DATA_DIR). @default ./blocks */
  dataDir: string;
  /** encryptionKey is LEDGER_ENCRYPTION_KEY as given (never logged). */
  encryptionKey: string | undefined;
  /** segmentBytes is the local store's segment size (LEDGER_SEGMENT_BYTES). @default 8 MiB */
  segmentBytes: number;
  /** onRender is true when RENDER=true: the disk is ephemeral, so generated keys are refused. */
  onRender: boolean;
  /** remoteTiers lists the configured tiers that keep data off this machine (a key must then be set). */
  remoteTiers: string[];
  /** database is DATABASE_URL (a server), else PGlite in LEDGER_DB_DIR (default ./.pawledger/db), or LEDGER_DB=off. */
  database: DatabaseConfig;
  /** dbTimeoutMs bounds connecting and each statement (PG_TIMEOUT_MS). @default 5000 */
  dbTimeoutMs: number;
  /** retryMs is the first delay before a lagging tier is caught up again; it doubles up to 30 s (LEDGER_RETRY_MS). @default 1000 */
  retryMs: number;
  host: string;
  port: number;
  /** adminToken guards mutations (ADMIN_TOKEN). */
  adminToken: string | undefined;
  logFormat: 'json' | 'pretty';
  logLevel: string;
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** loadConfig reads the environment; bad values throw ConfigError naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const onRender = env.RENDER === 'true';
  const remoteTiers: string[] = [];
  if (env.DATABASE_URL) remoteTiers.push('PostgreSQL (DATABASE_URL)');
  if (env.PINATA_API_KEY || env.PINATA_JWT) remoteTiers.push('Pinata (PINATA_*)');
  if (env.IPFS_API_URL) remoteTiers.push('Kubo (IPFS_API_URL)');
  const logFormat = env.LOG_FORMAT === 'pretty' || (env.LOG_FORMAT === undefined && process.stdout.isTTY) ? 'pretty' : 'json';
  if (env.LOG_FORMAT && !['json', 'pretty'].includes(env.LOG_FORMAT)) {
    throw new ConfigError(`LOG_FORMAT must be json or pretty, got ${JSON.stringify(env.LOG_FORMAT)}`);
  }
  if (env.LEDGER_DB && !['off', 'embedded'].includes(env.LEDGER_DB)) {
    throw new ConfigError(`LEDGER_DB must be off or embedded, got ${JSON.stringify(env.LEDGER_DB)}`);
  }
  const database: DatabaseConfig = env.DATABASE_URL
    ? { kind: 'postgres', url: env.DATABASE_URL }
    : env.LEDGER_DB === 'off'
      ? { kind: 'off' }
      : { kind: 'pglite', dir: env.LEDGER_DB_DIR || './.pawledger/db' };
  return {
    dataDir: env.LEDGER_DATA_DIR || './blocks',
    database,
    dbTimeoutMs: int(env, 'PG_TIMEOUT_MS', 5000, 100, 600_000),
    retryMs: int(env, 'LEDGER_RETRY_MS', 1000, 10, 600_000),
    encryptionKey: env.LEDGER_ENCRYPTION_KEY || undefined,
    segmentBytes: int(env, 'LEDGER_SEGMENT_BYTES', 8 * 1024 * 1024, 4096, 1024 * 1024 * 1024),
    onRender,
    remoteTiers,
    host: env.HOST || (onRender ? '0.0.0.0' : '127.0.0.1'),
    port: int(env, 'PORT', 3000, 0, 65535),
    adminToken: env.ADMIN_TOKEN || undefined,
    logFormat,
    logLevel: env.LOG_LEVEL || 'info',
  };
}
