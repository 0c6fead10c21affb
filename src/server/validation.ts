import type { FastifySchemaValidationError, FastifyServerOptions } from 'fastify';
import { apiError, type ApiError } from './errors.js';

/**
 * AJV_OPTIONS configure the validator of route schemas. fastify's defaults would undo closed schemas: removeAdditional
 * strips unknown fields silently (a typo such as `dryrun` would be dropped and the request run for real), and
 * coerceTypes turns "true" into true and "" into 0. allErrors lets an unknown field be named first (a typo of a
 * required field then reads "nmae is not a known field", not "name is required"); bodies are at most 64 KiB, so the
 * list stays short. verbose keeps each failing keyword's schema, for its description.
 */
export const AJV_OPTIONS: NonNullable<FastifyServerOptions['ajv']> = {
  customOptions: {
    removeAdditional: false,
    coerceTypes: false,
    allErrors: true,
    verbose: true,
    useDefaults: false,
    allowUnionTypes: true,
  },
};

// What Ajv's errors carry with `verbose`; fastify's type names only the always-present fields.
type AjvError = FastifySchemaValidationError & { parentSchema?: { description?: unknown } };

const PART: Record<string, { noun: string; whole: string }> = {
  body: { noun: 'field', whole: 'body' },
  querystring: { noun: 'query parameter', whole: 'query' },
  params: { noun: 'path parameter', whole: 'path' },
  headers: { noun: 'header', whole: 'headers' },
};

// A field name can be the client's own (an unknown key): echo at most this much of it.
const MAX_FIELD_NAME = 100;

// "/attributes/rooms" -> "attributes.rooms" (JSON Pointer escapes undone), the way the Ledger names nested fields.
function fieldOf(instancePath: string, child?: unknown): string {
  const parts = instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (typeof child === 'string') parts.push(child);
  const field = parts.join('.');
  return field.length > MAX_FIELD_NAME ? `${field.slice(0, MAX_FIELD_NAME)}…` : field;
}

const ARTICLE: Record<string, string> = { integer: 'an integer', object: 'an object', array: 'an array', null: 'null' };

// "must be a string", "must be an integer or null": the Ledger's wording for a value of the wrong type.
function typeNames(types: unknown): string {
  const names = [types].flat().map((t) => ARTICLE[String(t)] ?? `a ${String(t)}`);
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names.at(-1)}` : (names[0] ?? 'valid');
}

// A field's own description (its rule, in words) says best what is wrong with it; fields without one get the
// keyword's message in the Ledger's wording.
function describe(err: AjvError, field: string): string {
  if (err.keyword === 'required') return `${field} is required`;
  const description = err.parentSchema?.description;
  if (typeof description === 'string') return `${field} ${description}`;
  const p = err.params;
  switch (err.keyword) {
    case 'type':
      return `${field} must be ${typeNames(p.type)}`;
    case 'maxLength':
      return `${field} is longer than ${String(p.limit)} characters`;
    case 'minLength':
      return `${field} must not be empty`;
    case 'maxProperties':
      return `${field} has more than ${String(p.limit)} keys`;
    default:
      return `${field} ${err.message ?? 'is not valid'}`;
  }
}

/**
 * validationBody turns a failed route schema's Ajv errors into the API's error body, naming one field (an unknown
 * field first, else the first error):
 * `{"error":{"code":"VALIDATION","message":"dryrun is not a known field","field":"dryrun"}}`. `context` is the part
 * of the request that failed (body, querystring, params), as fastify reports it. The message never quotes the value.
 */
export function validationBody(errors: FastifySchemaValidationError[], context: string | undefined): ApiError {
  const part = PART[context ?? 'body'] ?? PART.body!;
  const err = (errors.find((e) => e.keyword === 'additionalProperties') ?? errors[0]) as AjvError | undefined;
  if (!err) return apiError('VALIDATION', `the ${part.whole} is not valid`, { field: part.whole });
  if (err.keyword === 'additionalProperties') {
    const field = fieldOf(err.instancePath, err.params.additionalProperty);
    return apiError('VALIDATION', `${field} is not a known ${part.noun}`, { field });
  }
  const field =
    err.keyword === 'required' ? fieldOf(err.instancePath, err.params.missingProperty) : fieldOf(err.instancePath);
  // The request part itself has the wrong shape: a body that is an array, a string, a number.
  if (field === '') return apiError('VALIDATION', `the ${part.whole} must be a JSON object`, { field: part.whole });
  return apiError('VALIDATION', describe(err, field), { field });
}
