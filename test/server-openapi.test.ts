import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { buildServer } from '../src/server/app.js';
import { publicStatus } from '../src/server/public-status.js';
import { Ledger } from '../src/service/ledger.js';

const TOKEN = 'test-admin-token-0123456789';
const HOUSE = { id: 'house-1', name: 'Old Mill', address: '1 River Lane', owner: 'alice', attributes: { rooms: 4 } };

let tmp: string;
let ledger: Ledger;
let app: FastifyInstance;
const routes: RouteOptions[] = [];

interface Operation {
  parameters?: { in: string; name: string }[];
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
  security?: unknown[];
}
type Doc = { openapi: string; paths: Record<string, Record<string, Operation>> };

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'pawledger-openapi-'));
  ledger = await Ledger.open({ config: { ...loadConfig({ LEDGER_DB: 'off' }), dataDir: tmp } });
  app = buildServer(ledger, { adminToken: TOKEN, rateLimit: 0 });
  // What fastify really registers, not a list kept by hand.
  app.addHook('onRoute', (route) => {
    routes.push(route);
  });
  await app.ready();
});

afterAll(async () => {
  await app.close();
  await ledger.close();
  await rm(tmp, { recursive: true, force: true });
});

const get = (url: string, token?: string) =>
  app.inject({ method: 'GET', url, headers: token ? { authorization: `Bearer ${token}` } : {} });

// /properties/:id is /properties/{id} in OpenAPI.
const openApiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

describe('GET /openapi.json', () => {
  it('describes every registered route with its request and response schemas', async () => {
    const res = await get('/openapi.json');
    expect(res.statusCode).toBe(200);
    const doc = res.json() as Doc;
    expect(doc.openapi).toBe('3.1.0');
    const described = routes.filter((r) => !(r.schema as { hide?: boolean } | undefined)?.hide);
    // The hidden ones are the document itself and its UI, nothing of the API.
    const hidden = routes.filter((r) => !described.includes(r)).map((r) => r.url);
    for (const url of hidden) expect(url).toMatch(/^(\/openapi\.json|\/docs($|\/))/);
    expect(described.length).toBeGreaterThanOrEqual(15);
    for (const route of described) {
      for (const method of [route.method].flat().filter((m) => m !== 'HEAD')) {
        const name = `${method} ${route.url}`;
        const op = doc.paths[openApiPath(route.url)]?.[method.toLowerCase()];
        expect(op, `${name} is missing from the document`).toBeDefined();
        const schema = route.schema as Record<string, Record<string, unknown> | undefined>;
        expect(schema.response, `${name} declares no response schema`).toBeDefined();
        for (const code of Object.keys(schema.response!)) {
          const key = code === '4xx' ? '4XX' : code;
          expect(op!.responses[key]?.content, `${name}: response ${code} is not documented`).toBeDefined();
        }
        const params = (op!.parameters ?? []).map((p) => `${p.in}:${p.name}`);
        for (const [where, part] of [
          ['query', 'querystring'],
          ['path', 'params'],
        ] as const)
          for (const field of Object.keys((schema[part]?.properties as object | undefined) ?? {}))
            expect(params, `${name}: ${where} parameter ${field}`).toContain(`${where}:${field}`);
        if (schema.body) expect(op!.requestBody?.content['application/json'], `${name}: body`).toBeDefined();
        // Routes that need the token say so; public reads do not.
        expect(op!.security === undefined, name).toBe(route.config?.access === 'public');
      }
    }
  });

  it('keeps the closed input schemas: a body field the route does not know is refused in the document too', async () => {
    const doc = (await get('/openapi.json')).json() as Doc;
    const body = doc.paths['/properties']!.post!.requestBody!.content['application/json']!.schema as {
      additionalProperties: boolean;
      required: string[];
    };
    expect(body.additionalProperties).toBe(false);
    expect(body.required).toEqual(['id', 'name', 'address', 'owner']);
  });
});

describe('GET /docs', () => {
  it('serves the UI and its assets from the package, without a token or a CDN', async () => {
    const res = await get('/docs');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).not.toMatch(/https?:\/\/(?!localhost)[^"']*\.(js|css)/);
    const script = /src="\.?\/?(?:docs\/)?(static\/[^"]+\.js)"/.exec(res.body)?.[1];
    expect(script).toBeDefined();
    const asset = await get(`/docs/${script}`);
    expect(asset.statusCode).toBe(200);
    expect(asset.body.length).toBeGreaterThan(1000);
  });
});

describe('responses serialized through their schemas', () => {
  it('still carry every field the service returns', async () => {
    const saved = await app.inject({
      method: 'POST',
      url: '/properties',
      headers: { authorization: `Bearer ${TOKEN}` },
      payload: HOUSE,
    });
    expect(saved.statusCode).toBe(201);
    expect(saved.json()).toEqual({ block: { index: 1, hash: expect.any(String) }, property: HOUSE });
    expect((await get('/status')).json()).toEqual(JSON.parse(JSON.stringify(publicStatus(ledger.status()))));
    expect((await get('/status', TOKEN)).json()).toEqual(JSON.parse(JSON.stringify(ledger.status())));
    expect((await get('/properties/house-1')).json()).toEqual(
      JSON.parse(JSON.stringify(await ledger.property('house-1'))),
    );
    expect((await get('/chain')).json()).toEqual(JSON.parse(JSON.stringify({ blocks: await ledger.chain(0, 100) })));
    expect((await get('/properties/nope')).json()).toEqual({
      error: { code: 'NOT_FOUND', message: expect.any(String) },
    });
  });
});
