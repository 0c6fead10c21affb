/**
 * The JSON schemas of every route's input: closed objects (an unknown field is a 400 naming it), with types, ranges,
 * patterns and lengths, so that nothing a driver would refuse (a NUL byte, an integer past the column's range)
 * reaches the ledger. A `description` is the error message's tail when that keyword fails (see validation.ts); where
 * there is none, the message is built from the keyword, in the Ledger's own wording (transactions.ts).
 */
import { LIMITS } from '../ledger/transactions.js';
import { CID_TIER, TIER_NAMES } from '../tiers/registry.js';
import { MAX_ADMIN_ID, MAX_NAME_LENGTH, NAME_PATTERN } from '../crypto/records.js';
import { MAX_CHAIN_LIMIT } from '../util/http-limits.js';
import { MAX_PROOF_BLOCKS } from '../service/chain-proofs.js';

type Schema = Record<string, unknown>;

/** closed is an object schema that refuses unknown properties. */
function closed(properties: Record<string, Schema>, required: string[] = []): Schema {
  return { type: 'object', additionalProperties: false, properties, ...(required.length ? { required } : {}) };
}

/** closedOrEmpty is closed() that also takes no body at all (and JSON null) as an empty object: every field is optional. */
function closedOrEmpty(properties: Record<string, Schema>): Schema {
  return { ...closed(properties), type: ['object', 'null'] };
}

const ID_RULE = "must be 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit";

const propertyId: Schema = { type: 'string', pattern: LIMITS.idPattern.source, description: ID_RULE };

// The Ledger trims and measures text itself; the schema bounds it so that no field can be larger than the Ledger's
// limit before trimming either.
const text: Schema = { type: 'string', minLength: 1, maxLength: LIMITS.maxText };

// Attributes are the caller's own data: any keys, bounded in number here, in depth and size by the Ledger.
const attributes: Schema = { type: 'object', maxProperties: LIMITS.maxAttributeKeys };

const flag: Schema = { type: 'boolean' };

const backupName: Schema = {
  type: 'string',
  minLength: 1,
  maxLength: MAX_NAME_LENGTH,
  pattern: NAME_PATTERN,
  description: `must be printable text (no control characters) of 1 to ${MAX_NAME_LENGTH} characters`,
};

const adminId: Schema = {
  type: ['integer', 'null'],
  minimum: 0,
  maximum: MAX_ADMIN_ID,
  description: `must be an integer from 0 to ${MAX_ADMIN_ID}`,
};

const tier: Schema = { type: 'string', enum: TIER_NAMES, description: `must be one of ${TIER_NAMES.join(', ')}` };

const databaseId: Schema = {
  type: ['string', 'integer'],
  pattern: '^\\d{1,18}$',
  minimum: 0,
  maximum: Number.MAX_SAFE_INTEGER,
  description: 'must be a database backup id (digits)',
};

const cid: Schema = {
  type: 'string',
  pattern: '^[A-Za-z0-9]{10,120}$',
  description: 'must be a CID (10 to 120 letters and digits)',
};

// A tier's own id for a backup: a database row id, a CID, a folder or bucket key (ledgers/<id>/manifests/...).
const backupId: Schema = {
  type: ['string', 'integer'],
  pattern: '^[A-Za-z0-9][A-Za-z0-9._/-]{0,299}$',
  minimum: 0,
  maximum: Number.MAX_SAFE_INTEGER,
  description: 'must be a backup id as `backups list` shows it (a database id, a CID or a key)',
};

const count: Schema = {
  type: ['integer', 'string'],
  minimum: 1,
  maximum: 1_000_000,
  pattern: '^\\s*\\d{1,7}\\s*$',
  description: 'must be a whole number from 1 to 1000000',
};

// Query values arrive as strings, once per occurrence: a repeated one is an array and fails `type`.
function decimal(min: number, max: number): Schema {
  return { type: 'string', pattern: '^\\d{1,16}$', description: `must be an integer from ${min} to ${max}` };
}

/** NO_QUERY is the querystring schema of a route that takes no query parameters: any is a 400 naming it. */
export const NO_QUERY: Schema = closed({});

/** ID_PARAMS is the params schema of the /properties/:id routes. */
export const ID_PARAMS: Schema = closed({ id: propertyId }, ['id']);

/** SCHEMAS holds each route's body and querystring schemas, by what the route does. */
export const SCHEMAS = {
  register: closed({ id: propertyId, name: text, address: text, owner: text, attributes }, [
    'id',
    'name',
    'address',
    'owner',
  ]),
  // At least one change is required; the Ledger says so in its own words.
  update: closed({ name: text, address: text, attributes }),
  transfer: closed({ from: text, to: text }, ['from', 'to']),
  chainQuery: closed({ from: decimal(0, Number.MAX_SAFE_INTEGER), limit: decimal(1, MAX_CHAIN_LIMIT) }),
  // A proof pages through a property's history: `from` counts its blocks, `limit` bounds one proof's cost.
  proofQuery: closed({ from: decimal(0, Number.MAX_SAFE_INTEGER), limit: decimal(1, MAX_PROOF_BLOCKS) }),
  consistencyQuery: closed({ from: decimal(0, Number.MAX_SAFE_INTEGER), to: decimal(0, Number.MAX_SAFE_INTEGER) }),
  backupsQuery: closed({ tier }),
  backup: closedOrEmpty({ tier, name: backupName, adminId, protect: flag }),
  prune: closedOrEmpty({
    tier: {
      type: 'string',
      enum: [...TIER_NAMES, 'all'],
      description: `must be one of ${TIER_NAMES.join(', ')} or all`,
    },
    olderThan: { type: 'string', maxLength: 16 },
    keepLast: count,
    keepHourly: count,
    keepDaily: count,
    keepWeekly: count,
    keepMonthly: count,
    dryRun: flag,
  }),
  protect: closed({ tier, id: backupId, protected: flag }, ['id']),
  empty: closedOrEmpty({}),
  drill: closedOrEmpty({ tier }),
  // The control channel's import names a file on this machine, as the CLI's user sees it: an absolute path.
  import: closed(
    {
      path: {
        type: 'string',
        minLength: 2,
        maxLength: 4096,
        pattern: '^/[^\\u0000]*$',
        description: 'must be an absolute path',
      },
      force: flag,
    },
    ['path'],
  ),
  restore: {
    ...closedOrEmpty({ tier, id: backupId, cid, backupId: databaseId, dryRun: flag }),
    // One restore comes from one backup: naming it twice is a mistake, not a choice for the server to make.
    allOf: [
      {
        if: { type: 'object', required: ['cid'] },
        then: {
          properties: {
            backupId: { not: {}, description: 'cannot be given with cid: a restore comes from one backup' },
            id: { not: {}, description: 'cannot be given with cid: a restore comes from one backup' },
            tier: { const: CID_TIER, description: `must be ${CID_TIER} (or left out) with cid` },
          },
        },
      },
      {
        if: { type: 'object', required: ['id'] },
        then: {
          properties: {
            backupId: { not: {}, description: 'cannot be given with id: a restore comes from one backup' },
          },
        },
      },
    ],
  },
} as const;
