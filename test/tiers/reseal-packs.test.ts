/**
 * Key rotation in the pack tiers (src/tiers/packs/reseal.ts, BackupTier.keyCounts and reseal): a tier with a history
 * of backups, the ledger's packs, the tier's packs of loose blocks and checkpoints, all under an old key, is re-sealed
 * in small steps; then every object is under the new key, every backup is listed as before and restores with the
 * new key alone, and the old objects are gone from the store. An object under a key the keyring lacks stops the step
 * before anything is written; a step that fails half way leaves every backup restorable and a later one finishes.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, sealCheckpoint } from '../../src/crypto/checkpoints.js';
import { generateKey, parseKey } from '../../src/crypto/key.js';
import { decodePack, isPack } from '../../src/crypto/packs.js';
import { checkRecord, type BackupRecord } from '../../src/crypto/records.js';
import { keyIdOf } from '../../src/crypto/reseal.js';
import { Sealer } from '../../src/crypto/seal.js';
import { IntegrityError, UnavailableError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { DirStore } from '../../src/objects/dir.js';
import { EmbeddedIpfsStore } from '../../src/objects/embedded.js';
import type { ObjectStore } from '../../src/objects/object-store.js';
import type { SqlClient } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import { connectPostgres } from '../../src/db/postgres.js';
import { DatabasePointerStore } from '../../src/pointers/database.js';
import { FilePointerStore } from '../../src/pointers/file.js';
import { RENDER_CID_VAR, RenderPointerStore } from '../../src/pointers/render-pointer.js';
import { PinataStore } from '../../src/objects/pinata.js';
import { S3Store } from '../../src/objects/s3.js';
import { manifestSealKeyId } from '../../src/tiers/packs/format.js';
import { ListingCatalog } from '../../src/tiers/packs/listing-catalog.js';
import { PackTier } from '../../src/tiers/packs/pack-tier.js';
import { makeChain, recordFor, type TestChain } from '../support/chain.js';
import { pointerPackTier } from '../support/packs.js';
import { createTempDatabase, type TempDatabase } from '../support/pg.js';
import { S3RVER_CREDENTIALS, startS3rver, type S3rverProcess } from '../support/s3.js';
import { startPinataStandin, type PinataStandin } from '../support/standins/pinata.js';
import { startRenderStandin, type RenderStandin } from '../support/standins/render.js';
import { expected, opened, packOf, stateAt } from '../conformance/pack-suite.js';

const OLD = parseKey(generateKey());
const NEW = parseKey(generateKey());
const old = new Sealer(OLD);
const ring = new Sealer(NEW, [OLD]);
const fresh = new Sealer(NEW);

let root: string;
let n = 0;
let pinata: PinataStandin;
let render: RenderStandin;
let db: TempDatabase;
let sql: SqlClient;
let s3: S3rverProcess;
const BUCKET = 'reseal';
beforeAll(async () => {
  s3 = await startS3rver([BUCKET]);
  root = await mkdtemp(join(tmpdir(), 'pl-reseal-packs-'));
  pinata = await startPinataStandin({ jwt: 'test-jwt' });
  render = await startRenderStandin({ apiKey: 'rnd_test', serviceId: 'srv-reseal', writeLimit: { count: 10_000 } });
  db = await createTempDatabase();
  sql = await connectPostgres(db.url);
  await migrate(sql);
});
afterAll(async () => {
  await sql?.close();
  await db?.drop();
  await render?.close();
  await pinata?.close();
  await s3?.stop();
  await rm(root, { recursive: true, force: true });
});

/** failing is `store` whose puts (or deletes) fail (UnavailableError, as a full disk) after `ok` of them succeeded. */
function failing(store: ObjectStore, ok: number, what: 'put' | 'delete' = 'put'): ObjectStore {
  let calls = 0;
  return new Proxy(store, {
    get(target, prop) {
      if (prop === what)
        return async (...args: unknown[]) => {
          if (calls++ >= ok) throw new UnavailableError(`the store fails a ${what} (test)`);
          return (target[what] as (...a: unknown[]) => Promise<unknown>)(...args);
        };
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

interface Kind {
  name: string;
  /** protects: the catalog keeps protection (a listing; not pointer files alone). */
  protects: boolean;
  /** open makes a tier over the place `where`, sealing with `sealer`; `wrap` decorates its store. */
  open(where: string, sealer: Sealer, wrap?: (s: ObjectStore) => ObjectStore): { tier: PackTier; store: ObjectStore };
  /** pinned is how many objects the store pins, where a stand-in tells (Pinata's). */
  pinned?(): number;
  /** pointer is the manifest id Render's LEDGER_LATEST_CID names, where Render is a pointer. */
  pointer?(): string | undefined;
  /** lists every object id under the old key the store still holds, where it can list (else null). */
  oldObjects?(store: ObjectStore): Promise<string[]>;
}

/** oldNamedObjects lists the objects of a named store still sealed under the old key. */
async function oldNamedObjects(store: ObjectStore): Promise<string[]> {
  const out: string[] = [];
  for await (const id of store.list!('ledgers/')) {
    const bytes = await store.get(id);
    // Markers (protected/, pruned/) are empty; pack lists are not sealed.
    if (bytes.length === 0) continue;
    let key: string | null = null;
    if (id.endsWith('.manifest')) key = manifestSealKeyId(bytes);
    else if (id.endsWith('.pwpk') && isPack(bytes)) key = keyIdOf(decodePack(bytes, id).sealed);
    else if (id.endsWith('.part')) key = keyIdOf(bytes.subarray(8));
    else if (id.endsWith('.pack')) key = keyIdOf(bytes);
    if (key === OLD.id) out.push(id);
  }
  return out;
}

// A named store's tier, listed by the store itself (as the registry builds dir and s3).
function listedTier(store: ObjectStore, sealer: Sealer): { tier: PackTier; store: ObjectStore } {
  let tier: PackTier | null = null;
  const catalog = new ListingCatalog(store, (id) => tier!.getRecord(id));
  const log = silentLogger();
  tier = new PackTier({ name: store.name, label: store.label, store, sealer, catalog, log, packCapBytes: 4096 });
  return { tier, store };
}

const kinds: Kind[] = [
  {
    name: 'a folder (listing catalog)',
    protects: true,
    open: (where, sealer, wrap = (s) => s) => listedTier(wrap(new DirStore({ root: where })), sealer),
    oldObjects: oldNamedObjects,
  },
  {
    name: 'an S3 bucket (s3rver, listing catalog)',
    protects: true,
    open: (where, sealer, wrap = (s) => s) =>
      listedTier(
        wrap(
          new S3Store({
            bucket: BUCKET,
            prefix: `cases/${where.split('/').at(-1)!}`,
            endpoint: s3.endpoint,
            credentials: S3RVER_CREDENTIALS,
          }),
        ),
        sealer,
      ),
    oldObjects: oldNamedObjects,
  },
  {
    name: 'IPFS, Pinata (stand-in), records in the database, Render and file pointers',
    protects: true,
    open(where, sealer, wrap = (s) => s) {
      const store = wrap(
        new PinataStore({ apiUrl: pinata.url, gatewayUrl: pinata.gatewayUrl, auth: { jwt: 'test-jwt' } }),
      );
      const tier = pointerPackTier({
        store,
        sealer,
        packCapBytes: 4096,
        pointers: [
          new DatabasePointerStore(() => sql),
          new RenderPointerStore({
            apiKey: 'rnd_test',
            serviceId: 'srv-reseal',
            apiUrl: render.url,
            log: silentLogger(),
          }),
          new FilePointerStore(join(where, 'latest.json')),
        ],
      });
      return { tier, store };
    },
    pointer: () => render.vars.get(RENDER_CID_VAR),
    pinned: () => [...pinata.pins.values()].filter((p) => !p.dateUnpinned).length,
  },
  {
    name: 'IPFS, embedded blockstore, pointer file only',
    protects: false,
    open(where, sealer, wrap = (s) => s) {
      const store = wrap(new EmbeddedIpfsStore({ dir: where }));
      const tier = pointerPackTier({
        store,
        sealer,
        packCapBytes: 4096,
        pointers: [new FilePointerStore(join(where, 'latest.json'))],
      });
      return { tier, store };
    },
  },
];

interface Seeded {
  chain: TestChain;
  backups: BackupRecord[];
  /** ids are every object the backups reached before the rotation: manifests, packs, checkpoint parts. */
  ids: Set<string>;
}

// A history under the old key: loose blocks (the tier's packs), a ledger pack, a checkpoint, a backup of an older
// point, a protected backup.
async function seed(kind: Kind, where: string): Promise<Seeded> {
  await mkdir(where, { recursive: true });
  // Render's one variable is shared by the tests: each starts without it (it would name another test's ledger).
  render.vars.delete(RENDER_CID_VAR);
  const { tier } = kind.open(where, old);
  await tier.init();
  const chain = makeChain(old, 30);
  const id = chain.ledgerId;
  await tier.append(id, null, chain.stored.slice(0, 10), recordFor(old, chain, 9, 'first'));
  await tier.append(id, chain.blocks[9]!.hash, chain.stored.slice(10, 20), recordFor(old, chain, 19, 'second'));
  await tier.putPack(id, null, packOf(old, chain, 0, 7));
  await tier.putCheckpoint(id, sealCheckpoint(old, id, chain.blocks[8]!.hash, stateAt(chain, 8)));
  await tier.append(id, chain.blocks[19]!.hash, chain.stored.slice(20), recordFor(old, chain, 29, 'third'));
  await tier.putBackup(recordFor(old, chain, 15, 'older point'));
  await tier.putCheckpoint(id, sealCheckpoint(old, id, chain.blocks[25]!.hash, stateAt(chain, 25)));
  const backups = await tier.listBackups(id);
  if (kind.protects) await tier.setProtected(backups.find((b) => b.name === 'second')!.id, true);
  const ids = new Set<string>();
  for (const b of backups) {
    ids.add(b.id);
    const m = await tier.manifest(b.id);
    for (const s of m.spans) ids.add(s.ref.cid);
    for (const c of m.checkpoints) for (const p of c.parts) ids.add(p.cid);
  }
  await tier.close();
  return { chain, backups: await listed(kind, where, old, id), ids };
}

const shape = (b: BackupRecord) => ({
  name: b.name,
  kind: b.kind,
  height: b.height,
  headHash: b.headHash,
  createdAt: b.createdAt.toISOString(),
  protected: b.protected,
});

async function listed(kind: Kind, where: string, sealer: Sealer, ledgerId: string): Promise<BackupRecord[]> {
  const { tier } = kind.open(where, sealer);
  try {
    return await tier.listBackups(ledgerId);
  } finally {
    await tier.close();
  }
}

/**
 * Every backup restores with `sealer`: its chain, its record, and its newest checkpoint. With `midway`, a backup may
 * be listed twice (its old manifest and the one a killed step wrote to replace it, until the next step retires it).
 */
async function restoresAll(kind: Kind, where: string, sealer: Sealer, s: Seeded, midway = false): Promise<void> {
  const { tier } = kind.open(where, sealer);
  try {
    const backups = await tier.listBackups(s.chain.ledgerId);
    if (midway) {
      // Until the old copy is retired, the new one may not be protected yet: the backup is, through either.
      const loose = (b: BackupRecord) => JSON.stringify({ ...shape(b), protected: undefined });
      expect([...new Set(backups.map(loose))].sort()).toEqual([...new Set(s.backups.map(loose))].sort());
      for (const b of s.backups.filter((x) => x.protected))
        expect(backups.some((x) => x.protected && loose(x) === loose(b))).toBe(true);
    } else expect(backups.map(shape)).toEqual(s.backups.map(shape)); // newest first, as before
    for (const b of backups) {
      checkRecord(sealer, b);
      const { blocks } = await opened(tier, sealer, b);
      expect(blocks).toEqual(expected(s.chain, 0, b.height));
      const cp = await tier.checkpointFor(b);
      expect(cp).not.toBeNull();
      const { state } = await openCheckpoint(sealer, s.chain.ledgerId, cp!, cp!.parts(), tier.name);
      expect(state.list()).toEqual(stateAt(s.chain, cp!.height).list());
    }
  } finally {
    await tier.close();
  }
}

// Reseals in steps of `limit` until nothing remains, with the tier re-opened (nothing remembered) every `reopen` steps.
async function finish(kind: Kind, where: string, ledgerId: string, limit: number): Promise<number> {
  let steps = 0;
  let { tier } = kind.open(where, ring);
  for (;;) {
    const step = await tier.reseal(ledgerId, ring, limit);
    steps++;
    expect(step.resealed).toBeLessThanOrEqual(limit + 4);
    if (step.remaining === 0) break;
    expect(step.resealed).toBeGreaterThan(0);
    expect(steps).toBeLessThan(200);
  }
  const last = await tier.reseal(ledgerId, ring, limit);
  expect(last).toEqual({ resealed: 0, remaining: 0 });
  await tier.close();
  ({ tier } = kind.open(where, ring));
  expect(await tier.keyCounts(ledgerId)).toEqual({ [NEW.id]: expect.any(Number) });
  await tier.close();
  return steps;
}

async function oldGone(kind: Kind, where: string, s: Seeded): Promise<void> {
  const { tier, store } = kind.open(where, fresh);
  try {
    for (const id of s.ids) expect(await store.has(id), id).toBe(false);
    if (kind.oldObjects) expect(await kind.oldObjects(store)).toEqual([]);
  } finally {
    await tier.close();
  }
}

for (const kind of kinds) {
  describe(`key rotation in a pack tier: ${kind.name}`, () => {
    it('re-seals every backup of the history in small steps; each restores with the new key alone', async () => {
      const where = join(root, `t${n++}`);
      const s = await seed(kind, where);
      expect(s.backups.length).toBeGreaterThanOrEqual(5);
      {
        const { tier } = kind.open(where, ring);
        const counts = await tier.keyCounts(s.chain.ledgerId);
        expect(Object.keys(counts)).toEqual([OLD.id]);
        // Manifests (seal and record) and packs, blocks in packs, checkpoint parts: many objects.
        expect(counts[OLD.id]).toBeGreaterThan(2 * s.backups.length + 30);
        // A limit below 1 rewrites nothing; a limit of 1 rewrites one object and the manifest naming it at most.
        const none = await tier.reseal(s.chain.ledgerId, ring, 0);
        expect(none.resealed).toBe(0);
        expect(none.remaining).toBeGreaterThan(s.backups.length);
        const one = await tier.reseal(s.chain.ledgerId, ring, 1);
        expect(one.resealed).toBeGreaterThanOrEqual(1);
        expect(one.resealed).toBeLessThanOrEqual(2);
        expect(one.remaining).toBeLessThan(none.remaining);
        await tier.close();
      }
      const steps = await finish(kind, where, s.chain.ledgerId, 3);
      expect(steps).toBeGreaterThan(2);
      await restoresAll(kind, where, fresh, s);
      await oldGone(kind, where, s);
      const { tier } = kind.open(where, fresh);
      const head = await tier.latest(s.chain.ledgerId);
      expect(head!.manifest.height).toBe(29);
      expect(s.ids.has(head!.id)).toBe(false);
      if (kind.pointer) expect(kind.pointer()).toBe(head!.id);
      await tier.close();
    });

    it('goes on across saves made between its steps (under the new key, on top of old objects)', async () => {
      const where = join(root, `t${n++}`);
      const s = await seed(kind, where);
      const id = s.chain.ledgerId;
      const { tier } = kind.open(where, ring);
      await tier.reseal(id, ring, 3);
      await tier.reseal(id, ring, 3);
      // The service saves between steps: new blocks and a record under the new key, after the old chain.
      const longer = makeChain(ring, 5, s.chain);
      await tier.append(id, longer.blocks[29]!.hash, longer.stored.slice(30), recordFor(ring, longer, 34, 'fourth'));
      await tier.reseal(id, ring, 3);
      await tier.close();
      const now = { ...s, chain: longer, backups: await listed(kind, where, ring, id) };
      expect(now.backups.map((b) => b.name)).toContain('fourth');
      await finish(kind, where, id, 3);
      // The same backups; the database's history lists by when a row was added, so there a backup saved during the
      // rotation comes before the older ones re-sealed after it.
      const sorted = (bs: BackupRecord[]) => bs.map((b) => JSON.stringify(shape(b))).sort();
      expect(sorted(await listed(kind, where, fresh, id))).toEqual(sorted(now.backups));
      await restoresAll(kind, where, fresh, now, true);
      await oldGone(kind, where, s);
    });

    it('refuses an object under a key the keyring lacks, naming it, and writes nothing', async () => {
      const where = join(root, `t${n++}`);
      const s = await seed(kind, where);
      const other = new Sealer(parseKey(generateKey()));
      {
        const { tier } = kind.open(where, old);
        await tier.putPack(s.chain.ledgerId, s.chain.blocks[7]!.hash, packOf(other, s.chain, 8, 12));
        await tier.close();
      }
      const before = await listed(kind, where, old, s.chain.ledgerId);
      const { tier, store } = kind.open(where, ring);
      const counts = await tier.keyCounts(s.chain.ledgerId);
      expect(counts[other.keyId]).toBe(1);
      const ids: string[] = [];
      if (store.list) for await (const id of store.list('')) ids.push(id);
      const pins = kind.pinned?.();
      const err = await tier.reseal(s.chain.ledgerId, ring, 1000).catch((e: unknown) => e);
      expect(kind.pinned?.()).toBe(pins);
      expect(err).toBeInstanceOf(IntegrityError);
      expect((err as Error).message).toContain(other.keyId);
      const after: string[] = [];
      if (store.list) for await (const id of store.list('')) after.push(id);
      expect(after).toEqual(ids);
      expect(await tier.keyCounts(s.chain.ledgerId)).toEqual(counts);
      await tier.close();
      expect((await listed(kind, where, old, s.chain.ledgerId)).map((b) => b.id)).toEqual(before.map((b) => b.id));
    });

    it('a step that fails half way leaves every backup restorable, and later steps finish', async () => {
      const where = join(root, `t${n++}`);
      const s = await seed(kind, where);
      for (const ok of [0, 1, 2, 3, 5, 8, 13]) {
        const { tier } = kind.open(where, ring, (store) => failing(store, ok));
        await tier.reseal(s.chain.ledgerId, ring, 4).catch((err: unknown) => {
          expect(err).toBeInstanceOf(UnavailableError);
        });
        await tier.close();
        await restoresAll(kind, where, ring, s, true);
      }
      await finish(kind, where, s.chain.ledgerId, 4);
      await restoresAll(kind, where, fresh, s);
      await oldGone(kind, where, s);
    });

    it('a step whose deletes fail half way (old copies being freed) leaves every backup restorable', async () => {
      const where = join(root, `t${n++}`);
      const s = await seed(kind, where);
      for (const ok of [0, 1, 3, 6, 10]) {
        const { tier } = kind.open(where, ring, (store) => failing(store, ok, 'delete'));
        await tier.reseal(s.chain.ledgerId, ring, 5).catch((err: unknown) => {
          expect(err).toBeInstanceOf(UnavailableError);
        });
        await tier.close();
        await restoresAll(kind, where, ring, s, true);
      }
      await finish(kind, where, s.chain.ledgerId, 5);
      await restoresAll(kind, where, fresh, s);
      await oldGone(kind, where, s);
    });
  });
}
