/**
 * The JSON schemas of every route's responses, for the OpenAPI document (openapi.ts) and for fastify, which
 * serializes each response with its schema. Every object is open (`additionalProperties: true`): a schema here
 * describes a response, it never filters one, so a field the service adds later reaches the caller before it is
 * documented here, and nothing a caller relies on can vanish. Fields are typed only where their type never varies:
 * the serializer coerces a value to its declared type.
 */
type Schema = Record<string, unknown>;

/** open is an object schema that keeps every field, described or not. */
function open(properties: Record<string, Schema> = {}, required: string[] = [], description?: string): Schema {
  return {
    type: 'object',
    additionalProperties: true,
    properties,
    ...(required.length ? { required } : {}),
    ...(description ? { description } : {}),
  };
}

const str: Schema = { type: 'string' };
const int: Schema = { type: 'integer' };
const bool: Schema = { type: 'boolean' };
const nullableStr: Schema = { type: ['string', 'null'] };
const hash: Schema = { type: 'string', description: 'a SHA-256 hash, 64 hex digits' };

const property = open(
  { id: str, name: str, address: str, owner: str, attributes: open({}, [], "the owner's own data, any keys") },
  ['id', 'name', 'address', 'owner', 'attributes'],
);

const block = open(
  {
    index: int,
    timestamp: str,
    transactions: { type: 'array', items: open({ type: str }, ['type'], 'register, update or transfer') },
    previousHash: hash,
    merkleRoot: hash,
    hash,
  },
  ['index', 'timestamp', 'transactions', 'previousHash', 'merkleRoot', 'hash'],
);

// A change answers the new block's coordinates on the HTTP API, the whole block on the control channel.
const saved = open({ block: open({ index: int, hash }, ['index', 'hash']), property }, ['block', 'property']);

const tier = open(
  {
    name: str,
    state: { type: 'string', enum: ['ok', 'lagging', 'down', 'off'] },
    height: int,
    role: { type: 'string', enum: ['local', 'sync', 'async'] },
    newestBackup: str,
    detail: str,
  },
  ['name', 'state', 'height'],
  'role, newestBackup and detail need the admin token',
);

const status = open(
  {
    ledgerId: str,
    height: int,
    headHash: hash,
    totalBlocks: int,
    totalProperties: int,
    keyId: str,
    tiers: { type: 'array', items: tier },
    fork: nullableStr,
    writer: open({ mode: str, role: str }, ['mode', 'role'], 'instance, holder, since and expiresAt need the token'),
    verification: { description: 'a state name; with the admin token an object {state, ...}' },
    degraded: { description: 'a boolean; with the admin token {reason, since} or null' },
  },
  ['ledgerId', 'height', 'headHash', 'totalBlocks', 'totalProperties', 'keyId', 'tiers', 'writer'],
);

const verifyReport = open(
  { ok: bool, totalBlocks: int, headHash: hash, reason: str },
  ['ok'],
  '{ok: true, totalBlocks, headHash}, or {ok: false, reason}',
);

const backup = open({}, [], 'a backup record: id, name, kind, createdAt, height, headHash, ...');

/** ERROR is the body of every error response. */
export const ERROR: Schema = open(
  { error: open({ code: str, message: str, field: str, hint: str }, ['code', 'message']) },
  ['error'],
);

// Every route may answer a client error in the one envelope.
const withErrors = (ok: Record<string, Schema>): Record<string, Schema> => ({ ...ok, '4xx': ERROR });

/** RESPONSES holds each route's response schemas by status code, by what the route does. */
export const RESPONSES = {
  health: withErrors({ 200: open({ ok: bool }, ['ok']) }),
  status: withErrors({ 200: status }),
  // The status page for a browser, GET /status's JSON for anyone else.
  page: withErrors({
    200: {
      content: {
        'text/html': { schema: { type: 'string', description: 'the status page, refreshing itself' } },
        'application/json': { schema: status },
      },
    },
  }),
  properties: withErrors({ 200: open({ properties: { type: 'array', items: property } }, ['properties']) }),
  property: withErrors({
    200: open(
      {
        property,
        history: {
          type: 'array',
          items: open({ blockIndex: int, blockHash: hash, transaction: open() }, [
            'blockIndex',
            'blockHash',
            'transaction',
          ]),
        },
      },
      ['property', 'history'],
    ),
  }),
  created: withErrors({ 201: saved }),
  saved: withErrors({ 200: saved }),
  chain: withErrors({ 200: open({ blocks: { type: 'array', items: block } }, ['blocks']) }),
  // A chain that fails verification answers 500 with the report itself, not the error envelope.
  verify: withErrors({ 200: verifyReport, 500: verifyReport }),
  backups: withErrors({ 200: open({ backups: { type: 'array', items: backup } }, ['backups']) }),
  backup: withErrors({ 201: open({ backup }, ['backup']) }),
  prune: withErrors({
    200: open({ policy: str, dryRun: bool, tiers: { type: 'array', items: open() } }, ['policy', 'dryRun', 'tiers']),
  }),
  protect: withErrors({ 200: open({ id: str, tier: str, protected: bool }, ['id', 'tier', 'protected']) }),
  keys: withErrors({
    200: open(
      {
        activeKeyId: str,
        previousKeyIds: { type: 'array', items: str },
        state: { type: 'string', enum: ['idle', 'running', 'done', 'incomplete'] },
        tiers: {
          type: 'array',
          items: open(
            {
              tier: str,
              keys: { type: 'object', additionalProperties: int },
              remaining: int,
              resealed: int,
              error: str,
            },
            ['tier', 'keys', 'remaining', 'resealed'],
          ),
        },
        droppable: { type: 'array', items: str },
        durationMs: { type: 'number' },
      },
      ['activeKeyId', 'previousKeyIds', 'state', 'tiers', 'droppable'],
      'each place (local, then the tiers) with its objects by key id; droppable: previous keys nothing needs',
    ),
  }),
  cleared: withErrors({ 200: open({ cleared: nullableStr }, ['cleared']) }),
  restore: withErrors({ 200: open({}, [], 'the restore made (or planned, dryRun) and whether each tier recorded it') }),
  drill: withErrors({
    200: open(
      { ok: bool, drills: { type: 'array', items: open({ tier: str, outcome: str }, ['tier', 'outcome']) } },
      ['ok', 'drills'],
      'each drilled tier: the backup restored, its height, how long, the outcome and why',
    ),
  }),
  // Proofs are sent as their canonical JSON text, byte for byte what `pawledger proof verify` checks.
  proof: withErrors({
    200: open({}, [], "a property's inclusion proof: its transactions, block headers, Merkle paths and the head"),
  }),
  consistency: withErrors({
    200: open({}, [], 'a consistency proof: the chain at `from` is a prefix of the chain at `to`'),
  }),
  verifier: withErrors({
    200: {
      content: {
        'text/javascript': { schema: { type: 'string', description: 'the dependency-free proof verifier module' } },
      },
    },
  }),
  proofCheck: withErrors({
    200: {
      content: {
        'text/html': { schema: { type: 'string', description: 'the proof checker page (checks in the browser)' } },
      },
    },
  }),
  proofCheckScript: withErrors({
    200: {
      content: {
        'text/javascript': { schema: { type: 'string', description: "the proof checker page's module" } },
      },
    },
  }),
  metrics: withErrors({
    200: {
      content: { 'text/plain': { schema: { type: 'string', description: 'the Prometheus text exposition' } } },
    },
  }),
} as const;
