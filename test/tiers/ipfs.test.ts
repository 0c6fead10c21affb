import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { SqlClient } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import { connectPostgres } from '../../src/db/postgres.js';
import { DatabasePointerStore } from '../../src/pointers/database.js';
import { FilePointerStore } from '../../src/pointers/file.js';
import type { PointerStore } from '../../src/pointers/pointer.js';
import { EmbeddedIpfsStore } from '../../src/objects/embedded.js';
import { PinataStore } from '../../src/objects/pinata.js';
import { pointerPackTier } from '../support/packs.js';
import { describeTier } from '../conformance/tier-suite.js';
import { testSealer } from '../support/chain.js';
import { createTempDatabase, type TempDatabase } from '../support/pg.js';
import { startPinataStandin, type PinataStandin } from '../support/standins/pinata.js';

// The IPFS tier seals packs and manifests with the ledger's key: the suite's chains are sealed with one key, and
// each tier here gets that same sealer through the suite's factory hook below.
const sealer = testSealer();
let root: string;
let pinata: PinataStandin;
// As deployed, the IPFS tier keeps its records (the manifests' history, protection, pruning) in the database.
let db: TempDatabase;
let sql: SqlClient;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'pl-tier-ipfs-'));
  pinata = await startPinataStandin({ jwt: 'test-jwt' });
  db = await createTempDatabase();
  sql = await connectPostgres(db.url);
  await migrate(sql);
});
afterAll(async () => {
  await sql?.close();
  await db?.drop();
  await pinata?.close();
  await rm(root, { recursive: true, force: true });
});

let n = 0;
const history = (on: boolean): PointerStore[] => (on ? [new DatabasePointerStore(() => sql)] : []);
function embedded(dir = join(root, `e${n++}`), withDb = false) {
  return pointerPackTier({
    store: new EmbeddedIpfsStore({ dir }),
    sealer,
    packCapBytes: 4096,
    pointers: [...history(withDb), new FilePointerStore(join(dir, 'latest.json'))],
  });
}
function viaPinata(pointerFile = join(root, `p${n++}.json`), withDb = false) {
  return pointerPackTier({
    store: new PinataStore({ apiUrl: pinata.url, gatewayUrl: pinata.gatewayUrl, auth: { jwt: 'test-jwt' } }),
    sealer,
    packCapBytes: 4096,
    pointers: [...history(withDb), new FilePointerStore(pointerFile)],
  });
}
const dirOf = new WeakMap<object, string>();

for (const withDb of [true, false]) {
  const how = withDb ? 'records in the database' : 'pointer files only';
  describeTier(`IPFS, embedded blockstore, ${how}`, {
    branches: true,
    sealer,
    retention: withDb,
    async create() {
      const dir = join(root, `e${n++}`);
      const t = embedded(dir, withDb);
      dirOf.set(t, dir);
      return t;
    },
    async reopen(tier) {
      const t = embedded(dirOf.get(tier), withDb);
      dirOf.set(t, dirOf.get(tier)!);
      return t;
    },
  });

  describeTier(`IPFS, Pinata (stand-in), ${how}`, {
    branches: true,
    sealer,
    retention: withDb,
    async create() {
      const file = join(root, `p${n++}.json`);
      const t = viaPinata(file, withDb);
      dirOf.set(t, file);
      return t;
    },
    async reopen(tier) {
      const t = viaPinata(dirOf.get(tier), withDb);
      dirOf.set(t, dirOf.get(tier)!);
      return t;
    },
  });
}
