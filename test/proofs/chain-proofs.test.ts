/**
 * ChainProofs against a chain that grows by another way than a save (a standby following the writer appends blocks
 * to the running chain directly): the accumulator must notice it is behind, catch up from the store, and never put a
 * leaf at the wrong position.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReplayedChain } from '../../src/engine/replay.js';
import { type Peak, appendLeaf, chainRoot, leafOf, rootOfPeaks } from '../../src/ledger/accumulator.js';
import { verifyConsistencyProof } from '../../src/ledger/proof-verifier.js';
import { WorldState } from '../../src/ledger/state.js';
import { silentLogger } from '../../src/log.js';
import { ChainProofs } from '../../src/service/chain-proofs.js';
import { ChainReader } from '../../src/service/chain-reads.js';
import { LocalStore } from '../../src/store/local-store.js';
import { makeChain, testSealer } from '../support/chain.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const rootOf = (hashes: string[]) => {
  const peaks: Peak[] = [];
  for (const h of hashes) appendLeaf(peaks, leafOf(h));
  return chainRoot(hashes.length, rootOfPeaks(peaks)!).toString('hex');
};

describe('the accumulator behind a chain that grew without a save', () => {
  it('catches up before its next root or proof, and its roots stay those of the whole chain', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pawledger-chain-proofs-'));
    dirs.push(dir);
    const sealer = testSealer();
    const first = makeChain(sealer, 6);
    const { store } = await LocalStore.open(dir);
    await store.append(first.ledgerId, first.stored);
    const chain: ReplayedChain = {
      ledgerId: first.ledgerId,
      head: first.blocks.at(-1)!,
      state: new WorldState(),
      sizeBytes: 0,
      checkpoint: null,
    };
    const proofs = new ChainProofs(
      store,
      new ChainReader(store, sealer, () => chain),
      () => chain,
      silentLogger(),
      false,
    );
    proofs.start();
    await proofs.ready();
    expect(proofs.state).toBe('ready');
    const hashes = first.blocks.map((b) => b.hash);
    expect(proofs.rootAfter([])).toBe(rootOf(hashes));

    // The chain grows by 3 blocks behind the accumulator's back (as follow.ts does on a standby).
    const more = makeChain(sealer, 3, first);
    await store.append(first.ledgerId, more.stored.slice(6));
    chain.head = more.blocks.at(-1)!;
    expect(proofs.rootAfter([])).toBeUndefined();
    await expect(proofs.consistency(2, 8)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await proofs.ready();
    const all = more.blocks.map((b) => b.hash);
    expect(proofs.rootAfter([])).toBe(rootOf(all));
    expect(proofs.rebuilt).toBe(3);

    // A save's hook with the chain already moved past it does not append at the wrong place either.
    const after = makeChain(sealer, 2, more);
    await store.append(first.ledgerId, after.stored.slice(9));
    chain.head = after.blocks.at(-1)!;
    proofs.appended([after.blocks.at(-1)!.hash]);
    await proofs.ready();
    expect(proofs.rootAfter([])).toBe(rootOf(after.blocks.map((b) => b.hash)));
    const c = await proofs.consistency(5, 10);
    expect(c.to.root).toBe(rootOf(after.blocks.map((b) => b.hash)));
    expect(c.from.root).toBe(rootOf(all.slice(0, 6)));
    expect((await verifyConsistencyProof(c)).ok).toBe(true);
    await proofs.close();
    await store.close();
  });
});
