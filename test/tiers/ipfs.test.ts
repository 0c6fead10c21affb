import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { FilePointerStore } from '../../src/pointers/file.js';
import { EmbeddedProvider } from '../../src/tiers/ipfs/embedded.js';
import { PinataProvider } from '../../src/tiers/ipfs/pinata.js';
import { IpfsTier } from '../../src/tiers/ipfs/tier.js';
import { describeTier } from '../conformance/tier-suite.js';
import { testSealer } from '../support/chain.js';
import { startPinataStandin, type PinataStandin } from '../support/standins/pinata.js';

// The IPFS tier seals packs and manifests with the ledger's key: the suite's chains are sealed with one key, and
// each tier here gets that same sealer through the suite's factory hook below.
const sealer = testSealer();
let root: string;
let pinata: PinataStandin;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'pl-tier-ipfs-'));
  pinata = await startPinataStandin({ jwt: 'test-jwt' });
});
afterAll(async () => {
  await pinata?.close();
  await rm(root, { recursive: true, force: true });
});

let n = 0;
function embedded(dir = join(root, `e${n++}`)) {
  return new IpfsTier({
    provider: new EmbeddedProvider({ dir }), sealer, log: silentLogger(), packCapBytes: 4096,
    pointers: [new FilePointerStore(join(dir, 'latest.json'))],
  });
}
function viaPinata(pointerFile = join(root, `p${n++}.json`)) {
  return new IpfsTier({
    provider: new PinataProvider({ apiUrl: pinata.url, gatewayUrl: pinata.gatewayUrl, auth: { jwt: 'test-jwt' } }), sealer, log: silentLogger(), packCapBytes: 4096,
    pointers: [new FilePointerStore(pointerFile)],
  });
}
const dirOf = new WeakMap<object, string>();

describeTier('IPFS, embedded blockstore', {
  branches: true,
  sealer,
  async create() {
    const dir = join(root, `e${n++}`);
    const t = embedded(dir);
    dirOf.set(t, dir);
    return t;
  },
  async reopen(tier) {
    const t = embedded(dirOf.get(tier));
    dirOf.set(t, dirOf.get(tier)!);
    return t;
  },
});

describeTier('IPFS, Pinata (stand-in)', {
  branches: true,
  sealer,
  async create() {
    const file = join(root, `p${n++}.json`);
    const t = viaPinata(file);
    dirOf.set(t, file);
    return t;
  },
  async reopen(tier) {
    const t = viaPinata(dirOf.get(tier));
    dirOf.set(t, dirOf.get(tier)!);
    return t;
  },
});
