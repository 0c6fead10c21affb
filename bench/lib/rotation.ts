/**
 * rotation: how fast a key rotation (issue #17) re-seals a ledger, and what saves wait during one. The measuring core
 * of bench/rotation.ts and of the report's "Key rotation" section.
 *
 * A chain of n blocks is loaded under an OLD key straight into the four places a ledger keeps sealed objects (a
 * database of its own, the local store, the embedded IPFS folder and a backup folder: loadPacked, laid out as a
 * compacting ledger leaves it: packs, the newest 256 blocks loose, a checkpoint at the newest multiple of 1,000, one
 * backup record). A Ledger then opens it under OLD as a server would (LEDGER_DATA_DIR, DATABASE_URL,
 * IPFS_PROVIDER=embedded, LEDGER_BACKUP_DIR), brings every tier level, runs maintain() (packs and a checkpoint as the
 * product makes them) and counts the objects by key. Then:
 *  1. speed: the ledger reopens with NEW active and OLD previous (LEDGER_PREVIOUS_KEYS) and `rotateKey()` is timed
 *     alone, nothing else running: total, per place (the Rotator's own progress tasks `re-seal <place>`, summed over
 *     passes), objects re-sealed per place, and the process's peak RSS during the rotation (VmHWM, reset just before
 *     through /proc/self/clear_refs; where that is refused, RSS sampled every 20 ms);
 *  2. saves beside a rotation: the ledger reopens with OLD active and NEW previous, so everything is to be re-sealed
 *     again, the same amount of work; `saves` sequential saves are timed with no rotation, then saves run one after
 *     another while `rotateKey()` runs in the background, until it ends or `duringSaves` were timed (then it finishes
 *     alone: saves back to back without end kept a 100k rotation from ending), then `saves` more with no rotation. The
 *     saves before and after bracket the ones during it on the same ledger.
 * The database and the folders are removed at the end (the caller drops them on Ctrl-C: see `name` and `dir`).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseKey } from '../../src/crypto/key.js';
import { Sealer } from '../../src/crypto/seal.js';
import type { RotationReport } from '../../src/engine/rotation.js';
import { POINTER_FILE } from '../../src/tiers/registry.js';
import type { BackupTier } from '../../src/tiers/tier.js';
import { reportProgress } from '../../src/util/progress.js';
import { localStoreTier } from './local-store-tier.js';
import { PawledgerBench } from './pawledger.js';
import { createDatabase, databaseUrl, dropDatabase } from './pg.js';
import { dbTier, dirTier, ipfsTier } from './restore-source.js';
import { ms, percentile, summarize, table } from './stats.js';
import { loadPacked } from './synthetic.js';

/** RotationPlace is one place's part of a timed rotation. */
export interface RotationPlace {
  place: string;
  /**
   * before is how many sealed items the place held under the old key before the rotation (keyCounts: in a pack tier
   * a pack counts its own seal and each block's inside it); after, under the old key and the new one when it ended.
   */
  before: number;
  afterOld: number;
  afterNew: number;
  /** resealed is how many stored objects the rotation rewrote there (a pack, a manifest, a block: one each). */
  resealed: number;
  /** ms is the Rotator's `re-seal <place>` progress tasks here (after the first count, steps, last count), all passes; null if none ran. */
  ms: number | null;
  /** error is why the place was skipped or failed, from the report. */
  error?: string;
}

/** RotationResult is one rotation benchmark: the timed rotation and the saves beside a second one. */
export interface RotationResult {
  blocks: number;
  /** objects is how many sealed objects were under the old key, all places together, before the rotation. */
  objects: number;
  batch: number;
  loadMs: number;
  state: RotationReport['state'];
  totalMs: number;
  places: RotationPlace[];
  /** peakRssKb is the process's peak RSS during the rotation; rssBeforeKb its RSS just before. */
  peakRssKb: number;
  rssBeforeKb: number;
  /** peakRssHow says how the peak was taken: VmHWM after a reset, or sampling. */
  peakRssHow: 'vmhwm' | 'sampled';
  /** saves beside the second rotation: latencies (ms) before, during and after it. */
  latency: {
    before: number[];
    during: number[];
    after: number[];
    /**
     * rotationMs is how long the second rotation took, the saves beside it included (at most duringSaves, then it went
     * on alone); state how it ended.
     */
    rotationMs: number;
    state: RotationReport['state'];
  };
  error?: string;
}

function statusKb(field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
}

// Resets the process's VmHWM to its current RSS (Linux: "5" to clear_refs); false where that is refused.
function resetPeak(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** level waits until every tier that is on is ok at the ledger's head (the async tiers catch up in the background). */
async function level(p: PawledgerBench, timeoutMs = 600_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const behind = p.ledger
      .status()
      .tiers.filter((t) => t.state !== 'off' && (t.state !== 'ok' || t.height !== p.ledger.head.index));
    if (behind.length === 0) return;
    if (performance.now() > end)
      throw new Error(`tiers not level after ${timeoutMs} ms: ${behind.map((t) => `${t.name} ${t.state}`).join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function timedSaves(p: PawledgerBench, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await p.save();
    out.push(performance.now() - t);
  }
  return out;
}

// The ledger open now, if any: closed first when the run is interrupted (abortRotation).
let current: PawledgerBench | null = null;

/**
 * abortRotation closes the ledger a measureRotation has open (after Ctrl-C, before the caller drops the database, so
 * that no pool of a ledger still running reports the dropped connections as errors).
 */
export async function abortRotation(): Promise<void> {
  const open = current;
  current = null;
  await open?.close().catch(() => {});
}

const oldObjects = (r: RotationReport, keyId: string) => r.tiers.map((t) => ({ place: t.tier, n: t.keys[keyId] ?? 0 }));

/**
 * measureRotation loads n blocks under an old key into database `name` on `server` and folders under `dir` (both
 * made here and removed at the end), then times a rotation alone and saves beside a second one (see the top).
 */
export async function measureRotation(options: {
  server: string;
  name: string;
  dir: string;
  blocks: number;
  /** saves is how many saves are timed before and after the second rotation (default 100). */
  saves?: number;
  /** duringSaves is the most saves timed during the second rotation (default 1000); then it finishes alone. */
  duringSaves?: number;
  /** batch is LEDGER_ROTATE_BATCH, objects per step (default 500, the product's default). */
  batch?: number;
  progress?: (line: string) => void;
}): Promise<RotationResult> {
  const { server, name, dir, blocks: n } = options;
  const saves = options.saves ?? 100;
  const batch = options.batch ?? 500;
  const duringSaves = options.duringSaves ?? 1000;
  const say = options.progress ?? (() => {});
  const OLD = randomBytes(32).toString('base64');
  const NEW = randomBytes(32).toString('base64');
  const oldId = parseKey(OLD).id;
  const newId = parseKey(NEW).id;
  const url = databaseUrl(server, name);
  const paths = {
    rotateBatch: batch,
    databaseUrl: url,
    dataDir: join(dir, 'data'),
    ipfsDir: join(dir, 'ipfs'),
    backupDir: join(dir, 'backup'),
  };
  await createDatabase(server, name);
  let open: PawledgerBench | null = null;
  try {
    // The backup folder must exist before the dir tier opens (it never creates its root).
    await mkdir(paths.backupDir, { recursive: true, mode: 0o700 });
    const sealer = new Sealer(parseKey(OLD));
    const tiers: BackupTier[] = [
      await dbTier(url),
      localStoreTier(paths.dataDir, sealer),
      await ipfsTier(paths.ipfsDir, join(paths.ipfsDir, POINTER_FILE), sealer),
      await dirTier(paths.backupDir, sealer),
    ];
    for (const t of tiers) await t.init();
    const t0 = performance.now();
    let next = 25_000;
    await loadPacked(tiers, sealer, n, {
      progress: (b) => {
        if (b >= next) {
          say(`  rotation: loaded ${b.toLocaleString('en-US')} blocks under the old key into the four places`);
          next += 25_000;
        }
      },
    });
    for (const t of tiers) await t.close();
    const loadMs = performance.now() - t0;
    const run = randomBytes(4).toString('hex');

    // The product's own layout on top: a ledger under the old key opens it, levels every tier, packs, checkpoints.
    open = current = await PawledgerBench.open({ ...paths, key: OLD, run: `${run}-old` });
    await open.ledger.maintain();
    await level(open);
    const counted = await open.ledger.keyCounts();
    await open.close();
    open = null;
    const before = oldObjects(counted, oldId);
    const objects = before.reduce((s, p) => s + p.n, 0);
    say(
      `  rotation: ${n.toLocaleString('en-US')} blocks loaded in ${ms(loadMs)} ms; objects under the old key: ${before.map((p) => `${p.place} ${p.n}`).join(', ')}`,
    );

    // 1. The rotation alone.
    open = current = await PawledgerBench.open({ ...paths, key: NEW, previousKeys: OLD, run: `${run}-new` });
    await level(open);
    const ledger = open.ledger;
    const rssBeforeKb = statusKb('VmRSS');
    const hwm = resetPeak();
    let sampledPeak = rssBeforeKb;
    const sampler = hwm ? null : setInterval(() => (sampledPeak = Math.max(sampledPeak, statusKb('VmRSS'))), 20);
    const placeMs = new Map<string, number>();
    let lastSaid = 0;
    const t1 = performance.now();
    const report = await reportProgress(
      (e) => {
        if (e.kind === 'end' && e.task.startsWith('re-seal ')) {
          const place = e.task.slice('re-seal '.length);
          placeMs.set(place, (placeMs.get(place) ?? 0) + e.elapsedMs);
        }
      },
      () =>
        ledger.rotateKey({
          onProgress: (r) => {
            if (performance.now() - lastSaid < 5000) return;
            lastSaid = performance.now();
            const done = r.tiers.reduce((s, t) => s + t.resealed, 0);
            say(`  rotation: ${done.toLocaleString('en-US')} of ${objects.toLocaleString('en-US')} objects re-sealed`);
          },
        }),
    );
    const totalMs = performance.now() - t1;
    if (sampler) clearInterval(sampler);
    const peakRssKb = hwm ? statusKb('VmHWM') : sampledPeak;
    const places: RotationPlace[] = report.tiers.map((t) => ({
      place: t.tier,
      before: before.find((b) => b.place === t.tier)?.n ?? 0,
      afterOld: t.keys[oldId] ?? 0,
      afterNew: t.keys[newId] ?? 0,
      resealed: t.resealed,
      ms: placeMs.get(t.tier) ?? null,
      ...(t.error ? { error: t.error } : {}),
    }));
    say(
      `  rotation: ${report.state} in ${ms(totalMs)} ms (${((n / totalMs) * 1000).toFixed(0)} blocks/s); ` +
        places.map((p) => `${p.place} ${p.resealed} in ${p.ms === null ? '-' : ms(p.ms)} ms`).join(', ') +
        `; peak RSS ${(peakRssKb / 1024).toFixed(0)} MiB (${(rssBeforeKb / 1024).toFixed(0)} before)`,
    );
    await open.close();
    open = null;

    // 2. Saves beside a rotation: back to the old key, everything to re-seal again.
    open = current = await PawledgerBench.open({ ...paths, key: OLD, previousKeys: NEW, run: `${run}-back` });
    await level(open);
    const p = open;
    const latencyBefore = await timedSaves(p, saves);
    await level(p);
    const during: number[] = [];
    let finished = false;
    const t2 = performance.now();
    let lastBack = performance.now();
    const back = p.ledger
      .rotateKey({
        onProgress: (r) => {
          if (performance.now() - lastBack < 10_000) return;
          lastBack = performance.now();
          const done = r.tiers.reduce((n, t) => n + t.resealed, 0);
          say(
            `  rotation beside saves: ${done.toLocaleString('en-US')} objects re-sealed, ${during.length} saves so far`,
          );
        },
      })
      .finally(() => {
        finished = true;
      });
    // Saves back to back kept a 100k rotation from ending for over 25 minutes (the first run): the sample stops after
    // `duringSaves` saves and the rotation then finishes alone.
    while (!finished && during.length < duringSaves) {
      const t = performance.now();
      await p.save();
      during.push(performance.now() - t);
    }
    const second = await back;
    const rotationMs = performance.now() - t2;
    await level(p);
    const latencyAfter = await timedSaves(p, saves);
    say(
      `  rotation beside saves: ${second.state} in ${ms(rotationMs)} ms, ${during.length} saves during it: median ${ms(percentile(during, 50))} ms, ` +
        `p99 ${ms(percentile(during, 99))} ms; without: median ${ms(percentile([...latencyBefore, ...latencyAfter], 50))} ms`,
    );
    const left = second.tiers.filter((t) => (t.keys[newId] ?? 0) > 0).map((t) => t.tier);
    if (left.length) say(`  rotation beside saves: objects left under the previous key in ${left.join(', ')}`);
    await p.close();
    open = null;
    return {
      blocks: n,
      objects,
      batch,
      loadMs,
      state: report.state,
      totalMs,
      places,
      peakRssKb,
      rssBeforeKb,
      peakRssHow: hwm ? 'vmhwm' : 'sampled',
      latency: { before: latencyBefore, during, after: latencyAfter, rotationMs, state: second.state },
    };
  } finally {
    current = null;
    await open?.close().catch(() => {});
    await dropDatabase(server, name).catch((err: unknown) => say(`could not drop database ${name}: ${String(err)}`));
    await rm(dir, { recursive: true, force: true });
  }
}

/** failedRotation is the result of a rotation benchmark that failed: its error, nothing measured. */
export function failedRotation(blocks: number, error: string): RotationResult {
  return {
    blocks,
    objects: 0,
    batch: 0,
    loadMs: Number.NaN,
    state: 'incomplete',
    totalMs: Number.NaN,
    places: [],
    peakRssKb: Number.NaN,
    rssBeforeKb: Number.NaN,
    peakRssHow: 'sampled',
    latency: { before: [], during: [], after: [], rotationMs: Number.NaN, state: 'incomplete' },
    error,
  };
}

/** ROTATION_NOTE says what the rotation tables measure (printed under them). */
export const ROTATION_NOTE =
  'A chain loaded under an old key into the local store, a database, the embedded IPFS folder and a backup folder ' +
  '(packs, the newest 256 blocks loose, a checkpoint every 1,000 blocks), opened by a Ledger under that key (maintain(), ' +
  'every tier level), then reopened with a new active key and the old one previous and `rotateKey()` timed with nothing ' +
  'else running. blocks/s = blocks / rotation time. objects under old key = keyCounts before (in a pack tier a pack ' +
  "counts its own seal and each block's in it); re-sealed = stored objects rewritten (a pack, a manifest, a checkpoint " +
  "part, a block: one each); ms = the Rotator's re-seal task in that place (after its first count, to the end of its last), all passes. Peak RSS = the " +
  "benchmark process's VmHWM during the rotation (reset just before), the open ledger included. Saves: the same ledger " +
  'reopened with the keys swapped (everything to re-seal again), saves timed one at a time before, during (back to back, ' +
  'at most 1,000, then the rotation goes on alone: saves back to back without end kept a 100k rotation from ending) and after that second rotation.';

const blocksPerSecond = (r: RotationResult) => (r.blocks / r.totalMs) * 1000;

/** rotationTable is the Markdown tables of rotation results: speed and places, then saves beside a rotation. */
export function rotationTable(results: RotationResult[]): string {
  const speed = results.map((r) =>
    r.error
      ? [r.blocks.toLocaleString('en-US'), `failed: ${r.error}`.replaceAll('|', '/').slice(0, 200), '-', '-', '-', '-']
      : [
          r.blocks.toLocaleString('en-US'),
          r.state,
          ms(r.totalMs),
          blocksPerSecond(r).toFixed(0),
          r.objects.toLocaleString('en-US'),
          `${(r.peakRssKb / 1024).toFixed(0)} MiB (${(r.rssBeforeKb / 1024).toFixed(0)} before)`,
        ],
  );
  const places = results.flatMap((r) =>
    r.places.map((p) => [
      r.blocks.toLocaleString('en-US'),
      p.place,
      p.before.toLocaleString('en-US'),
      p.resealed.toLocaleString('en-US'),
      p.ms === null ? '-' : ms(p.ms),
      p.ms ? ((p.resealed / p.ms) * 1000).toFixed(0) : '-',
      p.error ? p.error.replaceAll('|', '/').slice(0, 120) : '',
    ]),
  );
  const latency = results
    .filter((r) => !r.error)
    .flatMap((r) => {
      const without = [...r.latency.before, ...r.latency.after];
      const row = (what: string, xs: number[]) => {
        const s = summarize(xs);
        return [
          r.blocks.toLocaleString('en-US'),
          what,
          String(s.n),
          ms(s.median),
          ms(s.p95),
          ms(percentile(xs, 99)),
          ms(s.max),
        ];
      };
      return [
        row('no rotation (before + after)', without),
        row(`during rotation (${ms(r.latency.rotationMs)} ms, ${r.latency.state})`, r.latency.during),
      ];
    });
  return [
    table(['blocks', 'state', 'rotation ms', 'blocks/s', 'objects re-sealed', 'peak RSS'], speed, [
      'r',
      'l',
      'r',
      'r',
      'r',
      'r',
    ]),
    '',
    table(['blocks', 'place', 'objects under old key', 're-sealed', 'ms', 'objects/s', 'error'], places, [
      'r',
      'l',
      'r',
      'r',
      'r',
      'r',
      'l',
    ]),
    '',
    table(['blocks', 'saves', 'n', 'median ms', 'p95 ms', 'p99 ms', 'max ms'], latency, [
      'r',
      'l',
      'r',
      'r',
      'r',
      'r',
      'r',
    ]),
  ].join('\n');
}
