/**
 * restore-child: one restore in a process of its own, so its peak memory is its own. bench/lib/restore-runner.ts
 * starts it as `node --import tsx bench/lib/restore-child.ts '<RestoreJob as JSON>'`; it prints one JSON line, a
 * RestoreOutcome. The restore is what `pawledger restore` and startup do: restoreInto an empty local store (fetch,
 * decrypt and verify every block, write the new generation, switch CURRENT). The restore runs the built code in
 * dist/ (what `npm start` runs; `npm run bench` builds first): only there does it open blocks on a worker thread,
 * which needs the compiled worker file. The tiers it reads are opened from the sources, as everywhere in bench/.
 */
import { readFileSync } from 'node:fs';
import { restoreInto } from '../../dist/engine/restore.js';
import { parseKey } from '../../dist/crypto/key.js';
import { Sealer } from '../../dist/crypto/seal.js';
import { LocalStore } from '../../dist/store/local-store.js';
import type { Sealer as SourceSealer } from '../../src/crypto/seal.js';
import { openSource } from './restore-source.js';
import type { RestoreJob, RestoreOutcome } from './restore-runner.js';

/**
 * peakRssKb is this process's peak resident set (kB): VmHWM from /proc/self/status, the high-water mark of the
 * memory this program mapped since exec. process.resourceUsage().maxRSS is not used: Linux carries the parent's
 * peak RSS at fork over into the child's maxrss, so a child of a large parent would report the parent's size.
 */
function peakRssKb(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS;
}

const job = JSON.parse(process.argv[2] ?? '') as RestoreJob;
const sealer = new Sealer(parseKey(job.key));
// The same class built twice (src for the tiers, dist for the restore): identical at run time, distinct to the type checker.
const { tier, record } = await openSource(job.source, sealer as unknown as SourceSealer);
const { store } = await LocalStore.open(job.target);
// The peak only grows: read before, it is what the process needed to start and open the tier.
const before = peakRssKb();
const t = performance.now();
// Likewise the tier: its type names the src Sealer (BackupTier.reseal), the restore's the dist one.
const chain = await restoreInto(store, tier as unknown as Parameters<typeof restoreInto>[1], record, sealer);
const ms = performance.now() - t;
const peak = peakRssKb();
if (chain.head.hash !== record.headHash)
  throw new Error(`restored head ${chain.head.hash}, expected ${record.headHash}`);
await store.close();
await tier.close();
const outcome: RestoreOutcome = { ms, blocks: record.height + 1, rssBeforeKb: before, peakRssKb: peak };
process.stdout.write(`${JSON.stringify(outcome)}\n`);
