import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, sealCheckpoint } from '../../src/crypto/checkpoints.js';
import { generateKey, parseKey } from '../../src/crypto/key.js';
import { checkRecord } from '../../src/crypto/records.js';
import { Sealer } from '../../src/crypto/seal.js';
import { IntegrityError } from '../../src/errors.js';
import type { SqlClient } from '../../src/db/client.js';
import { openPglite } from '../../src/db/pglite.js';
import { PostgresTier } from '../../src/tiers/postgres.js';
import { expected, opened, packOf, stateAt } from '../conformance/pack-suite.js';
import { describeTier } from '../conformance/tier-suite.js';
import { makeChain, recordFor } from '../support/chain.js';

// PGlite takes seconds to create a database: one per file, shared by the cases (each works on its own ledger).
let dir: string;
let shared: SqlClient;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pl-tier-pglite-'));
  shared = await openPglite(dir);
}, 60_000);
afterAll(async () => {
  await shared?.close();
  await rm(dir, { recursive: true, force: true });
});

const make = () =>
  new PostgresTier({ label: 'PGlite (test)', connect: async () => ({ ...shared, close: async () => {} }) });
describeTier('PGlite', { branches: true, create: async () => make(), reopen: async () => make() });

// Key rotation runs through the same SQL as on a server (src/tiers/postgres-reseal.ts); test/db/reseal.test.ts has the rest.
describe('PGlite key rotation', () => {
  it('counts blocks, packs, checkpoint parts and records by key, and re-seals them all in small steps', async () => {
    const OLD = parseKey(generateKey());
    const NEW = parseKey(generateKey());
    const old = new Sealer(OLD);
    const fresh = new Sealer(NEW);
    const tier = make();
    await tier.init();
    const chain = makeChain(old, 12);
    await tier.append(chain.ledgerId, null, chain.stored, recordFor(old, chain, 11));
    await tier.putPack(chain.ledgerId, null, packOf(old, chain, 0, 7));
    const cp = sealCheckpoint(old, chain.ledgerId, chain.blocks[9]!.hash, stateAt(chain, 9));
    await tier.putCheckpoint(chain.ledgerId, cp);
    const total = 4 + 1 + cp.parts.length + 1;
    expect(await tier.keyCounts(chain.ledgerId)).toEqual({ [OLD.id]: total });
    let step = { resealed: 0, remaining: total };
    for (let i = 0; i < 20 && step.remaining > 0; i++)
      step = await tier.reseal(chain.ledgerId, new Sealer(NEW, [OLD]), 2);
    expect(step.remaining).toBe(0);
    expect(await tier.keyCounts(chain.ledgerId)).toEqual({ [NEW.id]: total });
    const [record] = await tier.listBackups(chain.ledgerId);
    checkRecord(fresh, record!);
    expect((await opened(tier, fresh, record!)).blocks).toEqual(expected(chain));
    const stored = await tier.checkpointFor(record!);
    expect((await openCheckpoint(fresh, chain.ledgerId, stored!, stored!.parts(), 'PGlite')).summary.properties).toBe(
      9,
    );
    expect(() => checkRecord(old, record!)).toThrow(IntegrityError);
  }, 60_000);
});
