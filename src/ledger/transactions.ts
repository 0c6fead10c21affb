import { ValidationError } from '../errors.js';
import { canonicalJson } from './canonical.js';
import type { Attributes, JsonValue, PropertyChanges, Transaction } from './types.js';

/** Limits on what one transaction may hold; they keep blocks small and requests cheap to check. */
export const LIMITS = {
  idPattern: /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/,
  maxText: 500,
  maxAttributeKeys: 64,
  maxAttributesBytes: 16 * 1024,
  maxDepth: 8,
} as const;

type Input = Record<string, unknown>;

function isObject(v: unknown): v is Input {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function text(v: unknown, field: string, required: boolean): string | undefined {
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string') throw new ValidationError(`${field} must be a string`, field);
  const s = v.trim();
  if (s.length === 0) throw new ValidationError(`${field} must not be empty`, field);
  if (s.length > LIMITS.maxText)
    throw new ValidationError(`${field} is longer than ${LIMITS.maxText} characters`, field);
  return s;
}

function propertyId(v: unknown, field: string): string {
  if (typeof v !== 'string' || !LIMITS.idPattern.test(v)) {
    throw new ValidationError(
      `${field} must be 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit`,
      field,
    );
  }
  return v;
}

// An own "__proto__" key (JSON.parse makes one) would set the copy's prototype instead of adding a member.
function allowedKey(k: string, field: string): string {
  if (k === '__proto__') throw new ValidationError(`${field}.${k} is not an allowed key`, `${field}.${k}`);
  return k;
}

function jsonValue(v: unknown, field: string, depth: number): JsonValue {
  if (depth > LIMITS.maxDepth) throw new ValidationError(`${field} is nested deeper than ${LIMITS.maxDepth}`, field);
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new ValidationError(`${field} must be a finite number`, field);
    return v;
  }
  // Array.from visits holes (as undefined, refused below); map would keep them and seal a block that is not JSON.
  if (Array.isArray(v)) return Array.from(v, (x, i) => jsonValue(x, `${field}[${i}]`, depth + 1));
  if (isObject(v)) {
    const out: { [k: string]: JsonValue } = {};
    for (const [k, x] of Object.entries(v)) out[allowedKey(k, field)] = jsonValue(x, `${field}.${k}`, depth + 1);
    return out;
  }
  throw new ValidationError(`${field} must be JSON`, field);
}

function attributes(v: unknown, field: string, allowNull: boolean): Attributes | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v)) throw new ValidationError(`${field} must be an object`, field);
  const keys = Object.keys(v);
  if (keys.length > LIMITS.maxAttributeKeys) {
    throw new ValidationError(`${field} has more than ${LIMITS.maxAttributeKeys} keys`, field);
  }
  const out: Attributes = {};
  for (const k of keys) {
    allowedKey(k, field);
    if (v[k] === null && !allowNull) continue;
    out[k] = jsonValue(v[k], `${field}.${k}`, 1);
  }
  if (Buffer.byteLength(canonicalJson(out)) > LIMITS.maxAttributesBytes) {
    throw new ValidationError(`${field} is larger than ${LIMITS.maxAttributesBytes} bytes`, field);
  }
  return out;
}

function rejectUnknown(input: Input, allowed: readonly string[], prefix: string): void {
  for (const k of Object.keys(input)) {
    if (!allowed.includes(k)) throw new ValidationError(`${prefix}${k} is not a known field`, `${prefix}${k}`);
  }
}

/** RegisterInput is what a caller supplies to register a property. */
export interface RegisterInput {
  id: string;
  name: string;
  address: string;
  owner: string;
  attributes?: Attributes;
}

/** parseRegister checks untrusted input for a register transaction. */
export function parseRegister(input: unknown, timestamp: string): Transaction {
  if (!isObject(input)) throw new ValidationError('the body must be a JSON object');
  rejectUnknown(input, ['id', 'name', 'address', 'owner', 'attributes'], '');
  return {
    type: 'register',
    timestamp,
    property: {
      id: propertyId(input.id, 'id'),
      name: text(input.name, 'name', true)!,
      address: text(input.address, 'address', true)!,
      owner: text(input.owner, 'owner', true)!,
      attributes: attributes(input.attributes, 'attributes', false) ?? {},
    },
  };
}

/** parseUpdate checks untrusted input for an update of property `id`. */
export function parseUpdate(id: unknown, input: unknown, timestamp: string): Transaction {
  if (!isObject(input)) throw new ValidationError('the body must be a JSON object');
  rejectUnknown(input, ['name', 'address', 'attributes'], '');
  const changes: PropertyChanges = {};
  const name = text(input.name, 'name', false);
  const address = text(input.address, 'address', false);
  const attrs = attributes(input.attributes, 'attributes', true);
  if (name !== undefined) changes.name = name;
  if (address !== undefined) changes.address = address;
  if (attrs !== undefined) changes.attributes = attrs;
  if (Object.keys(changes).length === 0) {
    throw new ValidationError('an update must change at least one of name, address, attributes');
  }
  return { type: 'update', timestamp, propertyId: propertyId(id, 'id'), changes };
}

/** parseTransfer checks untrusted input for a transfer of property `id`. */
export function parseTransfer(id: unknown, input: unknown, timestamp: string): Transaction {
  if (!isObject(input)) throw new ValidationError('the body must be a JSON object');
  rejectUnknown(input, ['from', 'to'], '');
  return {
    type: 'transfer',
    timestamp,
    propertyId: propertyId(id, 'id'),
    from: text(input.from, 'from', true)!,
    to: text(input.to, 'to', true)!,
  };
}
