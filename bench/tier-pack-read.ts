/**
 * How fast a pack tier gives back a packed chain, per object store: embedded IPFS, a folder (dir), S3 (s3rver).
 *   node --import tsx bench/tier-pack-read.ts [blocks, default 100000; e.g. 100000,1000000] [ipfs|dir|s3]
 * Each tier gets one chain as the ledger's packs of about 512 KiB (LEDGER_PACK_BYTES' default) through putPack, then
 * one backup record. A fresh tier object (nothing cached) then reads the backup as pages, twice each way: "read"
 * only fetches and decodes (what the tier costs), "read+open" also authenticates and decrypts every pack and hashes
 * every block (openPage 'full', what a restore's verification adds on one core), and "verify" is a restore's
 * verification from the built code (dist/: `npm run build` first; packs open on a worker thread there), taking the
 * checkpoint at the head as startup does, without the local store's writes (it cannot take pack pages yet). The manifest's size, its pack lists' and the upload of one more save are printed too.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { ChainReplayer, verifiedBatches } from '../dist/engine/replay.js';
import { openCheckpoint } from '../dist/crypto/checkpoints.js';
import { Sealer as BuiltSealer } from '../dist/crypto/seal.js';
import { sealCheckpoint, type SealedCheckpoint } from '../src/crypto/checkpoints.js';
import { WorldState } from '../src/ledger/state.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseKey, generateKey } from '../src/crypto/key.js';
import { pageRange, sealPack, type PackEntry, type SealedPack } from '../src/crypto/packs.js';
import { sealRecord, type BackupRecord } from '../src/crypto/records.js';
import { Sealer } from '../src/crypto/seal.js';
import { sealBlock } from '../src/crypto/sealed-blocks.js';
import { openPage } from '../src/engine/page-opener.js';
import { encodeBody, makeBlock } from '../src/ledger/block.js';
import type { Block } from '../src/ledger/types.js';
import { silentLogger } from '../src/log.js';
import { DirStore } from '../src/objects/dir.js';
import { EmbeddedIpfsStore } from '../src/objects/embedded.js';
import type { ObjectStore } from '../src/objects/object-store.js';
import { S3Store } from '../src/objects/s3.js';
import { FilePointerStore } from '../src/pointers/file.js';
import { ListingCatalog } from '../src/tiers/packs/listing-catalog.js';
import { PackTier } from '../src/tiers/packs/pack-tier.js';
import { PointerCatalog } from '../src/tiers/packs/pointer-catalog.js';
import { registerBenchProperty } from './lib/synthetic.js';
import { S3RVER_CREDENTIALS, startS3rver } from '../test/support/s3.js';

const PACK_BODY_BYTES = 512 * 1024;
const sizes = (process.argv[2] ?? '100000').split(',').map(Number);
// An optional second argument keeps only the tiers whose name starts with it (ipfs, dir, s3).
const only = process.argv[3] ?? '';
const key = generateKey();
const sealer = new Sealer(parseKey(key));
// The restore runs the built code (dist/, `npm run build` first): only there does it open packs on a worker thread.
const builtSealer = new BuiltSealer(parseKey(key) as never);
const root = await mkdtemp(join(tmpdir(), 'pl-bench-packs-'));
const s3 = await startS3rver(['bench']);

interface Built {
  ledgerId: string;
  packs: SealedPack[];
  head: Block;
  bytes: number;
  checkpoint: SealedCheckpoint;
}

// The chain as the ledger packs it: bodies gathered into packs of about PACK_BODY_BYTES, one seal each.
function build(n: number): Built {
  const packs: SealedPack[] = [];
  let previous: Block | null = null;
  let ledgerId = '';
  let run: PackEntry[] = [];
  let runBytes = 0;
  let bytes = 0;
  const state = new WorldState();
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  for (let i = 0; i < n; i++) {
    const ts = new Date(t0 + i * 1000).toISOString();
    const enc = makeBlock(previous, previous ? registerBenchProperty(i, ts) : [], ts);
    if (!previous) ledgerId = enc.block.hash;
    const body = encodeBody(enc.block);
    run.push({ height: i, hash: enc.block.hash, body });
    runBytes += body.length;
    state.apply(enc.block);
    previous = enc.block;
    if (runBytes >= PACK_BODY_BYTES || i === n - 1) {
      const pack = sealPack(sealer, ledgerId, run);
      bytes += pack.sealed.length + 32 * pack.hashes.length;
      packs.push(pack);
      run = [];
      runBytes = 0;
    }
  }
  const checkpoint = sealCheckpoint(sealer, ledgerId, previous!.hash, state);
  return { ledgerId, packs, head: previous!, bytes, checkpoint };
}

function tierOver(name: string, store: ObjectStore, pointerFile?: string): { tier: PackTier; store: ObjectStore } {
  let tier: PackTier | null = null;
  const read = (id: string) => tier!.getRecord(id);
  const catalog = pointerFile
    ? new PointerCatalog([new FilePointerStore(pointerFile)], read, silentLogger())
    : new ListingCatalog(store, read);
  tier = new PackTier({ name, label: name, store, sealer, catalog, log: silentLogger() });
  return { tier, store };
}

const stores: Record<string, (n: number) => Promise<{ make: () => { tier: PackTier; store: ObjectStore } }>> = {
  'ipfs (embedded)': async (n) => {
    const dir = join(root, `ipfs-${n}`);
    return { make: () => tierOver('ipfs', new EmbeddedIpfsStore({ dir }), join(dir, 'latest.json')) };
  },
  dir: async (n) => {
    const dir = join(root, `dir-${n}`);
    await mkdir(dir, { recursive: true });
    return { make: () => tierOver('dir', new DirStore({ root: dir })) };
  },
  's3 (s3rver)': async (n) => ({
    make: () =>
      tierOver(
        's3',
        new S3Store({
          bucket: 'bench',
          prefix: `n${n}`,
          endpoint: s3.endpoint,
          region: 'us-east-1',
          forcePathStyle: true,
          credentials: S3RVER_CREDENTIALS,
        }),
      ),
  }),
};

const mb = (bytes: number, ms: number) => (bytes / 1024 / 1024 / (ms / 1000)).toFixed(0);
for (const n of sizes) {
  const t = performance.now();
  const chain = build(n);
  console.log(
    `\n${n} blocks in ${chain.packs.length} packs, ${(chain.bytes / 1024 / 1024).toFixed(1)} MiB stored (built in ${((performance.now() - t) / 1000).toFixed(1)} s)`,
  );
  console.log(
    '| tier | load (putPack) | read | MB/s | read+open | MB/s | verify | manifest | pack lists | next save uploads |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const [name, open] of Object.entries(stores)) {
    if (!name.startsWith(only)) continue;
    const { make } = await open(n);
    const { tier: writer, store } = make();
    await writer.init();
    const tl = performance.now();
    let parent: string | null = null;
    for (const pack of chain.packs) {
      await writer.putPack(chain.ledgerId, parent, pack);
      parent = pack.hashes.at(-1)!;
    }
    const loadMs = performance.now() - tl;
    const record = await writer.putBackup(
      sealRecord(sealer, {
        ledgerId: chain.ledgerId,
        name: 'bench',
        kind: 'manual',
        createdAt: new Date(),
        createdBy: null,
        height: n - 1,
        headHash: chain.head.hash,
        sizeBytes: chain.bytes,
      }),
    );
    await writer.putCheckpoint(chain.ledgerId, chain.checkpoint);
    const m = await writer.manifest(record.id);
    const manifestBytes = (await store.get(record.id)).length;
    const listBytes = m.lists.reduce((s, l) => s + (l.ref?.bytes ?? 0), 0);
    const listObjects = m.lists.filter((l) => l.ref).length;
    // One more save: a block after the head, as a replicator sends it.
    const ts = new Date(Date.parse(chain.head.timestamp) + 1000).toISOString();
    const next = makeBlock(chain.head, registerBenchProperty(n, ts), ts);
    const { bytesWritten } = await writer.append(chain.ledgerId, chain.head.hash, [
      sealBlock(sealer, chain.ledgerId, next),
    ]);
    await writer.close();
    const times = { read: [] as number[], open: [] as number[] };
    for (const mode of ['read', 'open', 'read', 'open'] as const) {
      const reader = make().tier;
      await reader.init();
      const t0 = performance.now();
      let blocks = 0;
      for await (const page of reader.readChainPages(record as BackupRecord)) {
        const { from, to } = pageRange(page);
        blocks += to - from + 1;
        if (mode === 'open' && openPage(sealer, chain.ledgerId, name, page, 'full').fail)
          throw new Error('open failed');
      }
      if (blocks !== n) throw new Error(`${name} read ${blocks} blocks of ${n}`);
      times[mode].push(performance.now() - t0);
      await reader.close();
    }
    // A restore's verification as startup runs it (the local store cannot take pack pages yet, so nothing is written):
    // the checkpoint at the head opened, every pack authenticated, every block hashed and linked, the head matched.
    const restores: number[] = [];
    for (let round = 0; round < 2; round++) {
      const reader = make().tier;
      await reader.init();
      const latest = (await reader.listBackups(chain.ledgerId, { limit: 1 }))[0]!;
      const t0 = performance.now();
      const cp = (await reader.checkpointFor(latest))!;
      const opened = await openCheckpoint(builtSealer, chain.ledgerId, cp, cp.parts(), name);
      const replayer = new ChainReplayer(builtSealer, name, chain.ledgerId, { ...cp, state: opened.state });
      const expect = { height: latest.height, hash: latest.headHash };
      for await (const batch of verifiedBatches(reader.readChainPages(latest) as never, replayer, expect)) void batch;
      replayer.finish(expect);
      restores.push(performance.now() - t0);
      await reader.close();
    }
    const best = (xs: number[]) => Math.min(...xs);
    console.log(
      `| ${name} | ${(loadMs / 1000).toFixed(1)} s | ${best(times.read).toFixed(0)} ms | ${mb(chain.bytes, best(times.read))} | ${best(times.open).toFixed(0)} ms | ${mb(chain.bytes, best(times.open))} | ${best(restores).toFixed(0)} ms | ${manifestBytes} B | ${listBytes} B in ${listObjects} | ${bytesWritten} B |`,
    );
  }
}
await s3.stop();
await rm(root, { recursive: true, force: true });
