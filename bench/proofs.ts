/**
 * Proofs at scale: for chains of 1k to 1M blocks (a real local store, opened by the real Ledger), the time to rebuild
 * the accumulator from the chain's block hashes, then the size of a property's proof and the time to make and to
 * verify it, per block proved; and a consistency proof from the middle of the chain to its head.
 *
 *   node --import tsx bench/proofs.ts [blocks ...]      (default 1000 10000 100000 1000000)
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.js';
import { generateKey, parseKey } from '../src/crypto/key.js';
import type { ChainPage } from '../src/crypto/packs.js';
import { Sealer } from '../src/crypto/seal.js';
import { appendLeaf, leafOf, type Peak } from '../src/ledger/accumulator.js';
import { canonicalJson } from '../src/ledger/canonical.js';
import { verifyConsistencyProof, verifyProofText } from '../src/ledger/proof-verifier.js';
import { Ledger } from '../src/service/ledger.js';
import { ACCUMULATOR_FILE } from '../src/store/accumulator-file.js';
import { LocalStore } from '../src/store/local-store.js';
import { sealedChain } from './lib/synthetic.js';
import { propertyInput } from './lib/workload.js';

const SAMPLES = 100;
const HISTORY = 10;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t };
}

// A local store holding n blocks, each registering one property (bench-synthetic-i), sealed with `sealer`.
async function fill(dir: string, sealer: Sealer, n: number): Promise<void> {
  const { store } = await LocalStore.open(dir);
  const batches = sealedChain(sealer, n);
  const first = batches.next().value!;
  const ledgerId = first[0]!.hash;
  function* pages(): Generator<ChainPage[]> {
    yield [{ blocks: first }];
    for (const b of batches) yield [{ blocks: b }];
  }
  await store.replace(ledgerId, pages());
  await store.close();
}

interface Row {
  n: number;
  openS: number;
  rebuildS: number;
  nodeMiB: number;
  oneBytes: number;
  oneMakeMs: number;
  oneVerifyMs: number;
  perBlockBytes: number;
  perBlockMakeMs: number;
  perBlockVerifyMs: number;
  consistencyBytes: number;
  consistencyMakeMs: number;
  consistencyVerifyMs: number;
  rssMiB: number;
}

async function measure(n: number): Promise<Row> {
  const dir = await mkdtemp(join(tmpdir(), 'pawledger-bench-proofs-'));
  try {
    const key = generateKey();
    await fill(dir, new Sealer(parseKey(key)), n);
    const config = { ...loadConfig({ LEDGER_DB: 'off', LEDGER_ENCRYPTION_KEY: key, LOG_LEVEL: 'warn' }), dataDir: dir };
    const opened = await timed(() => Ledger.open({ config }));
    const ledger = opened.value;
    try {
      const rebuilt = await timed(() => ledger.proofsReady());
      if (rebuilt.value.state !== 'ready') throw new Error('the accumulator was not built');
      // One property with a longer history: registered, then updated, by real saves.
      await ledger.register({ id: 'history', name: 'h', address: 'a', owner: 'o' });
      for (let i = 1; i < HISTORY; i++) await ledger.update('history', { attributes: { step: i } });

      const one = { bytes: [] as number[], make: [] as number[], verify: [] as number[] };
      for (let s = 0; s < SAMPLES; s++) {
        const i = 1 + Math.floor((s * (n - 1)) / SAMPLES);
        const made = await timed(() => ledger.proof(propertyInput('synthetic', i).id));
        const text = `${canonicalJson(made.value.proof)}\n`;
        const checked = await timed(() => verifyProofText(text));
        if (!checked.value.ok) throw new Error(`proof of block ${i} failed: ${checked.value.reason}`);
        one.bytes.push(Buffer.byteLength(text));
        one.make.push(made.ms);
        one.verify.push(checked.ms);
      }
      const hist = { bytes: [] as number[], make: [] as number[], verify: [] as number[] };
      for (let s = 0; s < 20; s++) {
        const made = await timed(() => ledger.proof('history'));
        const text = `${canonicalJson(made.value.proof)}\n`;
        const checked = await timed(() => verifyProofText(text));
        if (!checked.value.ok || made.value.proof.blocks.length !== HISTORY) throw new Error('history proof failed');
        hist.bytes.push(Buffer.byteLength(text) / HISTORY);
        hist.make.push(made.ms / HISTORY);
        hist.verify.push(checked.ms / HISTORY);
      }
      const head = ledger.head.index;
      const c = await timed(() => ledger.consistency(Math.floor(head / 2), head));
      const cv = await timed(() => verifyConsistencyProof(c.value));
      if (!cv.value.ok) throw new Error('consistency proof failed');
      const nodeBytes = (await stat(join(dir, ACCUMULATOR_FILE))).size;
      return {
        n,
        openS: opened.ms / 1000,
        rebuildS: rebuilt.ms / 1000,
        nodeMiB: nodeBytes / 2 ** 20,
        oneBytes: median(one.bytes),
        oneMakeMs: median(one.make),
        oneVerifyMs: median(one.verify),
        perBlockBytes: median(hist.bytes),
        perBlockMakeMs: median(hist.make),
        perBlockVerifyMs: median(hist.verify),
        consistencyBytes: Buffer.byteLength(`${canonicalJson(c.value)}\n`),
        consistencyMakeMs: c.ms,
        consistencyVerifyMs: cv.ms,
        rssMiB: process.memoryUsage().rss / 2 ** 20,
      };
    } finally {
      await ledger.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// What a save adds: appending one leaf to the peaks (the node file write is not awaited by the save).
function appendMicros(): number {
  const peaks: Peak[] = [];
  const leaves = 200_000;
  const t = performance.now();
  for (let i = 0; i < leaves; i++) appendLeaf(peaks, leafOf(i.toString(16).padStart(64, '0')));
  return ((performance.now() - t) * 1000) / leaves;
}

const sizes = process.argv.slice(2).map(Number);
const rows: Row[] = [];
for (const n of sizes.length ? sizes : [1_000, 10_000, 100_000, 1_000_000]) {
  process.stderr.write(`proofs: ${n} blocks...\n`);
  rows.push(await measure(n));
}
const f = (x: number, d = 2) => x.toFixed(d);
console.log(`accumulator append (what a save adds): ${f(appendMicros())} us per block\n`);
console.log(
  '| blocks | open (s) | accumulator rebuild (s) | node file (MiB) | proof of 1 block: bytes / make ms / verify ms | ' +
    `${HISTORY}-block history, per block: bytes / make ms / verify ms | consistency n/2 -> n: bytes / make ms / verify ms | RSS (MiB) |`,
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows)
  console.log(
    `| ${r.n.toLocaleString('en-US')} | ${f(r.openS, 1)} | ${f(r.rebuildS, 2)} | ${f(r.nodeMiB, 1)} | ${r.oneBytes} / ${f(r.oneMakeMs)} / ${f(r.oneVerifyMs)} | ` +
      `${Math.round(r.perBlockBytes)} / ${f(r.perBlockMakeMs)} / ${f(r.perBlockVerifyMs)} | ` +
      `${r.consistencyBytes} / ${f(r.consistencyMakeMs)} / ${f(r.consistencyVerifyMs)} | ${Math.round(r.rssMiB)} |`,
  );
