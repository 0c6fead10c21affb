import { parseRetention, type RetentionPolicy } from './engine/retention.js';
import { ConfigError } from './errors.js';
import { parseDuration } from './util/duration.js';
import { DEFAULT_SYNC_TIERS, LEASE_TIER, LOCAL, TIER_NAMES } from './tiers/registry.js';
import { httpLimits, type HttpLimits } from './util/http-limits.js';
import { PROGRESS_LOG_EVERY_MS } from './util/progress.js';

/** DatabaseConfig selects the PostgreSQL tier: a real server, the embedded PGlite, or none. */
export type DatabaseConfig = { kind: 'postgres'; url: string } | { kind: 'pglite'; dir: string } | { kind: 'off' };

/** IpfsConfig selects the IPFS provider: Pinata, a Kubo node, an embedded blockstore, or none. */
export type IpfsConfig =
  | { kind: 'off' }
  | { kind: 'embedded'; dir: string }
  | { kind: 'kubo'; apiUrl: string }
  | {
      kind: 'pinata';
      apiUrl: string;
      gatewayUrl: string;
      gatewayToken?: string;
      auth: { jwt: string } | { apiKey: string; secretKey: string };
    };

/** S3Config places the s3 tier: a bucket on AWS S3 or an S3-compatible service (R2, B2, MinIO). Keys come from the SDK's chain. */
export interface S3Config {
  bucket: string;
  /** prefix is put before every key (S3_PREFIX). @default '' */
  prefix: string;
  /** endpoint is the service's URL (S3_ENDPOINT), or null for AWS S3. */
  endpoint: string | null;
  /** region signs requests (S3_REGION, else AWS_REGION): `auto` on R2, the endpoint's region on B2. @default us-east-1 */
  region: string;
  /** forcePathStyle puts the bucket in the path (S3_FORCE_PATH_STYLE). @default true when S3_ENDPOINT is set */
  forcePathStyle: boolean;
}

/** RenderConfig lets the newest IPFS CID be kept in a Render env var (LEDGER_LATEST_CID). */
export interface RenderConfig {
  apiKey: string;
  serviceId: string;
  apiUrl: string;
}

/** Config is pawledger's configuration, read once from the environment. */
export interface Config {
  /** dataDir is the local store's folder (LEDGER_DATA_DIR). @default ./blocks */
  dataDir: string;
  /** encryptionKey is LEDGER_ENCRYPTION_KEY as given (never logged). */
  encryptionKey: string | undefined;
  /** previousKeys is LEDGER_PREVIOUS_KEYS as given: comma-separated keys that may still open older objects (never logged). */
  previousKeys: string | undefined;
  /**
   * rotateBatch is how many objects one step of a key rotation re-seals (LEDGER_ROTATE_BATCH): a save waits behind one
   * step at most. @default 500
   */
  rotateBatch: number;
  /** segmentBytes is the local store's segment size (LEDGER_SEGMENT_BYTES). @default 8 MiB */
  segmentBytes: number;
  /**
   * packBytes is how many bytes of settled blocks one pack gathers (LEDGER_PACK_BYTES; 0 turns compaction off).
   * @default 512 KiB
   */
  packBytes: number;
  /** packKeepLoose is how many of the newest blocks stay loose, never packed (LEDGER_PACK_KEEP_LOOSE). @default 256 */
  packKeepLoose: number;
  /**
   * checkpointBlocks is the most blocks between checkpoints of the world state (LEDGER_CHECKPOINT_BLOCKS; 0 turns
   * them off): a restore replays only the blocks after the newest. @default 1000
   */
  checkpointBlocks: number;
  /** onRender is true when RENDER=true: the disk is ephemeral, so generated keys are refused. */
  onRender: boolean;
  /** remoteTiers lists the configured tiers that keep data off this machine (a key must then be set). */
  remoteTiers: string[];
  /** database is DATABASE_URL (a server), else PGlite in LEDGER_DB_DIR (default ./.pawledger/db), or LEDGER_DB=off. */
  database: DatabaseConfig;
  /** ipfs is the IPFS provider: IPFS_PROVIDER names one, else Pinata keys, else IPFS_API_URL, else off. */
  ipfs: IpfsConfig;
  /** render is set when RENDER_API_KEY and RENDER_SERVICE_ID are. */
  render: RenderConfig | null;
  /** backupDir is the dir tier's folder (LEDGER_BACKUP_DIR, e.g. a Render persistent disk or an NFS mount), or null. */
  backupDir: string | null;
  /** s3 is the s3 tier's bucket (S3_BUCKET turns it on), or null. */
  s3: S3Config | null;
  /**
   * tierOrder is the restore priority (LEDGER_TIER_ORDER): tier names and `local`, first tried first; tiers left out
   * follow in the default order, the local store last. @default db,s3,ipfs,dir,local
   */
  tierOrder: string[];
  /** syncTiers are the tiers a save waits for (LEDGER_SYNC_TIERS); the others catch up in the background. @default db */
  syncTiers: string[];
  /** sourceTimeoutMs cuts off a restore source that does not answer or stops sending (LEDGER_SOURCE_TIMEOUT_MS). @default 30000 */
  sourceTimeoutMs: number;
  /** ipfsDebounceMs is how long a save waits for company before an IPFS upload starts (IPFS_DEBOUNCE_MS). @default 500 */
  ipfsDebounceMs: number;
  /** dbTimeoutMs bounds connecting to the database (PG_TIMEOUT_MS). @default 5000 */
  dbTimeoutMs: number;
  /**
   * tierTimeoutMs is how long a save waits for a tier it waits for (and each database statement may run) before the
   * tier counts as not answering: the save goes on without it, and it is probed and caught up in the background
   * (LEDGER_TIER_TIMEOUT_MS). @default the smaller of PG_TIMEOUT_MS and 2000
   */
  tierTimeoutMs: number;
  /**
   * dbKeepAliveMs is how long a database connection may sit silent before TCP keepalive probes start asking whether
   * the server is still there, so a peer that vanished (a host gone, a cut cable) is found on an idle connection
   * (LEDGER_DB_KEEPALIVE_MS; whole seconds reach the socket). @default 1000
   */
  dbKeepAliveMs: number;
  /** retryMs is the first delay before a lagging tier is caught up again; it doubles up to 30 s (LEDGER_RETRY_MS). @default 1000 */
  retryMs: number;
  /** retention is LEDGER_RETENTION ("keep-last=50,keep-daily=30,older-than=90d"): the server prunes by it, or null. */
  retention: RetentionPolicy | null;
  /** retentionIntervalMs is how often the server prunes by `retention` (LEDGER_RETENTION_INTERVAL_MS). @default 6 h */
  retentionIntervalMs: number;
  /**
   * lease makes this instance take the writer lease in the database before it writes (LEDGER_LEASE=on|off|auto; auto,
   * the default, is on when RENDER=true and DATABASE_URL is set): one writer across overlapping deploys, each save
   * committed to the database before it is acknowledged. Needs DATABASE_URL.
   */
  lease: boolean;
  /** leaseTtlMs is how long a lease lasts unrenewed: a crashed holder's successor waits this long (LEDGER_LEASE_TTL_MS). @default 15000 */
  leaseTtlMs: number;
  /** followMs is how often an instance without the lease polls the database for new blocks and a free lease (LEDGER_FOLLOW_MS). @default 1000 */
  followMs: number;
  /**
   * controlTimeoutMs is how long the CLI waits for a running server to answer on its control channel before saying it
   * is unresponsive (LEDGER_CONTROL_TIMEOUT_MS); during a long change, how long each heartbeat may go unanswered.
   * @default 10000
   */
  controlTimeoutMs: number;
  /** progressLogMs is how often serve logs the progress of a long task, such as a startup restore (LEDGER_PROGRESS_LOG_MS). @default 5000 */
  progressLogMs: number;
  host: string;
  port: number;
  /** adminToken guards mutations (ADMIN_TOKEN). */
  adminToken: string | undefined;
  /** http holds the HTTP server's limits (LEDGER_RATE_LIMIT, LEDGER_*_TIMEOUT_MS, LEDGER_TRUST_PROXY): docs/SECURITY.md. */
  http: HttpLimits;
  logFormat: 'json' | 'pretty';
  logLevel: string;
  /**
   * logSaves samples the per-save lines under load: the first `perWindow` of each `windowMs` at info, the others at
   * debug, summarized at info (LOG_SAVE_LINES, default 10; LOG_SUMMARY_INTERVAL, default 10s).
   */
  logSaves: { perWindow: number; windowMs: number };
  /** assurance holds the restore drills, freshness limits, metrics and alerts (README "Monitoring"). */
  assurance: AssuranceConfig;
}

/** AssuranceConfig says how serve proves its backups and tells operators (README "Monitoring"). */
export interface AssuranceConfig {
  /** drillIntervalMs is how often serve drills every tier (LEDGER_DRILL_INTERVAL, e.g. 6h, 30m; 0 is off). @default 6 h */
  drillIntervalMs: number;
  /** drillFirstMs is how long after start the first drill runs (LEDGER_DRILL_FIRST). @default 5 min */
  drillFirstMs: number;
  /** drillKeep is how many drill records are kept (LEDGER_DRILL_KEEP). @default 200 */
  drillKeep: number;
  /** maxLagBlocks marks a tier stale when its newest backup is this many blocks behind (LEDGER_MAX_LAG_BLOCKS; 0 off). @default 1000 */
  maxLagBlocks: number;
  /** maxLagSeconds marks a tier stale when it has lacked a block this long (LEDGER_MAX_LAG_SECONDS; 0 off). @default 3600 */
  maxLagSeconds: number;
  /** metricsToken guards GET /metrics (METRICS_TOKEN); without it, the admin token does. */
  metricsToken: string | null;
  /** alertWebhookUrl receives alerts as JSON POSTs (LEDGER_ALERT_WEBHOOK_URL), or null for none. */
  alertWebhookUrl: string | null;
  /** alertFailingMs is how long a tier may fail before it is an incident (LEDGER_ALERT_FAILING_AFTER). @default 10 min */
  alertFailingMs: number;
  /** alertCheckMs is how often incidents are looked for (LEDGER_ALERT_CHECK_INTERVAL). @default 15 s */
  alertCheckMs: number;
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
  if (env.S3_BUCKET?.trim()) remoteTiers.push('S3 (S3_BUCKET)');
  const logFormat =
    env.LOG_FORMAT === 'pretty' || (env.LOG_FORMAT === undefined && process.stdout.isTTY) ? 'pretty' : 'json';
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
  const leaseMode = env.LEDGER_LEASE || 'auto';
  if (!['on', 'off', 'auto'].includes(leaseMode))
    throw new ConfigError(`LEDGER_LEASE must be on, off or auto, got ${JSON.stringify(leaseMode)}`);
  if (
    leaseMode === 'on' &&
    env.LEDGER_SYNC_TIERS !== undefined &&
    !env.LEDGER_SYNC_TIERS.split(',')
      .map((n) => n.trim())
      .includes(LEASE_TIER)
  ) {
    throw new ConfigError(
      'LEDGER_LEASE=on needs the database among LEDGER_SYNC_TIERS: a save must be in the database before it is acknowledged',
    );
  }
  if (leaseMode === 'on' && database.kind !== 'postgres') {
    throw new ConfigError('LEDGER_LEASE=on needs DATABASE_URL: the lease lives in the shared PostgreSQL database', {
      hint: "Without DATABASE_URL the data folder's LOCK file already keeps to one writer per machine; unset LEDGER_LEASE",
    });
  }
  return {
    dataDir: env.LEDGER_DATA_DIR || './blocks',
    lease: leaseMode === 'on' || (leaseMode === 'auto' && onRender && database.kind === 'postgres'),
    leaseTtlMs: int(env, 'LEDGER_LEASE_TTL_MS', 15_000, 1000, 600_000),
    followMs: int(env, 'LEDGER_FOLLOW_MS', 1000, 50, 600_000),
    controlTimeoutMs: int(env, 'LEDGER_CONTROL_TIMEOUT_MS', 10_000, 100, 600_000),
    database,
    ipfs: ipfsConfig(env),
    backupDir: env.LEDGER_BACKUP_DIR?.trim() || null,
    s3: s3Config(env),
    tierOrder: tierList(env, 'LEDGER_TIER_ORDER', [...TIER_NAMES, LOCAL], true),
    syncTiers: tierList(env, 'LEDGER_SYNC_TIERS', [...DEFAULT_SYNC_TIERS], false),
    render:
      env.RENDER_API_KEY && env.RENDER_SERVICE_ID
        ? {
            apiKey: env.RENDER_API_KEY,
            serviceId: env.RENDER_SERVICE_ID,
            apiUrl: env.RENDER_API_URL || 'https://api.render.com/v1',
          }
        : null,
    ipfsDebounceMs: int(env, 'IPFS_DEBOUNCE_MS', 500, 0, 600_000),
    sourceTimeoutMs: int(env, 'LEDGER_SOURCE_TIMEOUT_MS', 30_000, 100, 3_600_000),
    dbTimeoutMs: int(env, 'PG_TIMEOUT_MS', 5000, 100, 600_000),
    tierTimeoutMs: int(
      env,
      'LEDGER_TIER_TIMEOUT_MS',
      Math.min(2000, int(env, 'PG_TIMEOUT_MS', 5000, 100, 600_000)),
      100,
      600_000,
    ),
    dbKeepAliveMs: int(env, 'LEDGER_DB_KEEPALIVE_MS', 1000, 1000, 3_600_000),
    retryMs: int(env, 'LEDGER_RETRY_MS', 1000, 10, 600_000),
    retention: env.LEDGER_RETENTION?.trim() ? parseRetention(env.LEDGER_RETENTION) : null,
    retentionIntervalMs: int(env, 'LEDGER_RETENTION_INTERVAL_MS', 6 * 3_600_000, 1000, 30 * 86_400_000),
    encryptionKey: env.LEDGER_ENCRYPTION_KEY || undefined,
    previousKeys: env.LEDGER_PREVIOUS_KEYS?.trim() || undefined,
    rotateBatch: int(env, 'LEDGER_ROTATE_BATCH', 500, 1, 100_000),
    segmentBytes: int(env, 'LEDGER_SEGMENT_BYTES', 8 * 1024 * 1024, 4096, 1024 * 1024 * 1024),
    packBytes: int(env, 'LEDGER_PACK_BYTES', 512 * 1024, 0, 64 * 1024 * 1024),
    packKeepLoose: int(env, 'LEDGER_PACK_KEEP_LOOSE', 256, 0, 10_000_000),
    checkpointBlocks: int(env, 'LEDGER_CHECKPOINT_BLOCKS', 1000, 0, 100_000_000),
    onRender,
    remoteTiers,
    host: env.HOST || (onRender ? '0.0.0.0' : '127.0.0.1'),
    port: int(env, 'PORT', 3000, 0, 65535),
    progressLogMs: int(env, 'LEDGER_PROGRESS_LOG_MS', PROGRESS_LOG_EVERY_MS, 1, 3_600_000),
    adminToken: env.ADMIN_TOKEN || undefined,
    http: httpLimits((name, fallback, min, max) => int(env, name, fallback, min, max), onRender),
    logFormat,
    logLevel: env.LOG_LEVEL || 'info',
    assurance: assuranceConfig(env),
    logSaves: {
      perWindow: int(env, 'LOG_SAVE_LINES', 10, 0, 1_000_000),
      windowMs: duration(env, 'LOG_SUMMARY_INTERVAL', 10_000, 1000, 86_400_000) || 10_000,
    },
  };
}

// A duration variable (6h, 30m, 45s, 500ms, a bare number of seconds) within [min, max] milliseconds, 0 allowed.
function duration(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const ms = parseDuration(raw);
  if (ms === null || (ms !== 0 && (ms < min || ms > max)))
    throw new ConfigError(
      `${name} must be 0 or a duration from ${min / 1000} s to ${max / 86_400_000} days such as 6h, 30m or 45s, got ${JSON.stringify(raw)}`,
    );
  return ms;
}

function assuranceConfig(env: NodeJS.ProcessEnv): AssuranceConfig {
  const url = env.LEDGER_ALERT_WEBHOOK_URL?.trim() || null;
  if (url !== null) {
    let parsed: URL | null = null;
    try {
      parsed = new URL(url);
    } catch {}
    if (!parsed || !['http:', 'https:'].includes(parsed.protocol))
      // The URL itself may hold a secret (Slack's do): never repeat it.
      throw new ConfigError('LEDGER_ALERT_WEBHOOK_URL must be an http or https URL');
  }
  return {
    drillIntervalMs: duration(env, 'LEDGER_DRILL_INTERVAL', 6 * 3_600_000, 60_000, 30 * 86_400_000),
    drillFirstMs: duration(env, 'LEDGER_DRILL_FIRST', 5 * 60_000, 1, 30 * 86_400_000),
    drillKeep: int(env, 'LEDGER_DRILL_KEEP', 200, 1, 100_000),
    maxLagBlocks: int(env, 'LEDGER_MAX_LAG_BLOCKS', 1000, 0, Number.MAX_SAFE_INTEGER),
    maxLagSeconds: int(env, 'LEDGER_MAX_LAG_SECONDS', 3600, 0, 365 * 86_400),
    metricsToken: env.METRICS_TOKEN || null,
    alertWebhookUrl: url,
    alertFailingMs: duration(env, 'LEDGER_ALERT_FAILING_AFTER', 10 * 60_000, 1, 30 * 86_400_000),
    alertCheckMs: duration(env, 'LEDGER_ALERT_CHECK_INTERVAL', 15_000, 10, 86_400_000),
  };
}

// A comma-separated list of tier names (and, for the order, `local`). In an order, names left out follow in the
// default order, so LEDGER_TIER_ORDER=ipfs means "IPFS first, then as usual".
function tierList(env: NodeJS.ProcessEnv, name: string, fallback: string[], order: boolean): string[] {
  const raw = env[name];
  if (raw === undefined) return fallback;
  const names = raw
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  const known = order ? [...TIER_NAMES, LOCAL] : TIER_NAMES;
  for (const n of names) {
    if (!known.includes(n))
      throw new ConfigError(`${name} names ${JSON.stringify(n)}, which is not one of ${known.join(', ')}`);
  }
  if (new Set(names).size !== names.length) throw new ConfigError(`${name} names a tier twice: ${raw}`);
  return order ? [...names, ...fallback.filter((n) => !names.includes(n))] : names;
}

function s3Config(env: NodeJS.ProcessEnv): S3Config | null {
  const bucket = env.S3_BUCKET?.trim();
  if (!bucket) return null;
  const endpoint = env.S3_ENDPOINT?.trim() || null;
  const pathStyle = env.S3_FORCE_PATH_STYLE?.trim().toLowerCase();
  if (pathStyle && !['true', 'false', '1', '0'].includes(pathStyle))
    throw new ConfigError(`S3_FORCE_PATH_STYLE must be true or false, got ${JSON.stringify(env.S3_FORCE_PATH_STYLE)}`);
  return {
    bucket,
    prefix: env.S3_PREFIX?.trim() ?? '',
    endpoint,
    region: env.S3_REGION?.trim() || env.AWS_REGION?.trim() || 'us-east-1',
    // Most S3-compatible services take the bucket in the path (MinIO needs it); AWS prefers it in the host name.
    forcePathStyle: pathStyle ? pathStyle === 'true' || pathStyle === '1' : endpoint !== null,
  };
}

function ipfsConfig(env: NodeJS.ProcessEnv): IpfsConfig {
  const pinata = Boolean(env.PINATA_JWT || (env.PINATA_API_KEY && env.PINATA_SECRET_KEY));
  const kind = env.IPFS_PROVIDER || (pinata ? 'pinata' : env.IPFS_API_URL ? 'kubo' : 'off');
  switch (kind) {
    case 'off':
      return { kind };
    case 'embedded':
      return { kind, dir: env.IPFS_EMBEDDED_DIR || './.pawledger/ipfs' };
    case 'kubo':
      return { kind, apiUrl: env.IPFS_API_URL || 'http://127.0.0.1:5001/api/v0' };
    case 'pinata': {
      if (!pinata) {
        throw new ConfigError('IPFS_PROVIDER=pinata needs PINATA_JWT, or PINATA_API_KEY and PINATA_SECRET_KEY', {
          hint: 'Create a key with pinFileToIPFS permission in the Pinata dashboard',
        });
      }
      return {
        kind,
        apiUrl: env.PINATA_API_URL || 'https://api.pinata.cloud',
        gatewayUrl: env.PINATA_GATEWAY_URL || 'https://gateway.pinata.cloud',
        ...(env.PINATA_GATEWAY_TOKEN ? { gatewayToken: env.PINATA_GATEWAY_TOKEN } : {}),
        auth: env.PINATA_JWT
          ? { jwt: env.PINATA_JWT }
          : { apiKey: env.PINATA_API_KEY!, secretKey: env.PINATA_SECRET_KEY! },
      };
    }
    default:
      throw new ConfigError(`IPFS_PROVIDER must be pinata, kubo, embedded or off, got ${JSON.stringify(kind)}`);
  }
}
