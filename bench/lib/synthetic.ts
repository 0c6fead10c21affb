import type { Sealer } from '../../src/crypto/seal.js';
import { makeBlock } from '../../src/ledger/block.js';
import { parseRegister, parseTransfer, parseUpdate } from '../../src/ledger/transactions.js';
import type { Block, Transaction } from '../../src/ledger/types.js';
import { sealRecord } from '../../src/crypto/records.js';
import { sealBlock } from '../../src/crypto/sealed-blocks.js';
import type { StoredBlock } from '../../src/crypto/stored-block.js';
import type { BackupTier } from '../../src/tiers/tier.js';
import type { BackupRecord } from '../../src/crypto/records.js';
import { sealCheckpoint } from '../../src/crypto/checkpoints.js';
import { sealPack, type PackEntry } from '../../src/crypto/packs.js';
import { WorldState } from '../../src/ledger/state.js';
import { propertyInput } from './workload.js';

/** TxMaker gives block i's transactions (i >= 1; block 0 is the genesis block, with none). */
export type TxMaker = (i: number, timestamp: string) => Transaction[];

/** registerBenchProperty registers the i-th benchmark property: the same blocks (about 560 bytes sealed) saves make. */
export const registerBenchProperty: TxMaker = (i, timestamp) => [
  parseRegister(propertyInput('synthetic', i), timestamp),
];

/**
 * mixedOver is a realistic ledger over `properties` properties: the first blocks register them, then each block
 * updates one (two in three) or transfers one to a new owner (one in three), spread over all of them.
 */
export function mixedOver(properties: number): TxMaker {
  const owners: string[] = [];
  return (i, timestamp) => {
    if (i <= properties) {
      const input = propertyInput('mix', i - 1);
      owners[i - 1] = input.owner;
      return [parseRegister(input, timestamp)];
    }
    const j = (i * 7919) % properties;
    const id = `bench-mix-${j}`;
    if (i % 3 === 0) {
      const to = `owner-${i % 100_003}${owners[j] === `owner-${i % 100_003}` ? '-b' : ''}`;
      const tx = parseTransfer(id, { from: owners[j], to }, timestamp);
      owners[j] = to;
      return [tx];
    }
    return [parseUpdate(id, { attributes: { inspected: timestamp, visits: i % 1000 } }, timestamp)];
  };
}

/**
 * sealedChain yields a chain of n sealed blocks, one per second of 2026 from New Year on, in batches of `batch`:
 * memory stays bounded at any n. Blocks are made and sealed with pawledger's own makeBlock and sealBlock.
 */
export function* sealedChain(
  sealer: Sealer,
  n: number,
  makeTxs: TxMaker = registerBenchProperty,
  batch = 5000,
): Generator<StoredBlock[]> {
  let previous: Block | null = null;
  let ledgerId = '';
  let out: StoredBlock[] = [];
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  for (let i = 0; i < n; i++) {
    const ts = new Date(t0 + i * 1000).toISOString();
    const enc = makeBlock(previous, previous ? makeTxs(i, ts) : [], ts);
    if (!previous) ledgerId = enc.block.hash;
    out.push(sealBlock(sealer, ledgerId, enc));
    previous = enc.block;
    if (out.length >= batch) {
      yield out;
      out = [];
    }
  }
  if (out.length) yield out;
}

/**
 * loadTiers stores one chain of n blocks in every tier with every block loose (the layout before packs, and with
 * LEDGER_PACK_BYTES=0), then one manual backup record of its head in each: loadPacked without packs or checkpoints.
 * This is how a restore benchmark gets a long chain in minutes rather than by n saves.
 */
export async function loadTiers(
  tiers: BackupTier[],
  sealer: Sealer,
  n: number,
  options: { makeTxs?: TxMaker; progress?: (blocks: number) => void } = {},
): Promise<BackupRecord[]> {
  return loadPacked(tiers, sealer, n, { ...options, packBytes: 0, checkpointEvery: 0 });
}

/** LayoutOptions say how a loaded chain is laid out, as a running ledger would leave it (LEDGER_PACK_BYTES etc.). */
export interface LayoutOptions {
  /** packBytes is the block bodies a pack gathers; 0 stores every block loose (the layout before packs). */
  packBytes?: number;
  /** keepLoose is how many of the newest blocks stay loose. */
  keepLoose?: number;
  /** checkpointEvery takes a checkpoint of the world state at every multiple of it; 0 takes none. */
  checkpointEvery?: number;
}

/**
 * loadPacked stores one chain of n blocks in every tier as a compacting ledger leaves it: settled blocks in packs of
 * about packBytes of bodies (putPack), the newest keepLoose blocks loose (append), and the newest checkpoint at a
 * multiple of checkpointEvery (putCheckpoint), then one manual backup record of the head in each tier. A tier without
 * putPack gets every block loose. The chain is made and sealed once, in bounded memory (one pack at a time).
 */
export async function loadPacked(
  tiers: BackupTier[],
  sealer: Sealer,
  n: number,
  options: { makeTxs?: TxMaker; progress?: (blocks: number) => void } & LayoutOptions = {},
): Promise<BackupRecord[]> {
  const packBytes = options.packBytes ?? 512 * 1024;
  const keepLoose = options.keepLoose ?? 256;
  const every = options.checkpointEvery ?? 1000;
  const makeTxs = options.makeTxs ?? registerBenchProperty;
  const lastPacked = packBytes > 0 ? n - 1 - keepLoose : -1;
  const cpAt = every > 0 && n > every ? Math.floor((n - 1) / every) * every : -1;
  const state = new WorldState();
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  let previous: Block | null = null;
  let ledgerId = '';
  let size = 0;
  let parent: string | null = null;
  let entries: PackEntry[] = [];
  let loose: StoredBlock[] = [];
  let entryBytes = 0;
  let cp: ReturnType<typeof sealCheckpoint> | null = null;
  const flushPack = async () => {
    if (entries.length === 0) return;
    const pack = sealPack(sealer, ledgerId, entries);
    size += pack.sealed.length;
    for (const tier of tiers) {
      // The local store packs blocks it holds: it gets them loose first, as saves leave them, then the pack.
      if (!tier.putPack || tier.name === 'local')
        await tier.append(
          ledgerId,
          parent,
          entries.map((e) => sealed(e)),
        );
      if (tier.putPack) await tier.putPack(ledgerId, parent, pack);
    }
    parent = pack.hashes.at(-1)!;
    options.progress?.(pack.to + 1);
    entries = [];
    entryBytes = 0;
  };
  // A tier without packs gets the same blocks loose, sealed one by one as a save seals them.
  const bySeal = new Map<string, StoredBlock>();
  const sealed = (e: PackEntry) => bySeal.get(e.hash)!;
  const flushLoose = async () => {
    if (loose.length === 0) return;
    for (const tier of tiers) await tier.append(ledgerId, parent, loose);
    size += loose.reduce((s, b) => s + b.sealed.length, 0);
    parent = loose.at(-1)!.hash;
    options.progress?.(loose.at(-1)!.height + 1);
    loose = [];
  };
  for (let i = 0; i < n; i++) {
    const ts = new Date(t0 + i * 1000).toISOString();
    const enc = makeBlock(previous, previous ? makeTxs(i, ts) : [], ts);
    if (!previous) ledgerId = enc.block.hash;
    state.apply(enc.block);
    previous = enc.block;
    if (i <= lastPacked) {
      entries.push({ height: i, hash: enc.block.hash, body: enc.body });
      if (tiers.some((t) => !t.putPack || t.name === 'local'))
        bySeal.set(enc.block.hash, sealBlock(sealer, ledgerId, enc));
      entryBytes += enc.body.length;
      if (entryBytes >= packBytes || i === lastPacked) {
        await flushPack();
        bySeal.clear();
      }
    } else {
      loose.push(sealBlock(sealer, ledgerId, enc));
      if (loose.length >= 5000) await flushLoose();
    }
    if (i === cpAt) cp = sealCheckpoint(sealer, ledgerId, enc.block.hash, state);
  }
  await flushLoose();
  if (cp) for (const tier of tiers) await tier.putCheckpoint?.(ledgerId, cp);
  const record = sealRecord(sealer, {
    ledgerId,
    name: 'bench',
    kind: 'manual',
    createdAt: new Date(),
    createdBy: null,
    height: previous!.index,
    headHash: previous!.hash,
    sizeBytes: size,
  });
  const out: BackupRecord[] = [];
  for (const tier of tiers) out.push(await tier.putBackup(record));
  return out;
}
