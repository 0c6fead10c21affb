import { afterAll, beforeAll } from 'vitest';
import { PinataStore } from '../../src/objects/pinata.js';
import { objectStoreSuite } from '../conformance/object-store-suite.js';
import { closedPort, flipFirstLeaf, memoryIo } from '../support/object-stores.js';
import { startPinataStandin, type PinataStandin } from '../support/standins/pinata.js';

const JWT = 'eyJhbGciOiJIUzI1NiJ9.conformance.jwt';
const GATEWAY_TOKEN = 'gw-conformance-token';
let s: PinataStandin;
beforeAll(async () => {
  s = await startPinataStandin({ jwt: JWT, gatewayToken: GATEWAY_TOKEN });
});
afterAll(() => s.close());
const urls = () => ({ apiUrl: s.url, gatewayUrl: s.gatewayUrl });

objectStoreSuite('pinata (stand-in)', {
  contentAddressed: true,
  list: false,
  secrets: [JWT, GATEWAY_TOKEN],
  create: () => new PinataStore({ ...urls(), gatewayToken: GATEWAY_TOKEN, auth: { jwt: JWT }, timeoutMs: 5_000 }),
  tamper: (id) => flipFirstLeaf(id, ...memoryIo(s.blocks)),
  failNext: (count) => s.failNext(429, count),
  unreachable: async () => {
    const down = `http://127.0.0.1:${await closedPort()}`;
    return new PinataStore({ apiUrl: down, gatewayUrl: down, auth: { jwt: JWT }, timeoutMs: 2_000 });
  },
  // A revoked JWT, and no token for the dedicated gateway: nothing works until the configuration changes.
  misconfigured: () => new PinataStore({ ...urls(), auth: { jwt: `${JWT}.revoked` }, timeoutMs: 5_000 }),
});
