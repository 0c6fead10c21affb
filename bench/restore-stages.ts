/**
 * restore-stages: where the time of a restore from PostgreSQL goes. It loads n blocks into a fresh database, then
 * times each stage of a restore on its own over the whole chain (read the rows, AES-GCM, decode and hash, link and
 * Merkle checks, applying transactions, writing the new local generation) and the whole restoreInto, the median of
 * several runs. Stages 2 and 3 overlap (3 includes 2's work). The whole restore runs twice: from the TypeScript
 * sources in this thread, and as built in dist/ (npm run build first), where a worker thread opens the pages. With --profile, one more restoreInto runs under V8's
 * sampling profiler and its summary is printed. Run: npm run bench:restore-stages [-- --n=100000 --runs=5 --profile]
 */
import { createDecipheriv } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { restoreInto } from '../src/engine/restore.js';
import { parseKey } from '../src/crypto/key.js';
import { Sealer } from '../src/crypto/seal.js';
import { connectPostgres } from '../src/db/postgres.js';
import { decodeBody } from '../src/ledger/block.js';
import { storedMerkleRoot } from '../src/ledger/merkle.js';
import { WorldState } from '../src/ledger/state.js';
import type { Block } from '../src/ledger/types.js';
import { checkLink } from '../src/ledger/verify.js';
import { LocalStore } from '../src/store/local-store.js';
import type { StoredBlock } from '../src/crypto/stored-block.js';
import { PostgresTier } from '../src/tiers/postgres.js';
import { createDatabase, databaseUrl, DEFAULT_ADMIN_URL, dropDatabase } from './lib/pg.js';
import { ms, summarize, table } from './lib/stats.js';
import { profiled, summarizeProfile } from './lib/profile.js';
import { loadTiers } from './lib/synthetic.js';

const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const n = Number(arg('n', '100000'));
const runs = Number(arg('runs', '5'));
const server = process.env.BENCH_PG_URL ?? DEFAULT_ADMIN_URL;
const sealer = new Sealer(parseKey('b2'.repeat(32)));
const dbName = `pl_bench_stages_${process.pid}`;
const profile = process.argv.includes('--profile');
// The build users run (npm run build first): only there does a restore open blocks on a worker thread.
const dist = {
  ...(await import('../dist/engine/restore.js')),
  ...(await import('../dist/store/local-store.js')),
  ...(await import('../dist/crypto/seal.js')),
};
const distSealer = new dist.Sealer(parseKey('b2'.repeat(32)));
let profileSummary = '';

await createDatabase(server, dbName);
const root = await mkdtemp(join(tmpdir(), 'pl-bench-stages-'));
const tier = new PostgresTier({
  label: 'bench',
  connect: async () => connectPostgres(databaseUrl(server, dbName), { timeoutMs: 600_000 }),
});
const samples = new Map<string, number[]>();
const time = async <T>(stage: string, fn: () => T | Promise<T>): Promise<T> => {
  const t = performance.now();
  const out = await fn();
  samples.set(stage, [...(samples.get(stage) ?? []), performance.now() - t]);
  return out;
};
try {
  await tier.init();
  const [record] = await loadTiers([tier], sealer, n);
  const { ledgerId } = record!;
  for (let r = 0; r < runs; r++) {
    const pages = await time('1 read the rows (pg driver, bytea)', async () => {
      const out: StoredBlock[][] = [];
      for await (const p of tier.readChainPages(record!)) if ('blocks' in p) out.push(p.blocks);
      return out;
    });
    const all = pages.flat();
    await time('2 AES-256-GCM per block: key schedule + decrypt, no tag check', () => {
      const key = Buffer.alloc(32);
      for (const b of all)
        createDecipheriv('aes-256-gcm', key, b.sealed.subarray(10, 22)).update(
          b.sealed.subarray(22, b.sealed.length - 16),
        );
    });
    const bodies = await time('3 Sealer.open: decrypt and authenticate', () =>
      all.map((b) => sealer.open({ ledgerId, kind: 'block', height: b.height, hash: b.hash }, b.sealed)),
    );
    const blocks = await time('4 decodeBody: JSON.parse + SHA-256 of the body', () => bodies.map((b) => decodeBody(b)));
    await time('5 checkLink + Merkle root of the stored bytes', () => {
      let prev: Block | null = null;
      for (const [i, b] of blocks.entries()) {
        const why = checkLink(b, prev, i, storedMerkleRoot(bodies[i]!));
        if (why) throw new Error(`block ${i} ${why}`);
        prev = b;
      }
    });
    await time('6 WorldState.apply', () => {
      const state = new WorldState();
      for (const b of blocks) state.apply(b);
    });
    const { store } = await LocalStore.open(join(root, `write-${r}`));
    await time('7 write the new local generation (fsync, switch)', () =>
      store.replace(
        ledgerId,
        pages.map((blocks) => [{ blocks }]),
      ),
    );
    await store.close();
    const { store: target } = await LocalStore.open(join(root, `restore-${r}`));
    await time('restoreInto from the sources (one thread)', () => restoreInto(target, tier, record!, sealer));
    await target.close();
    const { store: built } = await dist.LocalStore.open(join(root, `built-${r}`));
    await time('restoreInto as built in dist/ (a worker opens pages)', () =>
      dist.restoreInto(built, tier as unknown as Parameters<typeof dist.restoreInto>[1], record!, distSealer),
    );
    await built.close();
    await rm(join(root, `built-${r}`), { recursive: true });
    await rm(join(root, `write-${r}`), { recursive: true });
    await rm(join(root, `restore-${r}`), { recursive: true });
  }
  if (profile) {
    const { store } = await LocalStore.open(join(root, 'profiled'));
    const p = await profiled(async () => void (await restoreInto(store, tier, record!, sealer)), 200);
    profileSummary = summarizeProfile(p, process.cwd(), n, 200, 20);
    await store.close();
  }
} finally {
  await tier.close();
  await dropDatabase(server, dbName);
  await rm(root, { recursive: true, force: true });
}
const rows = [...samples].map(([stage, xs]) => {
  const s = summarize(xs);
  return [stage, ms(s.median), ms(Math.min(...xs)), ms((s.median * 1000) / n)];
});
console.log(`restore stages at ${n.toLocaleString('en')} blocks, ${runs} runs`);
console.log(table(['stage', 'median ms', 'min ms', 'us/block'], rows, ['l', 'r', 'r', 'r']));
if (profileSummary)
  console.log(
    `\nOne more restoreInto under the CPU profiler (per block: "us/save" below means per block):\n${profileSummary}`,
  );
