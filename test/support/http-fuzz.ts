/**
 * fast-check generators of hostile HTTP requests against the routes a server really has (collectRoutes): the
 * route's own method or another, its path with odd parameters and spellings, query strings of known and unknown
 * names with garbage values, content types, tokens (none, right, wrong), and bodies from valid (generated from the
 * route's own body schema, so that requests reach the Ledger and save), through valid with one field changed or one
 * added, to garbage (deep nesting, huge numbers, NUL, lone surrogates, prototype-pollution keys, oversized). Most
 * requests are well-formed but for one or two parts, so that each part's checks are reached. Shared by
 * test/server-fuzz.test.ts and bench/fuzz-http.ts.
 */
import fc from 'fast-check';
import type { RouteInfo } from './http-raw.js';

/** FuzzRequest is one request for fastify's inject. */
export interface FuzzRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string;
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

// Every field name any route knows, its typos, and keys that attack the objects they land in.
const FIELDS = [
  'id',
  'name',
  'address',
  'owner',
  'attributes',
  'from',
  'to',
  'tier',
  'backupId',
  'cid',
  'dryRun',
  'protect',
  'protected',
  'adminId',
  'olderThan',
  'keepLast',
  'keepHourly',
  'keepDaily',
  'keepWeekly',
  'keepMonthly',
  'limit',
  'dryrun',
  'Name',
  '__proto__',
  'constructor',
  'prototype',
  'hasOwnProperty',
  'toString',
  '',
];

const nasty = fc.constantFrom(
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff',
  '\u202e',
  '\u2028',
  '\t',
  '\r\n',
  ' ',
  '',
  '%00',
  '..',
  '../..',
  '\\',
  "'; DROP TABLE blockchain_backups; --",
  'x'.repeat(201),
  'x'.repeat(600),
  '💥'.repeat(300),
  'é'.repeat(200),
  'db',
  'ipfs',
  'all',
  'tape',
  '12h',
  '6m',
  '0d',
  'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy',
);

// Numbers at the edges of what JSON, JavaScript and PostgreSQL's integer columns hold.
const edgeNumber = fc.constantFrom(
  0,
  -0,
  -1,
  1,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 63),
  1e21,
  1e308,
  5e-324,
  1.5,
  -(2 ** 31) - 1,
);

const number = fc.oneof(fc.integer(), edgeNumber, fc.double({ noNaN: true, noDefaultInfinity: true }));

const scalar = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  nasty,
  number,
  fc.boolean(),
  fc.constant(null),
);

const value: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  {
    weight: 1,
    arbitrary: fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 12 })), scalar, {
      maxKeys: 70,
    }),
  },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 5 }) },
);

// NUL is what PostgreSQL refuses in text (and a C string ends at).
const withNul = fc.tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 })).map(([a, b]) => `${a}\u0000${b}`);

// What a mutation puts in a field: mostly values that break something somewhere, some of anything.
const hostile: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 2, arbitrary: withNul },
  { weight: 2, arbitrary: nasty },
  { weight: 3, arbitrary: edgeNumber },
  { weight: 2, arbitrary: value },
);

// A body most routes would nearly accept: known fields (sometimes exactly a valid register) with any values.
const validish = fc
  .oneof(
    fc.record(
      {
        id: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,20}$/),
        name: fc.string({ minLength: 1, maxLength: 30 }),
        address: fc.string({ minLength: 1, maxLength: 30 }),
        owner: fc.constantFrom('alice', 'bob'),
      },
      { requiredKeys: ['id', 'name', 'address', 'owner'] },
    ),
    fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 5 }),
  )
  .map((o) => JSON.stringify(o));

const deep = fc
  .tuple(fc.integer({ min: 1, max: 30_000 }), fc.boolean())
  .map(([n, array]) => (array ? '['.repeat(n) + ']'.repeat(n) : '{"a":'.repeat(n) + '1' + '}'.repeat(n)));

const rawBodies = fc.constantFrom(
  '{"__proto__":{"admin":true}}',
  '{"constructor":{"prototype":{"admin":true}}}',
  '{"attributes":{"__proto__":{"x":1}}}',
  '{"a":1,"a":2}',
  '{"adminId":1e400}',
  '{"keepLast":-1e400}',
  '{"name":"\\u0000"}',
  '{"name":"\\ud800"}',
  'null',
  'true',
  '[]',
  '"x"',
  '1',
  '{',
  '}',
  '',
  ' ',
  '\u0000',
  '{"id":"x",}',
  'x'.repeat(70_000),
  `{"attributes":{"notes":"${'n'.repeat(66_000)}"}}`,
);

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
};

function fromPattern(pattern: string, maxLength: number): fc.Arbitrary<string> {
  try {
    const re = new RegExp(pattern, 'u');
    fc.sample(fc.stringMatching(re), 1);
    return fc.stringMatching(re);
  } catch {
    // fast-check cannot build every pattern (lookaheads): plain text, which mostly matches ours.
    return fc.string({ minLength: 1, maxLength: Math.min(maxLength, 40) });
  }
}

/** fromSchema generates values valid for the subset of JSON Schema the routes use (types, enum, pattern, lengths, ranges). */
function fromSchema(schema: JsonSchema): fc.Arbitrary<unknown> {
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const type = [schema.type ?? 'object'].flat().find((t) => t !== 'null') ?? 'null';
  switch (type) {
    case 'string':
      return schema.pattern
        ? fromPattern(schema.pattern, schema.maxLength ?? 100)
        : fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 40, 40) });
    case 'integer':
      return fc.integer({ min: Math.max(schema.minimum ?? -1e9, -1e9), max: Math.min(schema.maximum ?? 1e9, 1e9) });
    case 'boolean':
      return fc.boolean();
    case 'object': {
      const props = Object.entries(schema.properties ?? {});
      if (props.length === 0)
        return fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 });
      const record = Object.fromEntries(props.map(([k, v]) => [k, fromSchema(v)]));
      return fc.record(record, { requiredKeys: schema.required ?? [] });
    }
    default:
      return fc.constant(null);
  }
}

// One to three fields of a valid object set to hostile values (fields the schema knows, present or not, or others).
function mutated(valid: fc.Arbitrary<unknown>, known: string[]): fc.Arbitrary<unknown> {
  const key =
    known.length > 0
      ? fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom(...known) },
          { weight: 1, arbitrary: fc.constantFrom(...FIELDS) },
          { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
        )
      : fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom(...FIELDS) },
          { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
        );
  return fc
    .tuple(valid, fc.array(fc.tuple(key, hostile), { minLength: 1, maxLength: 3 }))
    .map(([v, changes]) =>
      typeof v === 'object' && v !== null ? { ...v, ...Object.fromEntries(changes) } : changes[0]![1],
    );
}

function body(route: RouteInfo): fc.Arbitrary<string | undefined> {
  const schema = route.schema?.body as JsonSchema | undefined;
  const valid = schema ? fromSchema(schema) : fc.constant({});
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 6, arbitrary: valid.map((v) => JSON.stringify(v)) },
    { weight: 6, arbitrary: mutated(valid, Object.keys(schema?.properties ?? {})).map((v) => JSON.stringify(v)) },
    { weight: 2, arbitrary: validish },
    { weight: 1, arbitrary: fc.json({ maxDepth: 5 }) },
    { weight: 1, arbitrary: deep },
    { weight: 2, arbitrary: rawBodies },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  );
}

const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      undefined,
      'application/json; charset=utf-8',
      'Application/JSON',
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/json; charset=latin1',
      'multipart/form-data; boundary=x',
      'application/xml',
      '*/*',
      'json',
    ),
  },
);

function segment(knownIds: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...knownIds) },
    { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,140}$/) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }).map(encodeURIComponent) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '%00',
        '%ff',
        '%E0%A4%A',
        '%2e%2e',
        '%2F',
        '..',
        '.',
        '__proto__',
        'constructor',
        'x'.repeat(300),
        '%u0041',
        '%',
      ),
    },
  );
}

function path(route: RouteInfo, knownIds: string[]): fc.Arbitrary<string> {
  const filled = segment(knownIds).map((s) => route.url.replace(':id', s));
  return fc.oneof(
    { weight: 12, arbitrary: filled },
    {
      weight: 1,
      arbitrary: fc.tuple(filled, fc.constantFrom('/', '//', '/x', '/..', '%20', '/%2e')).map(([p, tail]) => p + tail),
    },
    { weight: 1, arbitrary: filled.map((p) => p.toUpperCase()) },
    { weight: 1, arbitrary: filled.map((p) => `/${p}`) },
  );
}

const query = fc.oneof(
  { weight: 8, arbitrary: fc.constant('') },
  {
    weight: 4,
    arbitrary: fc
      .array(
        fc.tuple(
          fc.oneof(
            fc.constantFrom('from', 'limit', 'tier', '__proto__', 'constructor', 'verbose', ''),
            fc.string({ maxLength: 8 }),
          ),
          fc.oneof(
            fc.constantFrom(
              '0',
              '1',
              '1000',
              '1001',
              '-1',
              '1e3',
              '0x10',
              '',
              'db',
              'ipfs',
              '99999999999999999999',
              '\u0000',
            ),
            fc.string({ maxLength: 12 }),
          ),
        ),
        { maxLength: 4 },
      )
      .map((pairs) => `?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}`),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('?', '?&&=', '?a[b]=1', '?%', '?from=%ZZ', '?limit=1&limit=2', '?;', '?from'),
  },
);

/** FuzzOptions name what the generators should sometimes get right: the admin token, and ids that exist. */
export interface FuzzOptions {
  token: string;
  knownIds: string[];
}

/** fuzzRequest generates one hostile request against `route` (or, now and then, its path under another method). */
export function fuzzRequest(route: RouteInfo, options: FuzzOptions): fc.Arbitrary<FuzzRequest> {
  const auth = fc.oneof(
    { weight: 5, arbitrary: fc.constant(`Bearer ${options.token}`) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        undefined,
        'Bearer wrong',
        'Bearer',
        `Basic ${options.token}`,
        `bearer  ${options.token} `,
        `Bearer ${options.token}x`,
      ),
    },
  );
  return fc
    .record({
      method: fc.oneof(
        { weight: 8, arbitrary: fc.constant(route.method) },
        { weight: 1, arbitrary: fc.constantFrom(...METHODS) },
      ),
      url: fc.tuple(path(route, options.knownIds), query).map(([p, q]) => p + q),
      auth,
      contentType,
      payload: body(route),
      forwarded: fc.option(fc.constantFrom('203.0.113.9', 'garbage', '::1, 10.0.0.1', ''), { nil: undefined }),
    })
    .map(({ method, url, auth: a, contentType: ct, payload, forwarded }) => {
      const headers: Record<string, string> = {};
      if (a !== undefined) headers.authorization = a;
      if (ct !== undefined) headers['content-type'] = ct;
      if (forwarded !== undefined) headers['x-forwarded-for'] = forwarded;
      // GET and HEAD carry no body here: inject refuses to send one with them.
      const sendsBody = payload !== undefined && method !== 'GET' && method !== 'HEAD';
      return { method, url, headers, ...(sendsBody ? { payload } : {}) };
    });
}

/** anyRouteRequest generates hostile requests against any of `routes`. */
export function anyRouteRequest(routes: RouteInfo[], options: FuzzOptions): fc.Arbitrary<FuzzRequest> {
  return fc.constantFrom(...routes).chain((route) => fuzzRequest(route, options));
}

/** describeRequest renders a request for a failure message, bodies cut short. */
export function describeRequest(r: FuzzRequest): string {
  return `${r.method} ${r.url} ${JSON.stringify(r.headers)} ${r.payload === undefined ? '' : JSON.stringify(r.payload.slice(0, 200))}`;
}
